"""Optuna's TPE, QMC and GP samplers as reference backends (see hpo.samplers.reference).

One ask: an in-memory Optuna study with the same direction (or directions),
the history added with `add_trials` (completed trials with their values and
constraints, pending ones as RUNNING), `study.ask()`, then the space walked define-by-run with
`trial.suggest_*` (a branch is a suggest_categorical over its labels, then
that label's parameters). The study is then dropped. Each ask seeds the
sampler from the ask's rng; the QMC sequence alone is fixed by the study's seed.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.errors import SamplerError
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import check
from hpo.samplers.history import Goal
from hpo.samplers.reference import (
    SEEDS,
    active_params,
    from_library,
    library_keys,
    point,
    present,
    quiet,
    require,
    to_library,
)
from hpo.space import Branch, Categorical, Param, Space

CONSTRAINTS_KEY = "constraints"  # where Optuna 5 reads a trial's constraints (system attrs)


class _OptunaSampler:
    """What the three share: replay, ask, walk, discard. `_sampler` makes Optuna's sampler."""

    name = "optuna"
    multi_objective = True  # Optuna's TPE, GP and NSGA-II take several directions

    def __init__(self, requires: Sequence[tuple[str, str, str]] = ()) -> None:
        self._optuna = require(self.name, "optuna", "optuna")
        for module, package, fix in requires:
            require(self.name, module, package, fix)
        self._optuna.logging.set_verbosity(self._optuna.logging.WARNING)

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Goal = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        optuna, keys = self._optuna, library_keys(space)
        directions = [direction] if isinstance(direction, Direction) else list(direction)
        with quiet():
            storage = optuna.storages.InMemoryStorage()
            study = optuna.create_study(
                storage=storage,
                directions=[str(d) for d in directions],
                sampler=self._sampler(int(rng.integers(SEEDS))),
            )
            study.add_trials(self._replayed(space, trials, len(directions)))
            self._before_ask(study, storage, trials)
            trial = study.ask()
            return active_params(space, lambda j, param: _suggest(trial, keys[j], param))

    def _sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def _before_ask(self, study: Any, storage: Any, trials: Sequence[FrozenTrial]) -> None:
        """A hook for what a sampler keeps in the study besides its trials."""

    def _replayed(self, space: Space, trials: Sequence[FrozenTrial], k: int) -> list[Any]:
        """The completed trials (values, constraints) and the pending ones, as Optuna's
        (completed first, as `history` gives them; a trial missing constraints in a
        constrained study counts as meeting them)."""
        done = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE and t.values is not None and len(t.values) == k
        ]
        pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        width = max((len(t.constraints or ()) for t in done), default=0)
        out = []
        for t in done:
            attrs = {}
            if width:
                given = list(t.constraints or ())
                attrs[CONSTRAINTS_KEY] = given + [0.0] * (width - len(given))
            attrs.update(self._attrs(t))
            out.append(self._frozen(space, point(space, t.params), t.values, attrs))
        out += [self._frozen(space, point(space, t.params), None, {}) for t in pending]
        return out

    def _attrs(self, trial: FrozenTrial) -> dict[str, Any]:
        """Optuna system attributes a sampler needs on a replayed completed trial."""
        return {}

    def _frozen(
        self,
        space: Space,
        params: dict[str, Any],
        values: list[float] | None,
        system_attrs: dict[str, Any],
    ) -> Any:
        """One of our points as an Optuna trial: complete with its values, or running."""
        keys, chosen, distributions = library_keys(space), {}, {}
        for j, param, v in present(space, params):
            distributions[keys[j]] = _distribution(self._optuna, param)
            chosen[keys[j]] = (
                _choices(param)[to_library(param, v)]
                if isinstance(param, Branch | Categorical)
                else v
            )
        state = self._optuna.trial.TrialState
        return self._optuna.trial.create_trial(
            state=state.RUNNING if values is None else state.COMPLETE,
            params=chosen,
            distributions=distributions,
            values=values,
            system_attrs=system_attrs,
        )


def _suggest(trial: Any, key: str, param: Param) -> Any:
    """One parameter from a live Optuna trial, in the parameter's own type."""
    if isinstance(param, Branch | Categorical):
        choices = _choices(param)
        return from_library(param, choices.index(trial.suggest_categorical(key, choices)))
    if param.type == "float":
        return param.snap(
            trial.suggest_float(key, param.low, param.high, step=param.step, log=param.log)
        )
    return param.snap(
        trial.suggest_int(key, param.low, param.high, step=param.step or 1, log=param.log)
    )


