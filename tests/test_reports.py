"""HTML reports and figures: their content, their escaping, and a real browser.

The browser test opens a generated report in headless Chromium (Debian's
`chromium` package, driven by Playwright), checks the sections render with
no console error, and saves a screenshot under $HPO_TEST_ARTIFACTS (default:
test-artifacts/ in the repository). Where Chromium is missing it skips,
saying how to enable it, unless HPO_TEST_REQUIRE_BROWSER=1 (`.ci/run` sets
it), where it fails instead.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.direction import Direction
from hpo.importance import ped_anova
from hpo.records import FrozenTrial, TrialState
from hpo.space import Space
from tests.conftest import REPO

NASTY = "<script>alert(1)</script>"
SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {"name": "units", "type": "int", "low": 8, "high": 64},
    {
        "name": "<img src=x onerror=alert(2)>",
        "type": "categorical",
        "choices": ["a", "</svg><script>alert(3)</script>"],
    },
]
STUDY_SECTIONS = [
    "summary",
    "history",
    "importance",
    "slices",
    "parallel",
    "intermediate",
    "best-trials",
]


def curve_objective(trial: hpo.Trial) -> float:
    """A learning curve that settles at a value set by lr; reports every step."""
    target = abs(np.log10(trial.params["lr"]) + 2) + trial.params["units"] / 640
    value = 10.0
    for step in range(6):
        value = target + 5.0 / (step + 1)
        trial.report(value, step)
        if trial.should_prune():
            raise hpo.TrialPruned
    trial.set_user_attr("note", "<b>bold?</b>")
    return value


@pytest.fixture
def db(tmp_path, monkeypatch) -> str:
    """A study with pruned and complete trials and hostile names, in tmp_path/hpo.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    path = str(tmp_path / "hpo.db")
    study = hpo.create_study(
        NASTY,
        path,
        SPACE,
        sampler="tpe",
        seed=0,
        budget=30,
        pruner="median",
        pruner_options={"n_startup_trials": 4},
    )
    study.optimize(curve_objective)
    assert {t.state for t in study.trials} == {TrialState.COMPLETE, TrialState.PRUNED}
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_study_report_has_every_section_inline(db, tmp_path):
    result = invoke("report", NASTY, "-o", "study.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "study.html").read_text()
    for section in STUDY_SECTIONS:
        assert f'<section id="{section}">' in page
    assert page.count("<svg") == 5  # history, importance, slices, parallel, intermediate
    assert "pruned" in page and "PED-ANOVA" in page


def test_the_report_opens_offline():
    """Nothing is fetched: no external script, style, image or font."""
    page = _report_text()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "<link" not in page and "@import" not in page and "url(http" not in page


def test_everything_from_the_data_is_escaped():
    page = _report_text()
    assert "<script" not in page.lower()  # the report has no script at all
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the title, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # a parameter name
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page  # a user attribute
    assert "<img" not in page and "<b>" not in page


_CACHE: dict[str, str] = {}


def _report_text() -> str:
    """The report of the hostile study (built once per test session)."""
    if "page" not in _CACHE:
        path = hpo.create_study(
            NASTY,
            None,
            SPACE,
            sampler="tpe",
            seed=0,
            budget=20,
            pruner="median",
            pruner_options={"n_startup_trials": 4},
        )
        path.optimize(curve_objective)
        from hpo.reports import study_report

        _CACHE["page"] = study_report(path)
    return _CACHE["page"]


def test_default_report_file_name(db, tmp_path):
    result = invoke("report", NASTY)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "script_alert_1_script.html").exists()


