"""Comparisons: the same objectives under each sampler and seed, side by side.

A comparison file (TOML or JSON):

    name = "synthetic-quick"
    objectives = ["branin", "hartmann6"]   # or: objective = "branin"
    samplers = ["random", "tpe", { name = "tpe", label = "tpe-g0.2", gamma = 0.2 }]
    seeds = 5                              # studies per (objective, sampler)
    seed = 0                               # the first seed (default 0)
    trials = 50                            # each study's budget
    checkpoints = [0.25, 0.5, 1.0]         # fractions of the budget in the table
    storage = "compare.db"                 # optional, as for study files

    [objective_options.mnist_mlp]          # optional, per objective
    subset = 5000

Objectives that return several values (`mnist_tradeoff`, `boston_tradeoff`;
`directions = [...]` overrides theirs, as `direction` does for objectives
of one value) are scored by hypervolume: each
study's hypervolume after each trial, against one reference point shared by
all the comparison's studies of that objective — `reference_point = [...]`
(in the objectives' values; a table by objective name for several), or else
derived from every completed feasible trial of those studies
(`hpo.pareto.reference_point`). Higher is better; the ranks, standard errors
and tests are then those of the final hypervolume.

Each (objective, sampler, seed) is one study named
"NAME/objective/sampler/seed-K", stored with the user attributes
`comparison`, `objective`, `sampler` and `seed_index`, so the group can be
found again (`load_comparison`) and re-running resumes it: finished studies
are skipped, unfinished ones continue, missing ones are created. Everything
is validated before the first study is created.

Summaries (`summarize`): per objective and sampler, the mean best value at
the checkpoints with its standard error over seeds, the mean rank of the
final best value across seeds (and across objectives), the median time per
ask and the total time; a sampler whose final values do not differ
significantly from the best sampler's (two-sided Mann-Whitney U test across
seeds, p >= 0.05) is marked so; regret when the optimum is known. For an
objective of several values all of these are of the hypervolume so far.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.catalog import borrowed, create_study, load_study, open_storage
from hpo.connection import choose_storage
from hpo.direction import Direction
from hpo.errors import StudyFileError, StudyNotFoundError
from hpo.objectives import Objective, load_objective
from hpo.pareto import hypervolume_history, losses, pareto_front, reference_point
from hpo.records import REFERENCE_POINT_ATTR, FrozenTrial, StudyInfo, TrialState
from hpo.samplers import check_objectives, make_sampler
from hpo.space import Space
from hpo.storage import COMPARISON_ATTR, Storage, comparison_of
from hpo.study import Callback, Study
from hpo.studyfile import DEFAULT_CHECKPOINTS, CompareConfig, SamplerSpec, load_compare_file

if TYPE_CHECKING:
    from hpo.cluster import Session

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Cell:
    """One study of the comparison."""

    objective: str
    sampler: SamplerSpec
    seed_index: int
    study_name: str


def plan(config: CompareConfig) -> tuple[list[Cell], dict[str, Objective]]:
    """Every study of the comparison, seed-major (so a partial run is balanced).

    Loads each objective and builds each sampler on its space first: an
    unknown name or option fails here, before anything is written.
    """
    objectives = {}
    for name in config.objectives:
        objective = load_objective(name, config.objective_options.get(name), config.base_dir)
        if objective.space is None:
            raise StudyFileError(
                f"comparison {config.name!r}: objective {name!r} has no "
                "built-in space; compare built-in objectives, or run "
                "your own with a study file per sampler"
            )
        n_objectives = _n_objectives(config, name, objective)
        for spec in config.samplers:
            sampler = make_sampler(spec.name, spec.options)
            sampler.check(Space.from_spec(objective.space))
            check_objectives(sampler, spec.name, n_objectives)
        objectives[name] = objective
    cells = [
        Cell(objective, spec, k, f"{config.name}/{objective}/{spec.label}/seed-{k}")
        for k in range(config.seeds)
        for objective in config.objectives
        for spec in config.samplers
    ]
    return cells, objectives


def _n_objectives(config: CompareConfig, name: str, objective: Objective) -> int:
    """How many values objective `name` returns in this comparison, checked against its
    directions and its reference point."""
    directions = _directions_of(config, objective)
    n = len(directions) if directions else 1
    returns = len(objective.names) if objective.names is not None else 1
    if returns != n:  # (a built-in objective knows how many values it returns)
        raise StudyFileError(
            f"comparison {config.name!r}: objective {name!r} returns {returns} "
            f"value(s){' (' + ', '.join(objective.names) + ')' if objective.names else ''}; "
            f"the comparison's directions give {n}"
        )
    reference = config.reference_point.get(name)
    if reference is not None and len(reference) != n:
        raise StudyFileError(
            f"comparison {config.name!r}: the reference point of {name!r} has "
            f"{len(reference)} values; the objective has {n}"
        )
    return n


def _directions_of(config: CompareConfig, objective: Objective) -> tuple[str, ...] | None:
    """Several objectives: the comparison's directions, else the objective's own."""
    return config.directions or objective.directions


def compare(
    comparison: str | Path | CompareConfig,
    storage: str | None = None,
    *,
    on_study: Callable[[int, Cell, Study], None] | None = None,
    callbacks: Sequence[Callback] = (),
    cluster: Any = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run or continue a comparison (a file or a config) and return its summary.

    Storage: the argument, else HPO_STORAGE, else the file's, else hpo.db.
    With `cluster` (see `hpo.cluster.connect`), each study runs as `workers`
    tasks on the Dask cluster, one study after another.
    """
    config = comparison if isinstance(comparison, CompareConfig) else load_compare_file(comparison)
    planned = plan(config)  # every name and option checked before the storage is opened
    chosen = choose_storage(storage, config.storage)
    with (
        _session(cluster, workers, chosen, config, planned[1]) as session,
        borrowed(chosen, create=True) as store,
    ):
        run_comparison(config, store, on_study, callbacks, planned, session)
        return summarize(load_comparison(config.name, store))