def _choices(param: Branch | Categorical) -> tuple[Any, ...]:
    """The choices as given to Optuna: themselves, or their indices where Python equality
    would confuse them (Optuna finds a choice with ==, and 1 == 1.0 == True)."""
    choices = param.choices
    return choices if len(set(choices)) == len(choices) else tuple(range(len(choices)))


def _distribution(optuna: ModuleType, param: Param) -> Any:
    if isinstance(param, Branch | Categorical):
        return optuna.distributions.CategoricalDistribution(_choices(param))
    if param.type == "float":
        return optuna.distributions.FloatDistribution(
            param.low, param.high, log=param.log, step=param.step
        )
    return optuna.distributions.IntDistribution(
        param.low, param.high, log=param.log, step=param.step or 1
    )


def _accepted(cls: type, **kwargs: Any) -> dict[str, Any]:
    """The keyword arguments this Optuna version's class takes; None keeps its default."""
    parameters = inspect.signature(cls).parameters
    return {k: v for k, v in kwargs.items() if k in parameters and v is not None}


class OptunaTPESampler(_OptunaSampler):
    """Optuna's TPESampler, replaying the study into an in-memory Optuna study at each ask.

    Options are passed through; null keeps the installed Optuna's default
    (multivariate and constant_liar are on in Optuna 5, off in 4).
    n_startup_trials: random trials first; n_ei_candidates: candidates per
    step; multivariate: model parameters jointly; group: model each set of
    parameters that occur together on its own (needs multivariate);
    constant_liar: running trials count as bad.
    """

    name = "optuna-tpe"

    def __init__(
        self,
        n_startup_trials: int = 10,
        n_ei_candidates: int = 24,
        multivariate: bool | None = None,
        group: bool = False,
        constant_liar: bool | None = None,
    ) -> None:
        check.integer(self.name, "n_startup_trials", n_startup_trials, 0)
        check.integer(self.name, "n_ei_candidates", n_ei_candidates, 1)
        check.flag(self.name, "multivariate", multivariate, allow_none=True)
        check.flag(self.name, "group", group)
        check.flag(self.name, "constant_liar", constant_liar, allow_none=True)
        if group and multivariate is False:
            raise SamplerError(f"{self.name}: group needs multivariate")
        super().__init__()
        self.n_startup_trials, self.n_ei_candidates = n_startup_trials, n_ei_candidates
        self.multivariate, self.group = multivariate, group
        self.constant_liar = constant_liar

    def _sampler(self, seed: int) -> Any:
        tpe = self._optuna.samplers.TPESampler
        options = dict(
            n_startup_trials=self.n_startup_trials,
            n_ei_candidates=self.n_ei_candidates,
            multivariate=self.multivariate,
            group=self.group,
            constant_liar=self.constant_liar,
        )
        return tpe(seed=seed, **_accepted(tpe, **options))


class OptunaQMCSampler(_OptunaSampler):
    """Optuna's QMCSampler (Sobol or Halton), its sequence fixed by the study's seed.

    qmc_type: "sobol" or "halton"; scramble: randomize the sequence (by the
    study's seed). As in Optuna, the first trial is drawn at random and the
    sequence covers the parameters of the first completed trial; others (in
    other branches) are drawn at random.
    """

    name = "optuna-qmc"

    def __init__(self, qmc_type: str = "sobol", scramble: bool = True, seed: int = 0) -> None:
        if qmc_type not in ("sobol", "halton"):
            raise SamplerError(
                f"{self.name}: qmc_type must be 'sobol' or 'halton', got {qmc_type!r}"
            )
        check.flag(self.name, "scramble", scramble)
        super().__init__()
        self.qmc_type, self.scramble, self._seed = qmc_type, scramble, seed

    def _sampler(self, seed: int) -> Any:
        samplers = self._optuna.samplers
        return samplers.QMCSampler(
            **_accepted(
                samplers.QMCSampler,
                qmc_type=self.qmc_type,
                scramble=self.scramble,
                seed=self._seed,
                independent_sampler=samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
                warn_asynchronous_seeding=False,
            )
        )

    def _before_ask(self, study: Any, storage: Any, trials: Sequence[FrozenTrial]) -> None:
        """Put the sequence where a study run sequentially in Optuna would have it.

        Optuna keeps the next point's index in a study attribute that each
        sample_relative call advances (the first trial is drawn at random and
        does not), so the k-th sampled trial (from 0) takes point k - 1. A
        replayed study starts from scratch: one probe call reveals the
        attribute, which is then set to the index before that point.
        """
        first = study.get_trials(deepcopy=False, states=(self._optuna.trial.TrialState.COMPLETE,))[
            :1
        ]
        if not first:
            return
        sampler, study_id = study.sampler, storage.get_study_id_from_name(study.study_name)
        before = storage.get_study_system_attrs(study_id)
        sampler.sample_relative(
            study, first[0], sampler.infer_relative_search_space(study, first[0])
        )
        point = max(sum(1 for t in trials if t.sample_index is not None) - 1, 0)
        for key, value in storage.get_study_system_attrs(study_id).items():
            if before.get(key) != value:
                storage.set_study_system_attr(study_id, key, point - 1)


