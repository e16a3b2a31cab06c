"""Text for people: numbers, durations, tables, progress lines, study summaries.

Everything here may print text that came from the database (names, parameter
values, errors, attributes), written by anyone who could write to it: it
reaches a terminal only through `hpo.terminal.printable`, the one sanitizer.
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import sqlalchemy as sa

from hpo.connection import STORAGE_VARIABLE, choose_storage, parse_url
from hpo.errors import NoCompletedTrialsError, StorageError
from hpo.records import (
    FrozenTrial,
    TrialState,
    completed_finite,
    error_summary,
    param_names,
    value_of,
)
from hpo.storage import comparison_of
from hpo.terminal import printable

if TYPE_CHECKING:
    from hpo.storage import StudySummary
    from hpo.study import Study


def write_line(stream: TextIO, text: str) -> None:
    """One line of progress, made printable, written at once."""
    stream.write(printable(text, newlines=False) + "\n")
    stream.flush()


def fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, with a header rule."""
    cells = [[printable(str(c), newlines=False) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def curve(values: dict[int, float], height: int = 8, width: int = 60) -> str:
    """A text plot of intermediate values: step on x, value on y ('*' per step)."""
    finite = {s: v for s, v in values.items() if math.isfinite(v)}
    if not finite:
        return "  (no finite values)"
    steps = sorted(finite)
    low, high = min(finite.values()), max(finite.values())
    span = high - low or 1.0
    first, last = steps[0], steps[-1]
    columns = min(width, last - first + 1)
    grid = [[" "] * columns for _ in range(height)]
    for step in steps:
        col = 0 if last == first else round((step - first) / (last - first) * (columns - 1))
        row = round((high - finite[step]) / span * (height - 1))
        grid[row][col] = "*"
    label = max(len(fmt_value(high)), len(fmt_value(low)))
    lines: list[str] = []
    for i, cells in enumerate(grid):
        name = fmt_value(high) if i == 0 else fmt_value(low) if i == height - 1 else ""
        lines.append(f"  {name:>{label}} |{''.join(cells)}")
    lines.append(f"  {'':>{label}} +{'-' * columns}")
    lines.append(
        f"  {'':>{label}}  step {first}{' ' * max(1, columns - 10 - len(str(last)))}{last}"
    )
    return "\n".join(lines)


def studies_table(summaries: Sequence[StudySummary], every_study: bool = False) -> str:
    """The `hpo studies` table: a row per study, but one per comparison (its member
    studies summed: a comparison is dozens of studies) unless `every_study`."""
    rows: list[list[Any]] = []
    comparisons: dict[str, list[StudySummary]] = {}
    for summary in summaries:
        group = comparison_of(summary.info)
        if group is None or every_study:
            info = summary.info
            rows.append(
                [
                    info.name,
                    info.directions_text,
                    info.sampler,
                    _complete_of(summary.counts),
                    info.budget or "-",
                    fmt_value(summary.best_value),
                    fmt_time(info.created_at),
                ]
            )
        else:
            comparisons.setdefault(group, []).append(summary)
    for group, members in comparisons.items():
        counts = sum((Counter(m.counts) for m in members), Counter())
        samplers = {m.info.user_attrs.get("sampler", m.info.sampler) for m in members}
        budgets = {m.info.budget for m in members}
        budget = f"{budgets.pop()} each" if len(budgets) == 1 and None not in budgets else "-"
        rows.append(
            [
                group,
                "(comparison)",
                f"{len(samplers)} samplers, {len(members)} studies",
                _complete_of(counts),
                budget,
                "-",
                fmt_time(min(m.info.created_at for m in members)),
            ]
        )
    text = table(
        ["name", "direction", "sampler", "complete/trials", "budget", "best", "created"], rows
    )
    if comparisons:
        text += "\n(a comparison's studies: `hpo studies --all`; its result: `hpo report NAME`)"
    return text


def _complete_of(counts: dict[str, int]) -> str:
    return f"{counts.get('COMPLETE', 0)}/{sum(counts.values())}"


def trials_table(trials: Sequence[FrozenTrial], now: float | None = None) -> str:
    names = param_names(trials)
    headers = ["#", "state", "value", "duration", *names, "note"]
    rows = []
    for trial in trials:
        rows.append(
            [
                trial.number,
                trial.state,
                fmt_result(trial),
                fmt_duration(trial.duration),
                *(fmt_value(trial.params.get(n)) for n in names),
                _note(trial, now),
            ]
        )
    return table(headers, rows)


def _note(trial: FrozenTrial, now: float | None) -> str:
    if not trial.feasible:
        return "infeasible (constraints " + ", ".join(map(fmt_value, trial.constraints or [])) + ")"
    if trial.state == TrialState.PRUNED and trial.last_step is not None:
        return f"pruned at step {trial.last_step}"
    if trial.state == TrialState.FAIL:
        return error_summary(trial.error)[:80]
    if trial.state == TrialState.RUNNING and trial.heartbeat_at is not None:
        age = (now or time.time()) - trial.heartbeat_at
        return f"heartbeat {age:.0f}s ago ({trial.worker})"
    if "retry_of" in trial.system_attrs:
        return f"retry of #{trial.system_attrs['retry_of']}"
    return ""


def state_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    counts = {state.value: 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.value] += 1
    return counts


def study_summary(study: Study, elapsed: float | None = None) -> str:
    """What a finished run prints: counts, the best trial, where to look next."""
    trials = study.trials
    counts = state_counts(trials)
    parts = [
        f"{counts[s]} {s.lower()}"
        for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
        if counts[s]
    ]
    took = f" in {fmt_duration(elapsed)}" if elapsed is not None else ""
    counted = sum(t.counts_toward_budget for t in trials)
    if counted == len(trials):
        budget = f" of a budget of {study.budget}" if study.budget else ""
    else:  # a failure queued again, the retry waiting, a trial running: not all count
        budget = f", {counted} counted" + (
            f" toward a budget of {study.budget}" if study.budget else ""
        )
    lines = [
        f"Study {study.name!r}: {len(trials)} trials{budget} "
        f"({', '.join(parts) or 'none finished'}){took}, stored in "
        f"{study.storage.display_url}"
    ]
    if study.n_objectives > 1:
        return "\n".join(lines + _front_summary(study))
    try:
        best = study.best_trial
    except NoCompletedTrialsError as exc:
        lines.append("No trial completed." if "yet" in str(exc) else f"{exc}.")
    else:
        lines.append(f"Best value {fmt_value(best.value)} at trial {best.number}:")
        lines += [f"  {name} = {fmt_value(value)}" for name, value in best.params.items()]
        if best.user_attrs:
            attrs = ", ".join(f"{k} {fmt_value(v)}" for k, v in best.user_attrs.items())
            lines.append(f"  ({attrs})")
        url = study.storage.url
        lines.append(
            f"Inspect: {command(url, 'trials', study.name, '--sort', 'value')}   "
            f"{command(url, 'show', study.name, str(best.number))}{password_note(url)}"
        )
    return "\n".join(lines)


def _front_summary(study: Study, shown: int = 10) -> list[str]:
    """A study of several objectives: its Pareto front, best trials first."""
    try:
        front = study.best_trials
    except NoCompletedTrialsError as exc:
        return [f"{exc}."]
    named = study.info.objective_names is not None
    names = " / ".join(
        f"{i}: {study.info.objective_label(i) if named else d}"
        for i, d in enumerate(study.directions)
    )
    lines = [f"Pareto front: {len(front)} trials (objectives {names}):"]
    headers = ["#", "values", *param_names(front)]
    rows = [
        [t.number, fmt_result(t), *(fmt_value(t.params.get(n)) for n in headers[2:])]
        for t in front[:shown]
    ]
    lines.append(table(headers, rows))
    if len(front) > shown:
        lines.append(f"... and {len(front) - shown} more")
    lines.append(f"Inspect: {command(study.storage.url, 'best', study.name)}")
    return lines


def fmt_result(trial: FrozenTrial) -> str:
    """Its value, or its values as (v0, v1, ...) in a study of several objectives."""
    if trial.objective_values is not None:
        return "(" + ", ".join(fmt_value(v) for v in trial.objective_values) + ")"
    return fmt_value(trial.value)


_LIVE_REFRESH_S = 0.1


def command(url: sa.URL, *words: str) -> str:
    """An `hpo` command line that works when pasted: --storage unless the database is
    the one a bare command opens. A password is never printed: a URL with one is
    given as "$HPO_STORAGE" (see `password_note`)."""
    line = " ".join(shlex.quote(word) for word in ("hpo", *words))
    if url == _bare_command_url():
        return line
    if url.password:
        return f'{line} --storage "${STORAGE_VARIABLE}"'
    return f"{line} --storage {shlex.quote(url.render_as_string(hide_password=False))}"


def password_note(url: sa.URL) -> str:
    """What a command with "$HPO_STORAGE" needs said, if `command` gave one."""
    if url.password and url != _bare_command_url():
        return f" (with {STORAGE_VARIABLE} set to the database URL; its password is not printed)"
    return ""


def _bare_command_url() -> sa.URL | None:
    try:
        return parse_url(choose_storage())
    except StorageError:  # HPO_STORAGE set but empty: a bare command opens nothing
        return None


class Progress:
    """A study callback that shows progress.

    On a terminal: one live line (trial n/N, elapsed, ETA, best so far),
    rewritten in place. Otherwise: one line per finished trial.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty() if live is None else live
        self._terminal = LiveLine(self._stream)
        self._start = time.monotonic()
        self._done_before: int | None = None
        self._best: FrozenTrial | None = None

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if self._done_before is None:  # first trial: learn what was there before
            before = _finished_before(study.trials, trial)
            self._done_before = sum(t.counts_toward_budget for t in before)
            if study.n_objectives == 1:
                done = [t for t in completed_finite(before) if t.feasible]
                self._best = study.direction.best_of(done, key=value_of) if done else None
        best = self._best_text(study, trial)
        if self._live:
            self._terminal.show(lambda: self._live_line(study, best))
            return
        detail = (
            fmt_result(trial)
            if trial.state != TrialState.FAIL
            else error_summary(trial.error)[:100]
        )
        write_line(
            self._stream,
            f"trial {trial.number} {trial.state} {detail}  {best}  "
            f"[{fmt_duration(trial.duration)}]",
        )

    def _best_text(self, study: Study, trial: FrozenTrial) -> str:
        """'best 0.21 (#78)' so far, as of this trial's end (one objective; with several,
        the size of the front is in the summary)."""
        if study.n_objectives > 1:
            return ""
        if (
            trial.state == TrialState.COMPLETE
            and trial.feasible
            and (
                self._best is None
                or study.direction.is_better(value_of(trial), value_of(self._best))
            )
        ):
            self._best = trial
        if self._best is None:
            return "best -"
        return f"best {fmt_value(self._best.value)} (#{self._best.number})"

    def _live_line(self, study: Study, best: str) -> str:
        elapsed = time.monotonic() - self._start
        done = study.n_counted
        total = study.budget
        if total is None:
            return f"trial {done} | {fmt_duration(elapsed)} | {best}"
        ran = done - (self._done_before or 0)
        eta = elapsed / ran * max(total - done, 0) if ran > 0 else None
        return (
            f"trial {done}/{total} | {fmt_duration(elapsed)} elapsed | "
            f"ETA {fmt_duration(eta)} | {best}"
        )

    def close(self) -> None:
        self._terminal.close()


def _finished_before(trials: Sequence[FrozenTrial], trial: FrozenTrial) -> list[FrozenTrial]:
    """The trials that finished before `trial` did. (Not simply all the others: with
    worker processes, trials are reported in batches, and the later ones of a batch
    are already stored when the first is reported.)"""
    return [t for t in trials if t.finished_at is not None and t.finish_order < trial.finish_order]


class LiveLine:
    """One terminal line rewritten in place: fast trials redraw it a few times a second,
    not every trial; the latest text not yet drawn is drawn on close."""

    def __init__(self, stream: TextIO, refresh_s: float = _LIVE_REFRESH_S) -> None:
        self._stream, self._refresh_s = stream, refresh_s
        self._last_write = -math.inf
        self._pending: Callable[[], str] | None = None
        self._shown = False

    def show(self, text: Callable[[], str], now: bool = False) -> None:
        """Draw `text()` unless the line was drawn less than refresh_s ago (`now`:
        draw it anyway); it is built only when drawn."""
        self._pending = text
        if not now and time.monotonic() - self._last_write < self._refresh_s:
            return
        self._draw()

    def close(self) -> None:
        """Draw what is pending and end the line (nothing if nothing was shown)."""
        if self._pending is not None:
            self._draw()
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self) -> None:
        assert self._pending is not None
        self._stream.write("\r" + printable(self._pending(), newlines=False) + "\033[K")
        self._stream.flush()
        self._pending, self._shown = None, True
        self._last_write = time.monotonic()


# -- comparisons ----------------------------------------------------------------------


def comparison_table(summary: dict[str, Any]) -> str:
    """The result of `hpo compare` for a terminal: one table per objective, then ranks."""
    several = any(d.get("score") == "hypervolume" for d in summary["objectives"].values())
    lines = [
        f"Comparison {summary['name']!r}: {summary['trials']} trials per study; best "
        "value so far as mean ± standard error over seeds"
        + ("; for an objective of several values, the hypervolume so far" if several else "")
    ]
    for objective, data in summary["objectives"].items():
        lines += ["", comparison_heading(objective, data)]
        lines.append(table(*comparison_rows(data, summary["checkpoints"])))
    lines += ["", COMPARISON_NOTE]
    if len(summary["objectives"]) > 1:
        ranks = ", ".join(f"{label} {rank:.2f}" for label, rank in summary["mean_rank"].items())
        lines.append(f"Mean rank across objectives: {ranks}")
    return "\n".join(lines)


COMPARISON_NOTE = (
    "Mean rank: of the final best value among the samplers, per seed. vs best: a "
    "two-sided Mann-Whitney U test of the final values across seeds against the best "
    "sampler's; n.s.: not significantly different (p >= 0.05)."
)


def comparison_heading(objective: str, data: dict[str, Any]) -> str:
    if data.get("score") == "hypervolume":  # an objective of several values
        return f"{objective} ({hypervolume_note(data)})"
    known = f", optimum {fmt_value(data['optimum'])}" if data["optimum"] is not None else ""
    return f"{objective} ({data['direction']}{known})"


def hypervolume_note(data: dict[str, Any]) -> str:
    """How an objective of several values is scored in a comparison."""
    reference = data["reference_point"]
    if reference is None:
        return f"{', '.join(data['objectives'])}: no trial completed yet"
    point = "(" + ", ".join(fmt_value(v) for v in reference) + ")"
    source = "given" if data["reference_given"] else "derived from every trial"
    return (
        f"hypervolume of {', '.join(data['objectives'])}, higher is better; "
        f"reference point {point}, {source}"
    )


def comparison_rows(
    data: dict[str, Any], steps: dict[str, int]
) -> tuple[list[str], list[list[Any]]]:
    """One objective's result table (headers, rows), best mean rank first: the same
    for the terminal and the HTML report."""
    has_optimum = data["optimum"] is not None
    headers = ["sampler", "seeds", *(f"@{key} ({step})" for key, step in steps.items())]
    headers += ["regret"] if has_optimum else []
    headers += ["mean rank", "vs best", "ask (median)", "time"]
    rows = []
    for label, row in sorted(data["samplers"].items(), key=lambda kv: kv[1]["mean_rank"]):
        cells = [label, row["seeds"], *(fmt_mean_se(row["best"][key]) for key in steps)]
        cells += [fmt_value(row["regret"])] if has_optimum else []
        cells += [
            f"{row['mean_rank']:.2f}",
            _verdict(label, row, data["best_sampler"]),
            "-" if row["median_ask_ms"] is None else f"{row['median_ask_ms']:.2f} ms",
            fmt_duration(row["total_seconds"]),
        ]
        rows.append(cells)
    return headers, rows


def _verdict(label: str, row: dict[str, Any], best: str) -> str:
    if label == best:
        return "best"
    if row["significant"] is False:
        return "n.s."
    return "-" if row["p_value"] is None else f"worse, p {row['p_value']:.2g}"


def fmt_mean_se(cell: dict[str, float | None]) -> str:
    if cell["mean"] is None:
        return "-"
    if cell["se"] is None:
        return fmt_value(cell["mean"])
    return f"{cell['mean']:.4g} ± {cell['se']:.2g}"


def _best_text(study: Study) -> str:
    """'best 0.39', or 'front of 7 trials' for a study of several objectives."""
    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        return "best -"
    if study.n_objectives > 1:
        try:
            return f"front of {len(study.best_trials)} trials"
        except NoCompletedTrialsError:  # (none feasible)
            return "front of 0 trials"
    return f"best {fmt_value(study.best_value)}"


class CompareProgress:
    """Progress of `hpo compare`: studies done / total, the current study's trial, ETA.

    `on_study` is given to `run_comparison`, the instance itself as a trial
    callback. On a terminal, one live line; otherwise one line per study.
    """

    def __init__(
        self,
        total_studies: int,
        trials_per_study: int,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty() if live is None else live
        self._terminal = LiveLine(self._stream)
        self._total, self._per_study = total_studies, trials_per_study
        self._start = time.monotonic()
        self._ran = 0  # trials run by this command
        self._index, self._label = 0, ""
        self._done_before = 0  # trials found already done in the studies met

    def on_study(self, index: int, cell: Any, study: Study) -> None:
        self._index = index
        self._label = f"{cell.objective} / {cell.sampler.label} / seed {cell.seed_index}"
        self._done_before += study.n_counted
        if not self._live and study.budget_met():
            write_line(self._stream, f"study {index + 1}/{self._total} {self._label}: done before")

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        self._ran += 1
        done = study.n_counted
        if self._live:  # built now, not when drawn: the next study changes the label
            line = self._line(done)
            self._terminal.show(lambda: line, now=done >= (study.budget or 0))
            return
        if study.budget is not None and done >= study.budget:
            write_line(
                self._stream,
                f"study {self._index + 1}/{self._total} {self._label}: "
                f"{_best_text(study)}  [{self._eta_text()}]",
            )

    def _line(self, done: int) -> str:
        return (
            f"study {self._index + 1}/{self._total} ({self._label}) | trial "
            f"{done}/{self._per_study} | {self._eta_text()}"
        )

    def _eta_text(self) -> str:
        elapsed = time.monotonic() - self._start
        left = self._total * self._per_study - self._done_before - self._ran
        eta = elapsed / self._ran * max(left, 0) if self._ran else None
        return f"{fmt_duration(elapsed)} elapsed, ETA {fmt_duration(eta)}"

    def close(self) -> None:
        self._terminal.close()