@contextlib.contextmanager
def _session(
    cluster: Any,
    workers: int | None,
    storage: str,
    config: CompareConfig,
    objectives: dict[str, Objective],
) -> Iterator[Session | None]:
    """A session on the Dask cluster whose workers can load every objective (checked
    before anything is written); None without a cluster."""
    if cluster is None:
        yield None
        return
    from hpo.cluster import check_storage, check_workers, connect

    check_storage(storage, cluster)
    with connect(cluster, workers) as session:
        for name, objective in objectives.items():
            check_workers(session, objective.ref, config.objective_options.get(name, {}))
        yield session


def run_comparison(
    config: CompareConfig,
    storage: str | Storage,
    on_study: Callable[[int, Cell, Study], None] | None = None,
    callbacks: Sequence[Callback] = (),
    planned: tuple[list[Cell], dict[str, Objective]] | None = None,
    session: Session | None = None,
) -> list[Study]:
    """Run (or continue) every study of the comparison; return them in plan order.

    `on_study(i, cell, study)` is called before study i runs (also when it
    is skipped as finished); `callbacks` after each trial. `planned`: what
    `plan(config)` returned, if the caller has it. `session`: run each study's
    workers on that Dask cluster.
    """
    cells, objectives = planned or plan(config)
    store = open_storage(storage)
    studies = []
    for i, cell in enumerate(cells):
        study = _open_cell(config, cell, objectives[cell.objective], store)
        if on_study is not None:
            on_study(i, cell, study)
        # (returns at once when the budget is met; first it reaps the trials of a
        # process that died, so an interrupted study is not taken for a finished one)
        if session is None:
            study.optimize(objectives[cell.objective], callbacks=callbacks)
        else:
            study.reap_lost_trials()  # (a finished study is skipped: no tasks to start)
            if not study.budget_met():
                session.optimize(study, callbacks=callbacks)
        studies.append(study)
    return studies


