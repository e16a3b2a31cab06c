"""Figures of a study of several objectives: its Pareto front and its hypervolume history.

`pareto`: every completed trial by its values, one panel per pair of
objectives (one panel for two, three for three); the front (the feasible
trials no other feasible trial dominates, over all the objectives) is
highlighted, the feasible trials it dominates are drawn plainly and the
infeasible ones (a constraint above 0) as grey crosses. With two objectives a
staircase joins the front: the edge of the region it dominates.

`hypervolume`: the hypervolume of the feasible front after each trial
(`hpo.pareto.hypervolume_history`) against a reference point that the
figure states: the one given, the study's own (user attribute
"reference_point", which comparisons set from their file), or one derived
from its completed feasible trials (`hpo.pareto.reference_point`).

`comparison_fronts`: for an objective of several values in a comparison,
each sampler's front, its seeds' fronts pooled.

Axes are named after the objectives: the study's `objective_names`, else
"objective 0 (minimize)".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.pareto import front_mask, hypervolume_history, losses, pareto_front, reference_point
from hpo.plot_kinds import refusal
from hpo.plots import (
    BEST_COLOR,
    COMPLETE_COLOR,
    FAIL_COLOR,
    PlotError,
    maybe_log,
    new_figure,
    plain_text,
)
from hpo.records import REFERENCE_POINT_ATTR, FrozenTrial, TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hpo.comparison import Comparison
    from hpo.study import Study

# how each group of trials is drawn: (label, colour, marker, size, order on top)
GROUPS = {
    "front": ("Pareto front", BEST_COLOR, "o", 30, 3),
    "dominated": ("dominated", COMPLETE_COLOR, "o", 12, 2),
    "infeasible": ("infeasible", FAIL_COLOR, "x", 14, 1),
}


def trial_groups(study: Study) -> dict[str, list[FrozenTrial]]:
    """The completed trials with finite values, split into the front, the feasible
    trials it dominates and the infeasible ones; each in number order."""
    done = [
        t
        for t in study.trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and all(math.isfinite(v) for v in t.values)
    ]
    feasible = [t for t in done if t.feasible]
    front = pareto_front(feasible, study.directions)
    on_front = {t.number for t in front}
    return {
        "front": front,
        "dominated": [t for t in feasible if t.number not in on_front],
        "infeasible": [t for t in done if not t.feasible],
    }


@plain_text
def pareto(study: Study) -> Figure:
    """The trials by their values, a panel per pair of objectives, the front highlighted."""
    _need_several(study, "pareto")
    groups = trial_groups(study)
    if not any(groups.values()):
        raise PlotError("no data for the pareto plot: it needs at least 1 completed trial")
    fig, panels = _panels(study.n_objectives)
    for ax, (i, j) in panels:
        _pair(ax, study, groups, i, j)
    panels[0][0].legend(loc="best", fontsize=8)
    counted = sum(map(len, groups.values()))
    fig.suptitle(f"Pareto front: {len(groups['front'])} of {counted} completed trials")
    return fig


# a trade-off's values often span decades (sizes, an error next to a diverged run's):
# log axes from 1.5 decades on, so that the front is not squeezed into a corner
LOG_SPAN = 30.0
PANEL_INCHES = {1: (6.0, 4.8), 2: (4.0, 3.6), 3: (3.4, 3.2)}  # (wide, high), by columns


def _panels(n_objectives: int) -> tuple[Figure, list[tuple[Any, tuple[int, int]]]]:
    """A figure with a panel per pair of objectives (i, j), three to a row at most."""
    pairs = list(itertools.combinations(range(n_objectives), 2))
    columns = min(3, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    wide, high = PANEL_INCHES[columns]
    fig = new_figure(high * rows + 0.5, wide * columns + 0.6)
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    return fig, list(zip(axes, pairs, strict=False))


def _pair(ax: Any, study: Study, groups: dict[str, list[FrozenTrial]], i: int, j: int) -> None:
    """One panel: objective i across, j up."""
    info = study.info
    for group, trials in groups.items():
        if not trials:
            continue
        label, color, marker, size, order = GROUPS[group]
        ax.scatter(
            [_values(t)[i] for t in trials],
            [_values(t)[j] for t in trials],
            s=size,
            marker=marker,
            color=color,
            label=f"{label} ({len(trials)})",
            zorder=order,
            alpha=1.0 if group == "front" else 0.6,
        )
    front = groups["front"]
    if study.n_objectives == 2 and len(front) > 1:
        # the edge of the dominated region: along the front by the first loss, each
        # point's second value held until the next point (sorted by loss, so a
        # maximized objective runs right to left and the steps still face the right way)
        ordered = sorted(front, key=lambda t: study.directions[0].loss(_values(t)[0]))
        ax.step(
            [_values(t)[0] for t in ordered],
            [_values(t)[1] for t in ordered],
            where="post",
            color=BEST_COLOR,
            linewidth=1.2,
            zorder=2.5,
        )
    everything = [_values(t) for trials in groups.values() for t in trials]
    maybe_log(ax, [v[i] for v in everything], "x", LOG_SPAN)
    maybe_log(ax, [v[j] for v in everything], "y", LOG_SPAN)
    ax.set_xlabel(info.objective_label(i), fontsize=9)
    ax.set_ylabel(info.objective_label(j), fontsize=9)


@plain_text
def comparison_fronts(comparison: Comparison, objective: str) -> Figure:
    """An objective of several values in a comparison: per sampler, the front of its
    studies' feasible trials pooled over seeds, a panel per pair of objectives."""
    tradeoff = comparison.tradeoffs.get(objective)
    if tradeoff is None:
        raise PlotError(
            f"objective {objective!r} of comparison {comparison.name!r} has one value: "
            "the fronts figure is of an objective of several (see best-so-far)"
        )
    signs = np.array([d.sign for d in tradeoff.directions])  # (k,)
    pooled = {
        label: _pooled_front(c.fronts, signs) for label, c in comparison.curves[objective].items()
    }
    if not any(len(points) for points in pooled.values()):
        raise PlotError("no data for the fronts plot: no study has a completed feasible trial")
    fig, panels = _panels(len(signs))
    for ax, (i, j) in panels:
        for label, points in pooled.items():
            if not len(points):
                continue
            dots = ax.scatter(points[:, i], points[:, j], s=16, label=f"{label} ({len(points)})")
            if len(signs) == 2:  # the staircase, as in `pareto`
                ordered = points[np.argsort(signs[0] * points[:, 0])]  # (m, 2)
                ax.step(
                    ordered[:, 0],
                    ordered[:, 1],
                    where="post",
                    color=dots.get_facecolor()[0],
                    linewidth=1.2,
                )
        maybe_log(ax, [p[i] for points in pooled.values() for p in points], "x", LOG_SPAN)
        maybe_log(ax, [p[j] for points in pooled.values() for p in points], "y", LOG_SPAN)
        ax.set_xlabel(tradeoff.labels[i], fontsize=9)
        ax.set_ylabel(tradeoff.labels[j], fontsize=9)
    panels[0][0].legend(loc="best", fontsize=8)
    fig.suptitle(f"{objective}: each sampler's front, its seeds pooled")
    return fig