class OptunaGPSampler(_OptunaSampler):
    """Optuna's GPSampler (Gaussian process, log EI); needs PyTorch.

    n_startup_trials: random trials first; deterministic_objective: fix the
    noise at its minimum.
    """

    name = "optuna-gp"

    def __init__(self, n_startup_trials: int = 10, deterministic_objective: bool = False) -> None:
        check.integer(self.name, "n_startup_trials", n_startup_trials, 0)
        check.flag(self.name, "deterministic_objective", deterministic_objective)
        super().__init__(requires=[("torch", "torch", "torch")])
        self.n_startup_trials = n_startup_trials
        self.deterministic_objective = deterministic_objective

    def _sampler(self, seed: int) -> Any:
        samplers = self._optuna.samplers
        return samplers.GPSampler(
            **_accepted(
                samplers.GPSampler,
                seed=seed,
                n_startup_trials=self.n_startup_trials,
                deterministic_objective=self.deterministic_objective,
                independent_sampler=samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
        )


class OptunaNSGA2Sampler(_OptunaSampler):
    """Optuna's NSGAIISampler (NSGA-II), replaying the study at each ask.

    Optuna keeps each trial's generation in its system attributes; a
    replayed trial is given the generation a sequential Optuna study would
    have given it (a generation ends when population_size of its trials have
    completed). population_size, crossover ("uniform", Optuna's default, or
    "sbx"), crossover_prob, swapping_prob and mutation_prob (None: 1 / the
    number of parameters) are passed through.
    """

    name = "optuna-nsga2"

    def __init__(
        self,
        population_size: int = 50,
        crossover: str = "uniform",
        crossover_prob: float = 0.9,
        swapping_prob: float = 0.5,
        mutation_prob: float | None = None,
    ) -> None:
        check.integer(self.name, "population_size", population_size, 2)
        check.one_of(self.name, "crossover", crossover, ("uniform", "sbx"))
        check.number(self.name, "crossover_prob", crossover_prob, 0.0, 1.0)
        check.number(self.name, "swapping_prob", swapping_prob, 0.0, 1.0)
        if mutation_prob is not None:
            check.number(self.name, "mutation_prob", mutation_prob, 0.0, 1.0)
        super().__init__()
        self.population_size, self.crossover = population_size, crossover
        self.crossover_prob, self.swapping_prob = crossover_prob, swapping_prob
        self.mutation_prob = mutation_prob
        self._generations: dict[int, int] = {}

    def _sampler(self, seed: int) -> Any:
        samplers = self._optuna.samplers
        crossover = (
            samplers.nsgaii.SBXCrossover()
            if self.crossover == "sbx"
            else samplers.nsgaii.UniformCrossover(self.swapping_prob)
        )
        return samplers.NSGAIISampler(
            population_size=self.population_size,
            crossover=crossover,
            crossover_prob=self.crossover_prob,
            swapping_prob=self.swapping_prob,
            mutation_prob=self.mutation_prob,
            seed=seed,
        )

    def _replayed(self, space: Space, trials: Sequence[FrozenTrial], k: int) -> list[Any]:
        self._generations = _generations(trials, self.population_size)
        return super()._replayed(space, trials, k)

    def _attrs(self, trial: FrozenTrial) -> dict[str, Any]:
        key = self._optuna.samplers.NSGAIISampler._get_generation_key()
        return {key: self._generations[trial.number]}


def _generations(trials: Sequence[FrozenTrial], population_size: int) -> dict[int, int]:
    """Each trial's generation as a sequential Optuna study assigns it: the current
    one, which ends once population_size of its trials have completed."""
    out, generation, completed = {}, 0, 0
    for trial in sorted(trials, key=lambda t: t.number):
        out[trial.number] = generation
        if trial.state == TrialState.COMPLETE:
            completed += 1
            if completed >= population_size:
                generation, completed = generation + 1, 0
    return out