def _open_cell(config: CompareConfig, cell: Cell, objective: Objective, store: Storage) -> Study:
    """The cell's study: loaded (checked against the config, its budget raised) or created."""
    try:
        study = load_study(cell.study_name, store)
    except StudyNotFoundError:
        pass
    else:
        info = study.info
        stored = (info.sampler, info.sampler_options, info.seed)
        wanted = (cell.sampler.name, cell.sampler.options, config.first_seed + cell.seed_index)
        if stored != wanted or (info.budget or 0) > config.trials:
            raise StudyFileError(
                f"comparison {config.name!r} already has study {cell.study_name!r} with "
                f"sampler {info.sampler} {info.sampler_options}, seed {info.seed} and "
                f"{info.budget} trials; this run asks for {wanted[0]} {wanted[1]}, seed "
                f"{wanted[2]} and {config.trials} trials. Give the comparison another name "
                "(--name), or only raise its trials"
            )
        if (info.budget or 0) < config.trials:
            study.set_budget(config.trials)  # more trials: the studies continue
        reference = _given_reference(config, cell)
        if info.user_attrs.get(REFERENCE_POINT_ATTR) != reference:  # (only read when summarizing)
            study.set_user_attr(REFERENCE_POINT_ATTR, reference)
        return study
    directions = _directions_of(config, objective)
    return create_study(
        cell.study_name,
        store,
        objective.space,
        cell.sampler.name,
        config.first_seed + cell.seed_index,
        None if directions else config.direction or objective.direction or "minimize",
        directions=directions,
        sampler_options=cell.sampler.options,
        objective=objective,
        objective_options=config.objective_options.get(cell.objective, {}),
        budget=config.trials,
        user_attrs={
            COMPARISON_ATTR: config.name,
            "objective": cell.objective,
            "sampler": cell.sampler.label,
            "seed_index": cell.seed_index,
            "checkpoints": list(config.checkpoints),
            "optimum": objective.optimum,
            REFERENCE_POINT_ATTR: _given_reference(config, cell),
        },
    )


def _given_reference(config: CompareConfig, cell: Cell) -> list[float] | None:
    reference = config.reference_point.get(cell.objective)
    return None if reference is None else list(reference)


# -- results ---------------------------------------------------------------------------


@dataclass
class Curves:
    """One (objective, sampler): per seed, the best value so far after each trial."""

    best: list[np.ndarray] = field(default_factory=list)  # per seed, (trials,), NaN before any
    ask_seconds: list[np.ndarray] = field(default_factory=list)  # per seed, (trials,)
    seconds: list[float] = field(default_factory=list)  # per seed, the study's wall time
    seeds: list[int] = field(default_factory=list)
    # an objective of several values: per seed, its feasible front's values, (m, k)
    fronts: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Tradeoff:
    """An objective of several values in a comparison: its studies are scored by the
    hypervolume of their front so far against one shared reference point."""

    labels: tuple[str, ...]  # each value's, as figures call it: "error (minimize)"
    directions: tuple[Direction, ...]
    reference: tuple[float, ...] | None  # in the values; None: no trial completed yet
    given: bool  # the comparison file's; else derived from every trial of its studies


@dataclass
class Comparison:
    """A comparison group as stored: curves[objective][sampler label]. For an objective
    of several values (in `tradeoffs`) the curves hold the hypervolume so far, and its
    direction is the hypervolume's, maximize."""

    name: str
    direction: dict[str, Direction]
    optimum: dict[str, float | None]
    budget: int
    checkpoints: tuple[float, ...]
    curves: dict[str, dict[str, Curves]]
    tradeoffs: dict[str, Tradeoff] = field(default_factory=dict)


def load_comparison(name: str, storage: str | Storage) -> Comparison:
    """Read a comparison group back from storage."""
    with borrowed(storage) as store:
        comparison = find_comparison(name, store)
        if comparison is None:
            raise StudyNotFoundError(
                f"no study or comparison named {name!r} in {store.display_url}"
            )
        return comparison


