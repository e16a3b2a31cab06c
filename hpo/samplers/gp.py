"""Gaussian-process Bayesian optimization with log expected improvement.

One ask: warp and standardize the losses (Yeo-Johnson), take the kernel's
hyperparameters for this many trials (gp_fit.py; the likelihood and the
posterior are in gp_model.py), then maximize log EI over a scrambled-Sobol
candidate set and refine the best candidates, and the best trial so far, by
batched projected BFGS on their numeric features (gp_optim.py). Categorical
features stay at the candidate's choice; integer and stepped coordinates are
scored at the value they decode to. Coordinates of inactive parameters
(unchosen branches) are fixed at 0.5 (numeric) or all-zero (one-hot), so they
never separate two trials.

Purity, and why fits stay cheap as a study grows. A sampler is a pure
function of (space, trials, rng, direction): the same inputs give the same
point in any process, after any history (tests/test_sampler_contract.py
checks it across stops, resumes and worker processes). A fit from scratch
(L-BFGS-B from three starts) at every ask was most of an ask's time. Optuna's
GPSampler saves it by starting each fit from the previous ask's result, kept
in the sampler: its answer then depends on which asks that process made
before, so a resumed study or another worker proposes other points; that is
not acceptable here. Instead the hyperparameters for n trials are the
multi-start fit on the first a(n) of them, a(n) following a fixed schedule
(every trial up to 20, then once per 20% of growth): a function of the trials
alone, refitted 57 times in a 20,000-trial study. The fit of a
prefix is cached, keyed by the complete bytes of everything it is computed
from (no hash alone, nothing from the ask's rng: its random starts come from
a generator seeded by the prefix's size), so a hit returns exactly what a
recomputation would: the cache decides how long an ask takes, never what it
returns, and an empty cache (a new process, a resumed study) costs one fit.
Measured against this during development: one warm-started L-BFGS-B run on
all current trials at every ask, from the prefix's θ (also pure): no better
on the sampler benchmark, and 4 ms (60 trials) to 100 ms (500) more per ask;
a schedule of 5% or 10% growth: no better, one or two more fits per 20 asks.

Several objectives (2-3) and constraints: one GP per objective, each on its
own warped losses, the acquisition log EHVI over the feasible Pareto front,
plus log P(feasible) from one GP per constraint when the trials set
constraints (acquisition.py has the formulas and their sources); the
acquisition is maximized as log EI is. With one objective and constraints:
log EI over the best feasible trial, plus log P(feasible). With no
feasible trial yet: log P(feasible) alone.

Beyond 256 trials the likelihood is evaluated on a random subset of them, and
beyond 1,000 trials the posterior conditions on a subset too (gp_fit.py, with
their sources; tests/test_gp.py bounds their error).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc
from threadpoolctl import ThreadpoolController

from hpo.direction import Direction
from hpo.pareto import front_mask, reference_point
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.samplers.acquisition import LogEHVI, LogEI, LogPoF, Sum
from hpo.samplers.gp_fit import hyperparameters, posterior_rows, warp
from hpo.samplers.gp_model import GaussianProcess
from hpo.samplers.gp_optim import minimize_batched
from hpo.samplers.history import Goal, History, HistoryEncoder
from hpo.samplers.qmc import SobolSampler
from hpo.space import Branch, Categorical, Numeric, Space, choice_index

# iterations of a local search of log EHVI (or a constrained acquisition): 20 found the same
# hypervolume as 200 on ZDT1 (3 seeds, 60 trials: 11.54 both) in a seventh of the time; the
# searches mostly creep along ridges of the acquisition after their first few steps
GENERAL_MAXITER = 20


class GPSampler:
    """Gaussian process with expected improvement: a model of the objective for small budgets.

    n_startup: scrambled-Sobol trials before the model is used;
    n_candidates: quasi-random candidates per step for the acquisition;
    n_refine: local searches per step; n_restarts: extra random starts when
    fitting the kernel; constant_liar: running trials count as if they had
    returned the worst value so far. Several objectives (2 or 3): log
    expected hypervolume improvement, same options.
    """

    multi_objective = True
    max_objectives = 3  # the box decomposition of log EHVI is written for 2-3

    def __init__(
        self,
        n_startup: int = 10,
        n_candidates: int = 2048,
        n_refine: int = 10,
        n_restarts: int = 2,
        constant_liar: bool = True,
        seed: int = 0,
    ) -> None:
        for name, value, minimum in (
            ("n_startup", n_startup, 1),
            ("n_candidates", n_candidates, 1),
            ("n_refine", n_refine, 1),
            ("n_restarts", n_restarts, 0),
        ):
            check.integer("gp", name, value, minimum)
        check.flag("gp", "constant_liar", constant_liar)
        self.n_startup, self.n_candidates = n_startup, n_candidates
        self.n_refine, self.n_restarts, self.constant_liar = n_refine, n_restarts, constant_liar
        self._seed = seed
        self._startup = SobolSampler(seed=seed)
        self._encode = HistoryEncoder()

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Goal = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        history = self._encode(space, trials, direction)
        if len(history) < self.n_startup:
            return self._startup.ask(space, trials, rng)  # (it reads no values)
        constraints = _constraints(trials, history)
        with _blas_threads().limit(limits=1, user_api="blas"):
            if history.losses.shape[1] == 1 and constraints is None:
                return self._ask_model(space, history, rng)
            return self._ask_general(space, history, constraints, rng)

    def _ask_model(
        self, space: Space, history: History, rng: np.random.Generator
    ) -> dict[str, Any]:
        features = Features.of_space(space)
        x_done = features(history.x)  # (n, D)
        x, y = x_done, warp(history.loss)  # (n, D), (n,)
        pending = len(history.pending) if self.constant_liar else 0
        if pending:
            x = np.vstack([x, features(history.pending)])
            y = np.concatenate([y, np.full(pending, y.max())])
        theta = hyperparameters(x_done, history.loss, self.n_restarts)
        rows = posterior_rows(history.loss, pending)
        gp = GaussianProcess.with_params(x[rows], y[rows], theta)
        incumbent = history.x[int(np.argmin(history.loss))]
        acquisition = LogEI(gp, float(y[: len(history)].min()))
        u = self._maximize(space, features, acquisition, _scale([gp]), incumbent, rng)
        return space.decode(u)

    def _ask_general(
        self,
        space: Space,
        history: History,
        constraints: np.ndarray | None,
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """Several objectives, or constraints: one GP per objective and per constraint."""
        features = Features.of_space(space)
        x_done = features(history.x)  # (n, D)
        pending = features(history.pending) if self.constant_liar else x_done[:0]
        gps, ys = [], []
        for loss in history.losses.T:  # one GP per objective, as the single one
            y = warp(loss)  # (n,)
            theta = hyperparameters(x_done, loss, self.n_restarts)
            x = np.vstack([x_done, pending])
            gps.append(
                GaussianProcess.with_params(x, np.append(y, [y.max()] * len(pending)), theta)
            )
            ys.append(y)
        y_all = np.column_stack(ys)  # (n, k) standardized, warped losses
        feasible = history.feasible
        parts: list[LogEI | LogEHVI | LogPoF] = []
        incumbent = history.x[int(rng.integers(len(history)))]
        if feasible.any():
            points = y_all[feasible]
            front = np.flatnonzero(feasible)[front_mask(points)]
            incumbent = history.x[front[int(rng.integers(len(front)))]]
            if len(gps) == 1:
                parts.append(LogEI(gps[0], float(points[:, 0].min())))
            else:
                every = y_all if constraints is not None else None
                reference = _ehvi_reference(points, y_all[front], every)
                parts.append(LogEHVI(gps, y_all[front], reference))
        if constraints is not None:
            parts.append(self._feasibility(x_done, constraints))
        acquisition = parts[0] if len(parts) == 1 else Sum(parts)
        u = self._maximize(space, features, acquisition, _scale(gps), incumbent, rng)
        return space.decode(u)

    def _feasibility(self, x: np.ndarray, constraints: np.ndarray) -> LogPoF:
        """log P(feasible): a GP per constraint (n, c) on its standardized values, whose
        threshold 0 is standardized alike (as Optuna's GPSampler)."""
        gps, thresholds = [], []
        for values in constraints.T:
            mean, std = values.mean(), values.std()
            std = std if std > 0 else 1.0
            y = (values - mean) / std
            # fitted on the values it conditions on (not warped: the threshold must keep its
            # place), from starts seeded by the number of trials, so the ask stays pure
            rng = np.random.default_rng(len(y))
            gps.append(GaussianProcess.fit(x, y, rng, self.n_restarts))
            thresholds.append(-mean / std)
        return LogPoF(gps, thresholds)

    def _maximize(
        self,
        space: Space,
        features: Features,
        acquisition: LogEI | LogEHVI | LogPoF | Sum,
        scale: np.ndarray,
        incumbent: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The point u (d,) of largest acquisition (log EI of the lowest standardized
        loss, with one objective).

        Candidates: scrambled Sobol points. Local searches start from the best
        candidate, from the incumbent (the best trial: EI is often largest
        next to it) and from candidates drawn with probability proportional to
        their EI (as Optuna's optimize_acqf_mixed does), so that they spread.
        Every point is scored where it will be evaluated: integer and stepped
        coordinates at the centre of their value's slice (see `_on_grid`).
        """
        sobol = qmc.Sobol(len(space), scramble=True, rng=rng).random(self.n_candidates)
        sobol[~space.active(sobol)] = np.nan
        u = _on_grid(space, np.vstack([sobol, incumbent]))  # (m + 1, d)
        candidates = features(u)  # (m + 1, D)
        scores = acquisition(candidates)
        first = int(np.argmax(scores[:-1]))
        starts = [first, len(u) - 1]
        weights = np.exp(scores[:-1] - scores[first])
        weights[first] = 0.0
        extra = min(self.n_refine - 2, int(np.count_nonzero(weights)))
        if extra > 0:
            starts += list(
                rng.choice(len(sobol), size=extra, replace=False, p=weights / weights.sum())
            )
        starts = starts[: max(self.n_refine, 1)]
        free = np.array([features.free_mask(u[i]) for i in starts])  # (b, D)
        maxiter = 200 if isinstance(acquisition, LogEI) else GENERAL_MAXITER
        refined = _refine(acquisition, scale, candidates[starts], free, maxiter)  # (b, D)
        ends = _on_grid(
            space,
            np.array([features.to_unit(f, u[i]) for f, i in zip(refined, starts, strict=True)]),
        )
        best_u = ends[int(np.argmax(acquisition(features(ends))))]
        return np.where(np.isnan(best_u), 0.5, best_u)


def _ehvi_reference(
    feasible: np.ndarray, front: np.ndarray, every: np.ndarray | None
) -> np.ndarray:
    """The reference point (k,) of log EHVI, from standardized losses: those of the
    feasible trials (n, k), of their Pareto front (f, k), and, when the study sets
    constraints, of every trial, infeasible ones included (N, k); None otherwise. It
    lies 10% of the range beyond the worst, at least 0.1 (a tenth of a standard
    deviation) beyond it:

    - with constraints, beyond every trial's losses: the feasible regions not found
      yet lie where only infeasible trials have been, and a box drawn around the
      feasible ones left them outside, worth nothing: on C2-DTLZ2 (10 seeds) gp settled
      in the first region found on some seeds, 13.12 +- 0.68 at 100 trials and 13.76
      +- 0.59 at 300, against 14.44 +- 0.04 and 14.67 +- 0.01 now;
    - with three objectives and no constraints, beyond the front's worst: the volume a
      point at an edge of the front adds grows with the product of the box's other two
      sides, so a far reference point drew the search to the front's edges, away from
      its interior (DTLZ2: 14.41 -> 14.67 at 100 trials, 14.64 -> 15.03 at 300);
    - with two, beyond every feasible trial: at the front's worst, ZDT3's segments not
      found yet lay outside the box (11.75 -> 11.58 at 100 trials).

    Measurements: docs/multiobjective.md.
    """
    if every is not None:
        base = every
    elif feasible.shape[1] >= 3:
        base = front
    else:
        base = feasible
    return np.maximum(reference_point(base), base.max(axis=0) + 0.1)


def _on_grid(space: Space, u: np.ndarray) -> np.ndarray:
    """Points u (m, d) with each integer or stepped coordinate moved to the centre of the
    slice that decodes to the same value: the point that will be evaluated.

    The local searches treat such coordinates as continuous. Scored where they
    stop, a point at the edge of its slice could seem better than the trial
    already made at its centre (a little further from the data, so a little
    more variance) though it decodes to that very trial: the study then
    repeats one point (measured: conditional_nn, seed 1, 40 repeats).
    """
    out = u.copy()
    for j, dim in enumerate(space.dims):
        param = dim.param
        if isinstance(param, Numeric) and param.grid_step is not None:
            active = ~np.isnan(out[:, j])
            out[active, j] = param.snap_unit(out[active, j])
    return out


@dataclass(frozen=True)
class Features:
    """The map from unit-cube coordinates (d) to GP features (D)."""

    columns: tuple[tuple[int, int, int], ...]  # per coordinate: (first column, width, choices)

    @classmethod
    def of_space(cls, space: Space) -> Features:
        columns, start = [], 0
        for dim in space.dims:
            choices = len(dim.param.choices) if isinstance(dim.param, Categorical | Branch) else 0
            width = max(choices, 1)
            columns.append((start, width, choices))
            start += width
        return cls(tuple(columns))

    @property
    def size(self) -> int:
        first, width, _ = self.columns[-1] if self.columns else (0, 0, 0)
        return first + width

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Points u (m, d), NaN where inactive -> features (m, D)."""
        out = np.zeros((len(u), self.size))
        for j, (first, _, choices) in enumerate(self.columns):
            active = ~np.isnan(u[:, j])
            if choices == 0:
                out[:, first] = np.where(active, u[:, j], 0.5)
            else:
                index = choice_index(np.nan_to_num(u[:, j]), choices)
                rows = np.flatnonzero(active)
                out[rows, first + index[rows]] = 1.0
        return out

    def free_mask(self, u: np.ndarray) -> np.ndarray:
        """Feature columns (D,) an optimizer may move for point u (d,): active numeric ones."""
        mask = np.zeros(self.size, dtype=bool)
        for j, (first, _, choices) in enumerate(self.columns):
            mask[first] = choices == 0 and not np.isnan(u[j])
        return mask

    def to_unit(self, feature: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Numeric coordinates of u (d,) replaced by those of `feature` (D,)."""
        out = u.copy()
        for j, (first, _, choices) in enumerate(self.columns):
            if choices == 0 and not np.isnan(u[j]):
                out[j] = feature[first]
        return out


def _refine(
    acquisition: LogEI | LogEHVI | LogPoF | Sum,
    scale: np.ndarray,
    starts: np.ndarray,
    free: np.ndarray,
    maxiter: int = 200,
) -> np.ndarray:
    """Maximize the acquisition from each start (b, D), moving only the `free` (b, D)
    columns.

    The b problems are solved together by batched projected BFGS (gp_optim.py);
    fixed columns get equal bounds. The search runs in v = x √λ (`scale`), where
    the kernel is isotropic, so that one step size suits every column (the
    preconditioning of Optuna's optim_mixed).
    """

    def negative(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, gradient = acquisition.with_gradient(v / scale)
        return -value, gradient / -scale

    v0 = starts * scale
    lower = np.where(free, 0.0, v0)
    upper = np.where(free, scale, v0)
    # gtol 1e-2 as Optuna's optim_mixed (pgtol √1e-4): it saves 10-35% of the evaluations
    # of 1e-4 and, on histories of the five public problems, never chose a point of lower
    # EI. A search whose log EI falls 2 below the best one's (EI under 1/7 of it) is
    # dropped: up to a third fewer evaluations, and over 165 asks on the five problems it
    # never changed the point chosen (both measured during development).
    v, _ = minimize_batched(negative, v0, lower, upper, gtol=1e-2, maxiter=maxiter, behind=2.0)
    return np.clip(v / scale, 0.0, 1.0)


def _scale(gps: Sequence[GaussianProcess]) -> np.ndarray:
    """√λ (D,) of the preconditioning: one GP's, or the geometric mean of several's."""
    return np.sqrt(np.exp(np.mean([gp.log_lambda for gp in gps], axis=0)))


def _constraints(trials: Sequence[FrozenTrial], history: History) -> np.ndarray | None:
    """The completed trials' constraint values (n, c), in the history's order; None when
    none set any. A trial that set fewer counts as meeting the others (0)."""
    by_number = {t.number: t.constraints for t in trials if t.constraints}
    if not by_number:
        return None
    width = max(len(c) for c in by_number.values())
    out = np.zeros((len(history), width))
    for row, number in enumerate(history.number.tolist()):
        given = by_number.get(number) or []
        out[row, : len(given)] = given
    return np.nan_to_num(out, nan=1e6)


@functools.cache
def _blas_threads() -> ThreadpoolController:
    """BLAS runs single-threaded here: on matrices of a few hundred rows,
    threads cost more than they save (twice the time per ask, measured)."""
    return ThreadpoolController()
