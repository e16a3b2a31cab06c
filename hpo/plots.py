"""Figures of a study and of a comparison, drawn with matplotlib.

Only `matplotlib.figure.Figure` is used, never pyplot: no global figure
state, no screen needed. Each function returns a Figure; `to_svg` turns one
into an inline <svg> element (text drawn as paths, so the figure needs no
font and carries no markup from the data), `save` writes PNG or SVG.

Study figures (`STUDY_KINDS`): the optimization history, parameter
importance (PED-ANOVA, `hpo.importance`), a slice plot per parameter,
parallel coordinates and the intermediate values; for a study of several
objectives the Pareto front and the hypervolume history instead
(`hpo.pareto_plots`). Comparison figures: the best value so far per sampler
(mean and standard error over seeds; the hypervolume so far for an
objective of several values) and the median time per ask.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.errors import HpoError
from hpo.importance import ped_anova
from hpo.plot_kinds import COMPARISON_KINDS, STUDY_KINDS, refusal, study_kinds
from hpo.records import FrozenTrial, TrialState, completed_finite, value_of
from hpo.space import Numeric, Param

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hpo.comparison import Comparison
    from hpo.storage import Storage
    from hpo.study import Study

FORMATS = (".png", ".svg")
WIDTH = 8.0  # inches; at 100 dpi, 800 px
COMPLETE_COLOR, PRUNED_COLOR, FAIL_COLOR, BEST_COLOR = "#1f77b4", "#d62728", "#7f7f7f", "#ff7f0e"


class PlotError(HpoError):
    """A figure that cannot be drawn (unknown kind, no data, unsupported file type)."""


def study_figure(kind: str, study: Study) -> Figure:
    from hpo import pareto_plots

    makers: dict[str, Callable[[Study], Figure]] = {
        "history": history,
        "importance": importance,
        "slice": slices,
        "parallel": parallel,
        "intermediate": intermediate,
        "pareto": pareto_plots.pareto,
        "hypervolume": pareto_plots.hypervolume,
    }
    if kind not in makers:
        from hpo.errors import did_you_mean

        raise PlotError(
            f"unknown plot kind {kind!r}{did_you_mean(kind, makers)}; "
            f"kinds: {', '.join(STUDY_KINDS)}"
        )
    why = refusal(kind, study.name, study.n_objectives)
    if why is not None:
        raise PlotError(why)
    return makers[kind](study)


def study_params(study: Study) -> list[Param]:
    """The declared parameters, then those added by suggest_* calls."""
    return [dim.param for dim in study.space.dims] + list(study.suggested_params.values())


def new_figure(height: float, width: float = WIDTH) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plain_text(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw with mathtext off: names and values from the data are text ("$" stays "$").

    matplotlib reads the setting when each Text is made; a context keeps it
    from the user's own figures.
    """

    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> Figure:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn


def _need(trials: Sequence[FrozenTrial], what: str, at_least: int = 1) -> None:
    if len(trials) < at_least:
        raise PlotError(
            f"no data for the {what} plot: it needs at least {at_least} completed trial(s)"
        )


@plain_text
def history(study: Study) -> Figure:
    """Each trial's value by number, and the best value so far."""
    trials = study.trials
    done = completed_finite(trials)
    _need(done, "history")
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    ax.scatter(
        [t.number for t in done],
        [value_of(t) for t in done],
        s=14,
        color=COMPLETE_COLOR,
        label="complete",
        zorder=2,
    )
    pruned = [
        t
        for t in trials
        if t.state == TrialState.PRUNED and t.value is not None and math.isfinite(t.value)
    ]
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [value_of(t) for t in pruned],
            s=14,
            marker="x",
            color=PRUNED_COLOR,
            label="pruned (last value)",
            zorder=2,
        )
    values = np.array([value_of(t) for t in done])  # (n,)
    best = study.direction.best_so_far(values)
    ax.step(
        [t.number for t in done],
        best,
        where="post",
        color=BEST_COLOR,
        linewidth=2,
        label="best so far",
    )
    maybe_log(ax, list(values))
    ax.set_xlabel("trial")
    ax.set_ylabel("value")
    ax.set_title("Optimization history")
    ax.legend(loc="best", fontsize=8)
    return fig


def maybe_log(ax: Any, values: Sequence[float], axis: str = "y", span: float = 1e3) -> None:
    """A log scale when positive values span more than `span` (three decades)."""
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and positive and max(positive) / min(positive) > span:
        _log_scale(ax, axis)