def find_comparison(name: str, store: Storage) -> Comparison | None:
    """The comparison group NAME read back from storage; None if no study belongs to it."""
    members = [s.info for s in store.list_studies() if comparison_of(s.info) == name]
    if not members:
        return None
    comparison = Comparison(
        name,
        {},
        {},
        max(m.budget or 0 for m in members),
        tuple(members[0].user_attrs.get("checkpoints", DEFAULT_CHECKPOINTS)),
        {},
    )
    members.sort(key=lambda m: m.user_attrs["seed_index"])
    # (the info is in hand: no second lookup)
    trials = {m.study_id: Study(store, m).trials for m in members}
    for info in members:
        attrs = info.user_attrs
        objective, label = attrs["objective"], attrs["sampler"]
        if info.n_objectives > 1 and objective not in comparison.tradeoffs:
            comparison.tradeoffs[objective] = _tradeoff(
                [m for m in members if m.user_attrs["objective"] == objective],
                trials,
                comparison.budget,
            )
        comparison.direction[objective] = (
            Direction.MAXIMIZE if info.n_objectives > 1 else info.direction
        )
        comparison.optimum[objective] = attrs.get("optimum")
        curves = comparison.curves.setdefault(objective, {}).setdefault(label, Curves())
        tradeoff = comparison.tradeoffs.get(objective)
        curves.best.append(
            best_so_far(trials[info.study_id], info.direction, comparison.budget)
            if tradeoff is None
            else hypervolume_so_far(
                trials[info.study_id], info.directions, tradeoff.reference, comparison.budget
            )
        )
        trial_list = trials[info.study_id]
        if tradeoff is not None:
            curves.fronts.append(_front_values(trial_list, info.directions, comparison.budget))
        curves.ask_seconds.append(
            np.array([t.ask_seconds if t.ask_seconds is not None else np.nan for t in trial_list])
        )
        curves.seconds.append(_wall_time(trial_list))
        curves.seeds.append(attrs["seed_index"])
    return comparison


def best_so_far(trials: Sequence[FrozenTrial], direction: Direction, length: int) -> np.ndarray:
    """(length,): the best completed value after the i + 1-th counted trial; NaN before one.

    Counted trials are those that take a place in the budget (a trial lost
    or interrupted and re-queued does not; its retry does), in number order.
    """
    counted = [t for t in trials if t.counts_toward_budget][:length]
    values = np.full(length, np.nan)
    for i, trial in enumerate(counted):
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            values[i] = trial.value
    running = direction.best_so_far(values)
    running[len(counted) :] = np.nan
    return running  # NaN after the trials run so far


def _tradeoff(
    members: Sequence[StudyInfo], trials: dict[int, list[FrozenTrial]], budget: int
) -> Tradeoff:
    """The scoring of one objective of several values: the reference point the file gave
    (kept with each study), else one derived from every completed feasible trial that
    the curves count, of all `members`."""
    first = members[0]
    labels = tuple(first.objective_label(i) for i in range(first.n_objectives))
    given = first.user_attrs.get(REFERENCE_POINT_ATTR)
    if given is not None:
        return Tradeoff(labels, first.directions, tuple(given), True)
    done = [
        t
        for m in members
        for t in [t for t in trials[m.study_id] if t.counts_toward_budget][:budget]
        if t.state == TrialState.COMPLETE and t.values is not None and t.feasible
    ]
    if not done:
        return Tradeoff(labels, first.directions, None, False)
    signs = np.array([d.sign for d in first.directions])  # (k,): losses back to values
    point = reference_point(losses(done, first.directions)) * signs  # (k,)
    return Tradeoff(labels, first.directions, tuple(float(v) for v in point), False)


def _front_values(
    trials: Sequence[FrozenTrial], directions: Sequence[Direction], length: int
) -> np.ndarray:
    """(m, k): the values of the feasible front of the first `length` counted trials."""
    counted = [t for t in trials if t.counts_toward_budget][:length]
    done = [t for t in counted if t.state == TrialState.COMPLETE and t.values and t.feasible]
    front = pareto_front(done, directions)
    return np.array([t.values for t in front], dtype=float).reshape(len(front), len(directions))


def hypervolume_so_far(
    trials: Sequence[FrozenTrial],
    directions: Sequence[Direction],
    reference: Sequence[float] | None,
    length: int,
) -> np.ndarray:
    """(length,): the hypervolume of the feasible front after the i + 1-th counted trial,
    against `reference` (in the values); NaN after the trials run so far (and
    everywhere when there is no reference point yet)."""
    counted = [t for t in trials if t.counts_toward_budget][:length]
    values = np.full(length, np.nan)
    if reference is not None and counted:
        signs = np.array([d.sign for d in directions])  # (k,)
        values[: len(counted)] = hypervolume_history(
            counted, directions, np.asarray(reference) * signs
        )
    return values