def _pooled_front(fronts: Sequence[np.ndarray], signs: np.ndarray) -> np.ndarray:
    """(m, k): the front of every seed's front together (values, not losses); a point
    that several seeds found, once."""
    points = np.unique(np.vstack([*fronts, np.empty((0, len(signs)))]), axis=0)  # (n, k)
    return points[front_mask(points * signs)] if len(points) else points


@plain_text
def hypervolume(study: Study, reference: Sequence[float] | None = None) -> Figure:
    """The hypervolume of the feasible front after each trial, its reference point stated."""
    _need_several(study, "hypervolume")
    trials = study.trials
    point = study_reference(study, reference)
    signs = np.array([d.sign for d in study.directions])  # (k,)
    history = hypervolume_history(trials, study.directions, point * signs)  # (n,)
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    ax.step([t.number for t in trials], history, where="post", color=BEST_COLOR, linewidth=2)
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume of the feasible front")
    source = (
        "given"
        if reference is not None
        else "the study's"
        if study.info.user_attrs.get(REFERENCE_POINT_ATTR) is not None
        else "derived from its trials"
    )
    point_text = ", ".join(_number(v) for v in point)
    ax.set_title(f"Hypervolume history; reference point ({point_text}), {source}", fontsize=10)
    return fig


def study_reference(study: Study, given: Sequence[float] | None = None) -> np.ndarray:
    """(k,): the reference point in the objectives' values: the one given, the study's
    own, or one derived from its completed feasible trials (PlotError if none)."""
    point = given if given is not None else study.info.user_attrs.get(REFERENCE_POINT_ATTR)
    if point is not None:
        if len(point) != study.n_objectives:
            raise PlotError(
                f"the reference point {list(point)} has {len(point)} values; study "
                f"{study.name!r} has {study.n_objectives} objectives"
            )
        return np.asarray(point, dtype=float)
    groups = trial_groups(study)
    feasible = groups["front"] + groups["dominated"]
    if not feasible:
        raise PlotError(
            "no data for the hypervolume plot: it needs at least 1 completed feasible trial"
        )
    signs = np.array([d.sign for d in study.directions])  # (k,): losses back to values
    return reference_point(losses(feasible, study.directions)) * signs


def _need_several(study: Study, kind: str) -> None:
    why = refusal(kind, study.name, study.n_objectives)
    if why is not None:
        raise PlotError(why)


def _values(trial: FrozenTrial) -> list[float]:
    """A completed trial's values (trial_groups keeps only trials that have them)."""
    return trial.values or []


def _number(value: float) -> str:
    return f"{value:.4g}"