def test_comparison_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    assert (
        invoke(
            "compare",
            "--objective",
            "branin",
            "--samplers",
            "random,tpe",
            "--seeds",
            "3",
            "--trials",
            "6",
            "--name",
            "<i>cmp</i>",
        ).exit_code
        == 0
    )
    result = invoke("report", "<i>cmp</i>", "-o", "cmp.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "cmp.html").read_text()
    for section in ("summary", "results", "curves", "ask-times"):
        assert f'<section id="{section}">' in page
    assert page.count("<svg") == 2
    assert "&lt;i&gt;cmp&lt;/i&gt;" in page and "<i>" not in page
    assert "optimum 0.397887" in page and "Mann-Whitney" in page


def test_plot_a_comparison(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        invoke(
            "compare",
            "--objective",
            "branin,hartmann6",
            "--samplers",
            "random,tpe",
            "--seeds",
            "2",
            "--trials",
            "5",
            "--name",
            "c",
        ).exit_code
        == 0
    )
    for kind, extra in (("best-so-far", ["--objective", "hartmann6"]), ("ask-time", [])):
        result = invoke("plot", "c", "--kind", kind, *extra, "-o", f"{kind}.svg")
        assert result.exit_code == 0, result.output
        assert b"<svg" in (tmp_path / f"{kind}.svg").read_bytes()
    wrong = invoke("plot", "c", "--kind", "best-so-far", "--objective", "x", "-o", "a.png")
    assert wrong.exit_code == 2 and "has no objective 'x'" in wrong.stderr
    study_kind = invoke("plot", "c", "--kind", "history", "-o", "a.png")
    assert study_kind.exit_code == 2 and "not a figure of a comparison" in study_kind.stderr


def test_report_of_an_unknown_name(db):
    result = invoke("report", "nothing")
    assert result.exit_code == 2
    assert "no study named 'nothing'" in result.stderr


@pytest.mark.parametrize("kind", ["history", "importance", "slice", "parallel", "intermediate"])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_every_kind(db, tmp_path, kind, suffix):
    result = invoke("plot", NASTY, "--kind", kind, "-o", f"figure{suffix}")
    assert result.exit_code == 0, result.output
    data = (tmp_path / f"figure{suffix}").read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    else:
        assert b"<svg" in data and b"<script" not in data.lower()


def test_tick_labels_are_plain_text_on_log_axes(db):
    """With mathtext off (names from the data stay text), log axes label their
    ticks as plain numbers, not as their mathtext source."""
    from hpo import plots

    figure = plots.slices(hpo.load_study(NASTY, db))
    figure.canvas.draw()
    lr_axis = next(ax for ax in figure.axes if ax.get_xlabel() == "lr")
    labels = [
        t.get_text()
        for ax in figure.axes
        for axis in (ax.xaxis, ax.yaxis)
        for t in axis.get_ticklabels(which="both")
        if t.get_text()
    ]
    assert not [label for label in labels if "$" in label or "mathdefault" in label]
    assert {"0.001", "0.01", "0.1"} <= {t.get_text() for t in lr_axis.get_xticklabels()}


def _powers_of_ten(labels: set[str]) -> bool:
    return all(math.log10(float(label)).is_integer() for label in labels)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1e-9, 10.0, _powers_of_ten),  # a GP's regret: decades skipped, not all lost
        (16.0, 546.0, {"30", "100", "300"}),  # a batch size: under 2.5 decades, 3 x too
        (0.5, 2.0, {"0.5", "1", "2"}),  # under a decade: 2 x and 5 x
    ],
)
def test_log_axes_have_a_few_plain_labels_at_any_width(low, high, expected):
    from matplotlib.figure import Figure

    from hpo.plots import _log_scale

    figure = Figure(figsize=(3, 3))
    ax = figure.add_subplot()
    ax.plot([1, 2], [low, high])
    _log_scale(ax)
    figure.canvas.draw()
    bottom, top = ax.get_ylim()
    shown = [
        t.get_text()
        for t in ax.yaxis.get_ticklabels(which="both")
        if t.get_text() and bottom <= float(t.get_text()) <= top
    ]
    assert 3 <= len(shown) <= 7
    assert expected(set(shown)) if callable(expected) else expected <= set(shown)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "history", "-o", "figure.pdf"], "give a .png or .svg file name"),
        (["--kind", "histroy", "-o", "figure.png"], "Invalid value for '--kind'"),
    ],
)
def test_plot_bad_input(db, args, message):
    result = invoke("plot", NASTY, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_plot_without_data_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = hpo.create_study("flat", "hpo.db", objective="branin", seed=0, budget=3)
    study.optimize()
    result = invoke("plot", "flat", "--kind", "intermediate", "-o", "x.png")
    assert result.exit_code == 2
    assert "no trial reported intermediate values" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_ped_anova_finds_the_parameter_that_matters():
    rng = np.random.default_rng(0)
    space = Space.from_spec(
        [
            {"name": "x", "type": "float", "low": 0, "high": 1},
            {"name": "noise", "type": "float", "low": 0, "high": 1},
            {"name": "c", "type": "categorical", "choices": ["p", "q", "r"]},
        ]
    )
    trials = []
    for i in range(200):
        params = {"x": rng.random(), "noise": rng.random(), "c": ["p", "q", "r"][i % 3]}
        value = (params["x"] - 0.2) ** 2 + (0.3 if params["c"] != "q" else 0.0)
        trials.append(
            FrozenTrial(trial_id=i, number=i, state=TrialState.COMPLETE, params=params, value=value)
        )
    scores = ped_anova(space.params, trials, Direction.MINIMIZE)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert scores["noise"] < 0.1 and scores["x"] > scores["noise"]
    assert scores["c"] > scores["noise"]
    flipped = [
        FrozenTrial(
            trial_id=t.trial_id, number=t.number, state=t.state, params=t.params, value=-t.value
        )
        for t in trials
    ]
    assert ped_anova(space.params, flipped, Direction.MAXIMIZE) == pytest.approx(scores)
    assert ped_anova(space.params, trials[:3], Direction.MINIMIZE) == {}


# -- a real browser ---------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        message = (
            "browser test needs Chromium and Playwright: apt-get install chromium; "
            "pip install playwright (in the dev extra)"
        )
        if os.environ.get("HPO_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_report_renders_in_headless_chromium(db, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    assert invoke("report", NASTY, "-o", "study.html").exit_code == 0
    artifacts = Path(os.environ.get("HPO_TEST_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
            page.on(
                "request",
                lambda r: (
                    problems.append(f"request: {r.url}")
                    if not r.url.startswith("file://")
                    else None
                ),
            )
            page.goto((tmp_path / "study.html").as_uri())
            assert page.inner_text("h1") == f"Study {NASTY}"
            for section in STUDY_SECTIONS:
                box = page.locator(f"section#{section}").bounding_box()
                assert box is not None and box["height"] > 40, section
            for svg in page.locator("section svg").all():
                box = svg.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
            page.screenshot(path=str(artifacts / "study-report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert (artifacts / "study-report.png").stat().st_size > 10_000