def _wall_time(trials: Sequence[FrozenTrial]) -> float:
    starts = [t.started_at for t in trials if t.started_at is not None]
    ends = [t.finished_at for t in trials if t.finished_at is not None]
    return max(ends) - min(starts) if starts and ends else 0.0


def summarize(comparison: Comparison) -> dict[str, Any]:
    """The result table as data (what `--json` prints)."""
    from scipy import stats

    budget = comparison.budget
    steps = {f"{round(100 * c)}%": max(1, math.ceil(c * budget)) for c in comparison.checkpoints}
    result: dict[str, Any] = {
        "name": comparison.name,
        "trials": budget,
        "checkpoints": steps,
        "objectives": {},
    }
    overall: dict[str, list[float]] = {}
    for objective, by_sampler in comparison.curves.items():
        sign = comparison.direction[objective].sign
        optimum = comparison.optimum.get(objective)
        labels = list(by_sampler)
        finals = {
            label: np.array([curve[-1] for curve in by_sampler[label].best]) for label in labels
        }
        ranks = _mean_ranks(
            {
                label: dict(zip(by_sampler[label].seeds, finals[label], strict=True))
                for label in labels
            },
            sign,
        )
        leader = min(labels, key=lambda lb: (ranks[lb], sign * np.nanmean(finals[lb])))
        rows = {}
        for label in labels:
            curves = by_sampler[label]
            at = {key: _mean_se([c[step - 1] for c in curves.best]) for key, step in steps.items()}
            p_value = None
            if label != leader:
                p_value = _mann_whitney(finals[label], finals[leader], stats)
            asks = np.concatenate(curves.ask_seconds) if curves.ask_seconds else np.array([])
            asks = asks[np.isfinite(asks)]
            final_mean = at[list(steps)[-1]]["mean"]
            rows[label] = {
                "seeds": len(curves.best),
                "best": at,
                "mean_rank": ranks[label],
                "p_value": p_value,
                "significant": None if p_value is None else p_value < SIGNIFICANCE,
                "regret": (
                    None if optimum is None or final_mean is None else sign * (final_mean - optimum)
                ),
                "median_ask_ms": float(np.median(asks) * 1000) if len(asks) else None,
                "total_seconds": float(sum(curves.seconds)),
            }
            overall.setdefault(label, []).append(ranks[label])
        result["objectives"][objective] = {
            "direction": comparison.direction[objective],
            "optimum": optimum,
            "best_sampler": leader,
            "samplers": rows,
            **_tradeoff_summary(comparison.tradeoffs.get(objective)),
        }
    result["mean_rank"] = dict(
        sorted(((lb, float(np.mean(r))) for lb, r in overall.items()), key=lambda kv: kv[1])
    )
    return result


def _tradeoff_summary(tradeoff: Tradeoff | None) -> dict[str, Any]:
    """What the table says of an objective of several values: scored by hypervolume."""
    if tradeoff is None:
        return {}
    return {
        "score": "hypervolume",
        "objectives": list(tradeoff.labels),
        "reference_point": None if tradeoff.reference is None else list(tradeoff.reference),
        "reference_given": tradeoff.given,
    }


def _mean_se(values: Sequence[float]) -> dict[str, float | None]:
    finite = np.array([v for v in values if np.isfinite(v)])
    if not len(finite):
        return {"mean": None, "se": None}
    se = float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "se": se}


def _mean_ranks(finals: dict[str, dict[int, float]], sign: float) -> dict[str, float]:
    """Mean over seeds of each sampler's rank (1 = best; ties share; missing = last).

    `finals[label][seed]`: the final best value of that sampler's study with
    that seed; samplers are ranked among themselves seed by seed.
    """
    from scipy.stats import rankdata

    labels = list(finals)
    seeds = sorted({seed for by_seed in finals.values() for seed in by_seed})
    table = np.full((len(seeds), len(labels)), np.inf)
    for i, seed in enumerate(seeds):
        for j, label in enumerate(labels):
            value = sign * finals[label].get(seed, np.nan)
            table[i, j] = value if np.isfinite(value) else np.inf
    ranks = np.array([rankdata(row) for row in table])
    return {label: float(ranks[:, j].mean()) for j, label in enumerate(labels)}


def _mann_whitney(a: np.ndarray, b: np.ndarray, stats: Any) -> float | None:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return None
    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
