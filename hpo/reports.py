"""HTML reports of a study or of a comparison: one self-contained file.

The file opens offline: styles are inline, figures are inline SVG (from
`hpo.plots`), there is no script and nothing is fetched. Every piece of text
that comes from the data — names, parameter values, attributes, errors —
goes through `_text` (html.escape), so a study named
``<script>alert(1)</script>`` renders as that text.

Study report sections: summary, optimization history, parameter importance,
slices, parallel coordinates, intermediate values, best trials; for a study
of several objectives: summary (with the front's size and hypervolume),
the Pareto front, the hypervolume history, each objective's best, median,
worst and span on the front, intermediate values, the front's trials.
Comparison report sections: summary, results table, best so far per
objective (the hypervolume so far for an objective of several values), each
sampler's front (objectives of several values), time per ask.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo import plots
from hpo.display import (
    COMPARISON_NOTE,
    comparison_heading,
    comparison_rows,
    fmt_duration,
    fmt_time,
    fmt_value,
    state_counts,
)
from hpo.errors import HpoError, StudyNotFoundError
from hpo.importance import ped_anova
from hpo.records import FrozenTrial, TrialState, value_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hpo.comparison import Comparison
    from hpo.storage import Storage
    from hpo.study import Study

BEST_SHOWN = 10
FRONT_SHOWN = 50  # a study of several objectives: the front trials in its table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1000px; padding: 1.5em; color: #222; }
h1 { font-size: 1.6em; overflow-wrap: anywhere; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left;
         vertical-align: top; overflow-wrap: break-word; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figure svg { max-width: 100%; height: auto; }
.note { color: #666; font-style: italic; }
nav a { margin-right: 1em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
"""


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """A whole document; sections are (id, heading, body HTML)."""
    nav = " ".join(f'<a href="#{ident}">{_text(heading)}</a>' for ident, heading, _ in sections)
    body = "\n".join(
        f'<section id="{ident}"><h2>{_text(heading)}</h2>\n{content}</section>'
        for ident, heading, content in sections
    )
    made = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{_text(title)}</h1><nav>{nav}</nav>\n{body}\n"
        f'<p class="note">Made by hpo on {made}.</p></body></html>\n'
    )


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None
) -> str:
    numeric = numeric or [False] * len(headers)
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if n else ''}>{_text(c)}</td>"
            for c, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(make: Callable[[], Figure], caption: str) -> str:
    try:
        svg = plots.to_svg(make())
    except plots.PlotError as exc:
        return f'<p class="note">{_text(exc)}</p>'
    return f'<div class="figure">{svg}</div><p class="note">{_text(caption)}</p>'


