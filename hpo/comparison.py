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
seeds, p >= 0.05) is marked so; regret when the optimum is known.
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
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import make_sampler
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
        for spec in config.samplers:
            make_sampler(spec.name, spec.options).check(Space.from_spec(objective.space))
        objectives[name] = objective
    cells = [
        Cell(objective, spec, k, f"{config.name}/{objective}/{spec.label}/seed-{k}")
        for k in range(config.seeds)
        for objective in config.objectives
        for spec in config.samplers
    ]
    return cells, objectives


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
        return study
    return create_study(
        cell.study_name,
        store,
        objective.space,
        cell.sampler.name,
        config.first_seed + cell.seed_index,
        config.direction or objective.direction or "minimize",
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
        },
    )


# -- results ---------------------------------------------------------------------------


@dataclass
class Curves:
    """One (objective, sampler): per seed, the best value so far after each trial."""

    best: list[np.ndarray] = field(default_factory=list)  # per seed, (trials,), NaN before any
    ask_seconds: list[np.ndarray] = field(default_factory=list)  # per seed, (trials,)
    seconds: list[float] = field(default_factory=list)  # per seed, the study's wall time
    seeds: list[int] = field(default_factory=list)


@dataclass
class Comparison:
    """A comparison group as stored: curves[objective][sampler label]."""

    name: str
    direction: dict[str, Direction]
    optimum: dict[str, float | None]
    budget: int
    checkpoints: tuple[float, ...]
    curves: dict[str, dict[str, Curves]]


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
    for info in sorted(members, key=lambda m: m.user_attrs["seed_index"]):
        attrs = info.user_attrs
        objective, label = attrs["objective"], attrs["sampler"]
        comparison.direction[objective] = info.direction
        comparison.optimum[objective] = attrs.get("optimum")
        curves = comparison.curves.setdefault(objective, {}).setdefault(label, Curves())
        trials = Study(store, info).trials  # (the info is in hand: no second lookup)
        curves.best.append(best_so_far(trials, info.direction, comparison.budget))
        curves.ask_seconds.append(
            np.array([t.ask_seconds if t.ask_seconds is not None else np.nan for t in trials])
        )
        curves.seconds.append(_wall_time(trials))
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
        }
    result["mean_rank"] = dict(
        sorted(((lb, float(np.mean(r))) for lb, r in overall.items()), key=lambda kv: kv[1])
    )
    return result


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