def _log_scale(ax: Any, axis: str = "y") -> None:
    """A log axis with plain-text tick labels (mathtext is off, plain_text: matplotlib's
    own labels would show their source, $\\mathdefault{10^{1}}$). Powers of ten are
    labelled (at most 6, skipping decades on a wide axis); on an axis under 2.5
    decades wide, 3 x a power of ten too, and under one decade 2 x and 5 x, so that
    a narrow range still has numbers and a narrow panel stays readable."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    ticks = ax.yaxis if axis == "y" else ax.xaxis

    def minor_label(value: float, _: int | None) -> str:
        low, high = sorted(ticks.get_view_interval())
        if value <= 0 or low <= 0:
            return ""
        decades = math.log10(high / low)
        shown = (2, 5) if decades < 1 else (3,) if decades < 2.5 else ()
        coefficient = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
        return f"{value:g}" if coefficient in shown else ""

    ticks.set_major_locator(LogLocator(numticks=6))
    ticks.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ticks.set_minor_formatter(FuncFormatter(minor_label))


@plain_text
def importance(study: Study) -> Figure:
    """PED-ANOVA importance of each parameter (the best 10% against all trials)."""
    params = study_params(study)
    if not params:
        raise PlotError("no data for the importance plot: the study has no parameters")
    return importance_bars(ped_anova(params, study.trials, study.direction))


@plain_text
def importance_bars(scores: dict[str, float]) -> Figure:
    """Bars of importance scores (parameter -> share), most important on top."""
    if not scores:
        raise PlotError("no data for the importance plot: it needs at least 4 completed trials")
    names = list(scores)[::-1]
    fig = new_figure(0.9 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, [scores[n] for n in names], color=COMPLETE_COLOR)
    ax.set_xlabel("importance (PED-ANOVA, share of the total)")
    ax.set_xlim(0, max(1.0, max(scores.values())) * 1.05)
    ax.set_title("Parameter importance")
    return fig


@plain_text
def slices(study: Study) -> Figure:
    """The value against each parameter, coloured by trial number."""
    done = completed_finite(study.trials)
    _need(done, "slice")
    params = [p for p in study_params(study) if any(p.name in t.params for t in done)]
    if not params:
        raise PlotError("no data for the slice plot: the trials have no parameters")
    columns = min(3, len(params))
    rows = math.ceil(len(params) / columns)
    fig = new_figure(2.6 * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    values = [value_of(t) for t in done]
    for ax, param in zip(axes.flat, params, strict=False):
        active = [t for t in done if param.contains(t.params.get(param.name))]
        xs = [_axis_value(param, t.params[param.name]) for t in active]
        points = ax.scatter(
            xs,
            [value_of(t) for t in active],
            c=[t.number for t in active],
            cmap="viridis",
            s=12,
            vmin=0,
            vmax=max(t.number for t in done),
        )
        _label_axis(ax, param)
        maybe_log(ax, values)
        ax.set_ylabel("value", fontsize=8)
    for ax in list(axes.flat)[len(params) :]:
        ax.set_visible(False)
    fig.colorbar(points, ax=axes, label="trial", shrink=0.8)
    fig.suptitle("Slices: the value against each parameter")
    return fig


def _axis_value(param: Param, value: Any) -> float:
    if isinstance(param, Numeric):
        return float(value)
    return float(param.index(value))


def _label_axis(ax: Any, param: Param) -> None:
    ax.set_xlabel(param.name, fontsize=9)
    if isinstance(param, Numeric):
        if param.log:
            _log_scale(ax, "x")
        return
    labels = [str(c) for c in param.choices]
    crowded = sum(map(len, labels)) > 16  # side by side they would run into each other
    ax.set_xticks(
        range(len(labels)),
        labels,
        fontsize=8,
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
    )
    ax.set_xlim(-0.5, len(labels) - 0.5)


@plain_text
def parallel(study: Study) -> Figure:
    """Parallel coordinates: a line per completed trial across the parameters' axes.

    Each axis runs from the parameter's low to high (log where it is log; the
    choices in order for a categorical); lines are coloured by value, the
    best drawn last. A parameter a trial does not use leaves a gap.
    """
    done = completed_finite(study.trials)
    _need(done, "parallel coordinates", 2)
    params = [p for p in study_params(study) if any(p.name in t.params for t in done)]
    if not params:
        raise PlotError("no data for the parallel coordinates: the trials have no parameters")
    fig = new_figure(3.8)
    ax = fig.add_subplot()
    ordered = sorted(done, key=lambda t: -study.direction.loss(value_of(t)))  # worst first
    low, high = min(map(value_of, done)), max(map(value_of, done))
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    norm = Normalize(low, high if high > low else low + 1)
    cmap = colormaps["viridis_r" if study.direction.sign > 0 else "viridis"]  # best: yellow
    xs = np.arange(len(params) + 1)
    for trial in ordered:
        ys = [_unit(p, trial.params.get(p.name)) for p in params]
        value = value_of(trial)
        ys.append((value - low) / (high - low) if high > low else 0.5)
        ax.plot(xs, ys, color=cmap(norm(value)), alpha=0.6, linewidth=1)
    for x in range(len(params) + 1):
        ax.axvline(x, color="#444444", linewidth=0.8)
    ax.set_xticks(xs, [p.name for p in params] + ["value"], rotation=20, fontsize=8)
    for x, param in enumerate(params):
        bottom, top = _ends(param)
        ax.annotate(bottom, (x, -0.04), ha="center", va="top", fontsize=7, annotation_clip=False)
        ax.annotate(top, (x, 1.04), ha="center", va="bottom", fontsize=7, annotation_clip=False)
    ax.set_ylim(-0.12, 1.12)
    ax.set_yticks([])
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label="value")
    ax.set_title("Parallel coordinates", pad=18)
    return fig


def _unit(param: Param, value: Any) -> float:
    """A value's place on its axis in [0, 1]; NaN (a gap) when the trial lacks it."""
    if value is None or not param.contains(value):
        return math.nan
    if isinstance(param, Numeric):
        return float(param.encode(value))
    return _axis_value(param, value) / max(1, len(param.choices) - 1)