def _definitions(items: Sequence[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in items) + "</dl>"


# -- study -------------------------------------------------------------------------------


def study_report(study: Study) -> str:
    if study.n_objectives > 1:
        return tradeoff_report(study)
    trials = study.trials
    info = study.info
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    summary = _summary(study)
    ident, heading, intermediate = _intermediate_section()
    if complete:
        best = study.best_trial
        summary.insert(0, ("best value", f"{fmt_value(best.value)} (trial {best.number})"))
    sections = [
        ("summary", "Summary", _definitions(summary)),
        (
            "history",
            "Optimization history",
            _figure(
                lambda: plots.history(study),
                "Each trial's value (pruned trials at their last reported value) and the "
                "best value so far.",
            ),
        ),
        ("importance", "Parameter importance", _importance_section(study)),
        (
            "slices",
            "Slices",
            _figure(
                lambda: plots.slices(study),
                "The value against each parameter; colour: trial number (later trials are yellow).",
            ),
        ),
        (
            "parallel",
            "Parallel coordinates",
            _figure(
                lambda: plots.parallel(study),
                "One line per completed trial through each parameter's range; colour: "
                "value (the best are drawn last, on top).",
            ),
        ),
        (ident, heading, intermediate(study)),
        ("best-trials", "Best trials", _best_trials(study, complete)),
    ]
    return _page(f"Study {info.name}", sections)


def _summary(study: Study) -> list[tuple[str, Any]]:
    """The study's definition and its trial counts: the summary's items."""
    info = study.info
    counts = {k: v for k, v in state_counts(study.trials).items() if v}
    return [
        ("direction", info.directions_text),
        ("objective", info.objective or "(a Python function)"),
        ("sampler", _with_options(info.sampler, info.sampler_options)),
        ("pruner", _with_options(info.pruner, info.pruner_options)),
        ("budget", info.budget or "-"),
        ("seed", info.seed),
        ("trials", ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "none"),
        ("created", fmt_time(info.created_at)),
        ("storage", study.storage.display_url),
    ]


def _intermediate_section() -> tuple[str, str, Callable[[Study], str]]:
    return (
        "intermediate",
        "Intermediate values",
        lambda study: _figure(
            lambda: plots.intermediate(study),
            "Values reported with trial.report at each step; pruned trials in red, "
            "an x where they stopped.",
        ),
    )


# -- a study of several objectives ---------------------------------------------------------


def tradeoff_report(study: Study) -> str:
    """A study of several objectives: its front, its figures, each objective's spread."""
    from hpo import pareto_plots

    groups = pareto_plots.trial_groups(study)
    feasible = groups["front"] + groups["dominated"]
    summary = _summary(study)
    summary[0] = (
        "objectives",
        ", ".join(study.info.objective_label(i) for i in range(study.n_objectives)),
    )
    summary[1:1] = _front_summary(study, groups)
    ident, heading, intermediate = _intermediate_section()
    sections = [
        ("summary", "Summary", _definitions(summary)),
        (
            "pareto",
            "Pareto front",
            _figure(
                lambda: pareto_plots.pareto(study),
                "Every completed trial by its values, a panel per pair of objectives: the "
                "front (feasible trials no other feasible trial beats in every objective) "
                "highlighted, the feasible trials it dominates plain, the infeasible ones "
                "(a constraint above 0) as grey crosses.",
            ),
        ),
        (
            "hypervolume",
            "Hypervolume history",
            _figure(
                lambda: pareto_plots.hypervolume(study),
                "The hypervolume of the feasible front after each trial: the volume it "
                "dominates up to the reference point in the title.",
            ),
        ),
        ("objectives", "Objectives", _objective_summaries(study, feasible, groups["front"])),
        (ident, heading, intermediate(study)),
        ("front", "Pareto front trials", _front_table(study, groups["front"])),
    ]
    return _page(f"Study {study.info.name}", sections)


def _front_summary(study: Study, groups: dict[str, list[FrozenTrial]]) -> list[tuple[str, Any]]:
    from hpo import pareto_plots
    from hpo.pareto import hypervolume, losses

    if not groups["front"]:
        return [("Pareto front", "no completed feasible trial")]
    point = pareto_plots.study_reference(study)
    signs = np.array([d.sign for d in study.directions])  # (k,)
    volume = hypervolume(losses(groups["front"], study.directions), point * signs)
    return [
        ("Pareto front", f"{len(groups['front'])} trials"),
        (
            "hypervolume",
            f"{fmt_value(volume)} (reference point "
            f"({', '.join(fmt_value(float(v)) for v in point)}))",
        ),
        ("infeasible trials", len(groups["infeasible"])),
    ]


def _objective_summaries(
    study: Study, feasible: Sequence[FrozenTrial], front: Sequence[FrozenTrial]
) -> str:
    """Per objective, over the completed feasible trials: the best (and its trial), the
    median, the worst, and the range the front spans."""
    if not feasible:
        return '<p class="note">No completed feasible trial.</p>'
    table = np.array([t.values for t in feasible])  # (n, k)
    rows = []
    for i, direction in enumerate(study.directions):
        losses = direction.sign * table[:, i]  # (n,)
        best = int(np.argmin(losses))
        on_front = [(t.values or [])[i] for t in front]
        rows.append(
            [
                study.info.objective_label(i),
                f"{fmt_value(float(table[best, i]))} (trial {feasible[best].number})",
                fmt_value(float(np.median(table[:, i]))),
                fmt_value(float(table[int(np.argmax(losses)), i])),
                f"{fmt_value(min(on_front))} to {fmt_value(max(on_front))}",
            ]
        )
    headers = ["objective", "best", "median", "worst", "on the front"]
    return (
        _table(headers, rows, [False, True, True, True, True])
        + f'<p class="note">Over the {len(feasible)} completed feasible trials.</p>'
    )


def _front_table(study: Study, front: Sequence[FrozenTrial]) -> str:
    if not front:
        return '<p class="note">No completed feasible trial.</p>'
    first = study.directions[0]
    shown = sorted(front, key=lambda t: first.loss((t.values or [])[0]))[:FRONT_SHOWN]
    names = list(dict.fromkeys(k for t in shown for k in t.params))
    attrs = list(dict.fromkeys(k for t in shown for k in t.user_attrs))
    constrained = any(t.constraints is not None for t in shown)
    rows = [
        [
            t.number,
            *(fmt_value(v) for v in t.values or []),
            *([", ".join(fmt_value(c) for c in t.constraints or [])] if constrained else []),
            *(fmt_value(t.params.get(n)) for n in names),
            *(fmt_value(t.user_attrs.get(a)) for a in attrs),
            fmt_duration(t.duration),
        ]
        for t in shown
    ]
    labels = [study.info.objective_label(i) for i in range(study.n_objectives)]
    headers = ["trial", *labels, *(["constraints"] if constrained else []), *names, *attrs]
    numeric = [True] * (1 + len(labels)) + [False] * (len(headers) - 1 - len(labels)) + [True]
    more = (
        f'<p class="note">The first {FRONT_SHOWN} of {len(front)}, by '
        f"{_text(labels[0])}; all of them: hpo best {_text(study.name)}</p>"
        if len(front) > FRONT_SHOWN
        else ""
    )
    return _table([*headers, "duration"], rows, numeric) + more


def _with_options(name: str, options: dict[str, Any]) -> str:
    return f"{name} {json.dumps(options)}" if options else name


def _importance_section(study: Study) -> str:
    scores = ped_anova(plots.study_params(study), study.trials, study.direction)
    if not scores:
        return '<p class="note">Not enough completed trials (at least 4) to judge.</p>'
    figure = _figure(lambda: plots.importance_bars(scores), "")
    rows = [[name, f"{score:.3f}"] for name, score in scores.items()]
    return (
        figure
        + _table(["parameter", "importance"], rows, [False, True])
        + '<p class="note">PED-ANOVA (Watanabe, Bansal and Hutter, 2023): how much each '
        "parameter's distribution among the best 10% of the completed trials differs "
        "from its distribution among all of them (Pearson divergence), as a share of "
        "the total.</p>"
    )


def _best_trials(study: Study, complete: Sequence[FrozenTrial]) -> str:
    if not complete:
        return '<p class="note">No trial completed.</p>'
    best = sorted(complete, key=lambda t: study.direction.loss(value_of(t)))[:BEST_SHOWN]
    names = list(dict.fromkeys(k for t in best for k in t.params))
    attrs = list(dict.fromkeys(k for t in best for k in t.user_attrs))
    rows = [
        [
            t.number,
            fmt_value(t.value),
            *(fmt_value(t.params.get(n)) for n in names),
            *(fmt_value(t.user_attrs.get(a)) for a in attrs),
            fmt_duration(t.duration),
        ]
        for t in best
    ]
    headers = ["trial", "value", *names, *attrs, "duration"]
    numeric = [True, True, *([False] * (len(names) + len(attrs))), True]
    return _table(headers, rows, numeric)


# -- comparison --------------------------------------------------------------------------


def comparison_report(comparison: Comparison, summary: dict[str, Any]) -> str:
    sections = [
        (
            "summary",
            "Summary",
            _definitions(
                [
                    ("objectives", ", ".join(comparison.curves)),
                    ("samplers", ", ".join(summary["mean_rank"])),
                    ("trials per study", comparison.budget),
                    (
                        "mean rank across objectives",
                        ", ".join(f"{k} {v:.2f}" for k, v in summary["mean_rank"].items()),
                    ),
                ]
            ),
        )
    ]
    tables = [
        f"<h3>{_text(comparison_heading(objective, data))}</h3>"
        + _table(*comparison_rows(data, summary["checkpoints"]))
        for objective, data in summary["objectives"].items()
    ]
    tables.append(
        f'<p class="note">Best value so far: mean ± standard error over seeds. '
        f"{_text(COMPARISON_NOTE)}</p>"
    )
    sections.append(("results", "Results", "\n".join(tables)))
    curves = "\n".join(
        _figure(
            functools.partial(plots.comparison_curves, comparison, objective),
            f"{objective}: the line is the mean over seeds, the band ±1 standard error.",
        )
        for objective in comparison.curves
    )
    sections.append(("curves", "Best so far", curves))
    if comparison.tradeoffs:
        sections.append(("fronts", "Fronts", _fronts(comparison)))
    sections.append(
        (
            "ask-times",
            "Time per ask",
            _figure(
                lambda: plots.ask_times(comparison),
                "Median over objectives and seeds of the sampler's time to "
                "propose each trial's point (log scale).",
            ),
        )
    )
    return _page(f"Comparison {comparison.name}", sections)


def _fronts(comparison: Comparison) -> str:
    """Objectives of several values: each sampler's front, a figure per objective."""
    from hpo.pareto_plots import comparison_fronts

    return "\n".join(
        _figure(
            functools.partial(comparison_fronts, comparison, objective),
            f"{objective}: per sampler, the front of its studies' feasible trials, the "
            "seeds pooled. The table ranks the samplers by each study's own hypervolume.",
        )
        for objective in comparison.tradeoffs
    )


def report(name: str, storage: str | Storage, output: str | Path | None = None) -> Path:
    """Write the report of study or comparison NAME; return the file written.

    `output`: default NAME.html in the current directory (characters unsafe
    in file names replaced by _).
    """
    from hpo.catalog import borrowed, load_study
    from hpo.comparison import find_comparison, summarize

    path = Path(output) if output is not None else default_report_path(name)
    with borrowed(storage) as store:
        try:
            document = study_report(load_study(name, store))
        except StudyNotFoundError:
            comparison = find_comparison(name, store)
            if comparison is None:
                raise  # (load_study's message: it suggests near names)
            document = comparison_report(comparison, summarize(comparison))
    try:
        path.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise HpoError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path


def default_report_path(name: str) -> Path:
    """NAME.html in the current directory, characters unsafe in file names replaced by _."""
    return Path((re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "report") + ".html")
