"""hyperopt's TPE as a reference backend (see hpo.samplers.reference).

One ask: the space as hyperopt expressions (a branch is hp.choice over one
dict per label, so hyperopt knows which parameters each label activates),
the history as documents of a fresh `hyperopt.Trials`, then `tpe.suggest`
for one new trial with a seed drawn from the ask's rng. Its `misc.vals`
(each parameter's value, or nothing where inactive) are read back directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.errors import SamplerError
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.samplers.reference import (
    SEEDS,
    active_params,
    from_library,
    grid_count,
    history,
    library_keys,
    present,
    quiet,
    require,
    to_library,
)
from hpo.space import Branch, Categorical, Space


class HyperoptTPESampler:
    """hyperopt's TPE (tpe.suggest), replaying the study into a hyperopt Trials object.

    n_startup_jobs: random trials first; n_ei_candidates: candidates per
    step; gamma: the fraction of trials that count as good. Running trials
    are given to hyperopt as running: it counts them as the worst.
    """

    name = "hyperopt-tpe"

    def __init__(
        self, n_startup_jobs: int = 20, n_ei_candidates: int = 24, gamma: float = 0.25
    ) -> None:
        check.integer(self.name, "n_startup_jobs", n_startup_jobs, 0)
        check.integer(self.name, "n_ei_candidates", n_ei_candidates, 1)
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 < gamma < 1:
            raise SamplerError(f"{self.name}: gamma must be a number in (0, 1), got {gamma!r}")
        self._hyperopt = require(self.name, "hyperopt", "hyperopt")
        self.n_startup_jobs, self.n_ei_candidates, self.gamma = (
            n_startup_jobs,
            n_ei_candidates,
            gamma,
        )
        self._domains: dict[Space, Any] = {}

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        keys, domain = library_keys(space), self._domain(space)
        documents = self._trials(space, trials, direction, domain)
        with quiet():
            [doc] = self._hyperopt.tpe.suggest(
                [len(documents.trials)],
                domain,
                documents,
                int(rng.integers(SEEDS)),
                n_startup_jobs=self.n_startup_jobs,
                n_EI_candidates=self.n_ei_candidates,
                gamma=self.gamma,
                verbose=False,
            )
        vals = doc["misc"]["vals"]  # key -> [value], or [] where inactive
        return active_params(space, lambda j, param: from_library(param, vals[keys[j]][0]))

    def _domain(self, space: Space) -> Any:
        """hyperopt's compiled search space (a Domain), built once per space."""
        if space not in self._domains:
            expr = _hp_expr(self._hyperopt.hp, space, iter(library_keys(space)))
            self._domains[space] = self._hyperopt.Domain(lambda params: 0.0, expr)
        return self._domains[space]

    def _trials(
        self, space: Space, trials: Sequence[FrozenTrial], direction: Direction, domain: Any
    ) -> Any:
        """The history as hyperopt's documents: done with their loss, or running."""
        base, keys = self._hyperopt.base, library_keys(space)
        sign = direction.sign
        done, pending = history(space, trials)
        points = [(params, sign * value) for params, value in done] + [(p, None) for p in pending]
        documents, docs = self._hyperopt.Trials(), []
        for tid, (params, loss) in enumerate(points):
            vals: dict[str, list[Any]] = {key: [] for key in keys}
            for j, param, value in present(space, params):
                vals[keys[j]] = [to_library(param, value)]
            misc = {
                "tid": tid,
                "cmd": domain.cmd,
                "workdir": None,
                "vals": vals,
                "idxs": {key: [tid] if v else [] for key, v in vals.items()},
            }
            result = {"status": "new"} if loss is None else {"status": "ok", "loss": loss}
            [doc] = documents.new_trial_docs([tid], [None], [result], [misc])
            doc["state"] = base.JOB_STATE_RUNNING if loss is None else base.JOB_STATE_DONE
            docs.append(doc)
        documents.insert_trial_docs(docs)
        documents.refresh()
        return documents


def _hp_expr(hp: ModuleType, space: Space, keys: Iterator[str]) -> dict[str, Any]:
    """A (sub-)space as hyperopt expressions, taking keys in `space.dims` order."""
    expr = {}
    for param in space.params:
        key = next(keys)
        if isinstance(param, Branch):  # one dict per label, built depth-first
            expr[key] = hp.choice(key, [_hp_expr(hp, sub, keys) for _, sub in param.branches])
        elif isinstance(param, Categorical):
            expr[key] = hp.choice(key, list(range(len(param.choices))))
        elif (count := grid_count(param)) is not None:  # ints and steps: the value's index
            expr[key] = hp.quniform(key, -0.5, count - 0.5, 1)
        elif param.type == "int":  # log: rounded, log-uniform over [low - 1/2, high + 1/2]
            expr[key] = hp.qloguniform(
                key, math.log(param.low - 0.5), math.log(param.high + 0.5), 1
            )
        elif param.log:
            expr[key] = hp.loguniform(key, math.log(param.low), math.log(param.high))
        else:
            expr[key] = hp.uniform(key, param.low, param.high)
    return expr