def _ends(param: Param) -> tuple[str, str]:
    if isinstance(param, Numeric):
        return f"{param.low:g}", f"{param.high:g}"
    return str(param.choices[0]), str(param.choices[-1])


@plain_text
def intermediate(study: Study) -> Figure:
    """Every trial's intermediate values by step; pruned trials in red, ending in x."""
    trials = [t for t in study.trials if t.intermediate]
    if not trials:
        raise PlotError(
            "no data for the intermediate plot: no trial reported intermediate "
            "values (trial.report)"
        )
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    shown: set[str] = set()
    for trial in trials:
        steps = sorted(trial.intermediate)
        values = [trial.intermediate[s] for s in steps]
        pruned = trial.state == TrialState.PRUNED
        label = "pruned" if pruned else trial.state.value.lower()
        color = (
            PRUNED_COLOR
            if pruned
            else (COMPLETE_COLOR if trial.state == TrialState.COMPLETE else FAIL_COLOR)
        )
        ax.plot(
            steps,
            values,
            color=color,
            alpha=0.5,
            linewidth=1,
            label=None if label in shown else label,
        )
        shown.add(label)
        if pruned:
            ax.plot(steps[-1], values[-1], marker="x", color=PRUNED_COLOR, markersize=6)
    maybe_log(ax, [v for t in trials for v in t.intermediate.values() if math.isfinite(v)])
    ax.set_xlabel("step")
    ax.set_ylabel("intermediate value")
    ax.set_title("Intermediate values (pruned trials in red)")
    ax.legend(loc="best", fontsize=8)
    return fig


# -- comparisons ------------------------------------------------------------------------


@plain_text
def comparison_curves(comparison: Comparison, objective: str) -> Figure:
    """Per sampler: the mean best value so far over seeds, with a ±1 standard error band."""
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    optimum = comparison.optimum.get(objective)
    everything = []
    for label, curves in comparison.curves[objective].items():
        table = np.array(curves.best)  # (seeds, trials)
        if optimum is not None:  # regret: on a log axis the late differences show
            sign = comparison.direction[objective].sign
            table = np.maximum(sign * (table - optimum), 1e-12)
        with np.errstate(invalid="ignore"), _quiet():
            mean = np.nanmean(table, axis=0)
            count = np.sum(np.isfinite(table), axis=0)
            se = np.nanstd(table, axis=0, ddof=1) / np.sqrt(np.maximum(count, 1))
        x = np.arange(1, len(mean) + 1)
        line = ax.plot(x, mean, label=label, linewidth=1.6)[0]
        ax.fill_between(
            x,
            mean - np.nan_to_num(se),
            mean + np.nan_to_num(se),
            color=line.get_color(),
            alpha=0.18,
            linewidth=0,
        )
        everything += [v for v in mean if np.isfinite(v)]
    several = objective in comparison.tradeoffs
    if optimum is not None:
        _log_scale(ax)
        ax.set_ylabel("regret (best value so far - optimum)")
    elif several:
        ax.set_ylabel("hypervolume so far")
    else:
        maybe_log(ax, everything)
        ax.set_ylabel("best value so far")
    ax.set_xlabel("trial")
    ax.set_title(
        f"{objective}: {'hypervolume' if several else 'best'} so far, mean ± standard "
        "error over seeds"
    )
    ax.legend(loc="best", fontsize=8, ncols=2)
    return fig


@plain_text
def ask_times(comparison: Comparison) -> Figure:
    """Median time per ask (ms) by trial number, per sampler, over objectives and seeds."""
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    labels: dict[str, list[np.ndarray]] = {}
    for by_sampler in comparison.curves.values():
        for label, curves in by_sampler.items():
            labels.setdefault(label, []).extend(curves.ask_seconds)
    for label, rows in labels.items():
        length = max(len(r) for r in rows)
        table = np.full((len(rows), length), np.nan)
        for i, row in enumerate(rows):
            table[i, : len(row)] = row
        with _quiet():
            median = np.nanmedian(table, axis=0) * 1000
        ax.plot(np.arange(1, length + 1), median, label=label, linewidth=1.4)
    _log_scale(ax)
    ax.set_xlabel("trial")
    ax.set_ylabel("time per ask (ms, median)")
    ax.set_title("Sampler time per ask")
    ax.legend(loc="best", fontsize=8, ncols=2)
    return fig


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's warnings on all-NaN columns (trials no seed has run yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# -- output ----------------------------------------------------------------------------


def to_svg(fig: Figure) -> str:
    """The figure as an <svg> element for inline use in HTML."""
    buffer = io.StringIO()
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "hpo"}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _check_format(path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise PlotError(f"cannot write {str(path)!r}: give a .png or .svg file name")


def save(fig: Figure, path: str | Path) -> None:
    path = Path(path)
    _check_format(path)
    try:
        fig.savefig(path, format=path.suffix.lower()[1:])
    except OSError as exc:
        raise PlotError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def plot(
    name: str, kind: str, output: str | Path, storage: str | Storage, objective: str | None = None
) -> Path:
    """Draw one figure of study or comparison NAME into `output` (.png or .svg).

    Study kinds: STUDY_KINDS; comparison kinds: COMPARISON_KINDS (best-so-far
    draws `objective`, by default the comparison's first).
    """
    from hpo.catalog import borrowed, load_study
    from hpo.comparison import find_comparison
    from hpo.errors import StudyNotFoundError

    _check_format(Path(output))
    with borrowed(storage) as store:
        try:
            study = load_study(name, store)
        except StudyNotFoundError:
            comparison = find_comparison(name, store)
            if comparison is None:
                raise  # (load_study's message: it suggests near names)
            figure = comparison_figure(kind, comparison, objective)
        else:
            if kind in COMPARISON_KINDS:
                raise PlotError(
                    f"{kind!r} is a figure of a comparison; {name!r} is a study "
                    f"(its kinds: {', '.join(study_kinds(study.n_objectives))})"
                )
            figure = study_figure(kind, study)
    save(figure, output)
    return Path(output)


def comparison_figure(kind: str, comparison: Comparison, objective: str | None) -> Figure:
    if kind == "ask-time":
        return ask_times(comparison)
    if kind not in ("best-so-far", "fronts"):
        raise PlotError(
            f"{kind!r} is not a figure of a comparison; its kinds: {', '.join(COMPARISON_KINDS)}"
        )
    # (by default the first objective; for fronts, the first of several values)
    candidates = list(comparison.tradeoffs if kind == "fronts" else comparison.curves)
    objective = objective or next(iter(candidates), None) or next(iter(comparison.curves))
    if objective not in comparison.curves:
        raise PlotError(
            f"comparison {comparison.name!r} has no objective {objective!r}; it "
            f"has {', '.join(comparison.curves)}"
        )
    if kind == "fronts":
        from hpo.pareto_plots import comparison_fronts

        return comparison_fronts(comparison, objective)
    return comparison_curves(comparison, objective)
