"""Figures and reports of studies of several objectives: what they draw, as data.

Each study is built from told trials (`add_trials`), so that its front, its
dominated and its infeasible trials are known in advance; the figures are
checked through their matplotlib artists (offsets, labels), not their pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import hpo
from hpo import pareto_plots, plots
from hpo.cli import cli
from hpo.reports import study_report
from tests.conftest import REPO

SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]
NASTY = "<script>alert(1)</script>"

# (values, constraints): the front is trials 0, 1 and 2; 3 and 4 are dominated (by 1);
# 5 beats everything but misses its constraint
TWO = [
    ([1.0, 5.0], [-1.0]),
    ([2.0, 2.0], [0.0]),
    ([5.0, 1.0], None),
    ([3.0, 3.0], [-0.5]),
    ([2.5, 4.0], None),
    ([0.5, 0.5], [2.0]),
]


def told(study: hpo.Study, rows) -> hpo.Study:
    study.add_trials(
        [
            hpo.create_trial(
                values=values,
                constraints=constraints,
                params={"x": i / 10},
                user_attrs={"note": "<b>hi</b>"},
            )
            for i, (values, constraints) in enumerate(rows)
        ]
    )
    return study


def two_objectives(name: str = "two", storage: str | None = None, **kwargs) -> hpo.Study:
    study = hpo.create_study(
        name,
        storage,
        SPACE,
        sampler="random",
        directions=["minimize", "minimize"],
        **kwargs,
    )
    return told(study, TWO)


def scattered(ax) -> dict[str, list[list[float]]]:
    """Each labelled scatter of a panel: label (without its count) -> its points."""
    return {
        c.get_label().rsplit(" (", 1)[0]: c.get_offsets().tolist()
        for c in ax.collections
        if not c.get_label().startswith("_")
    }


def test_the_front_dominated_and_infeasible_trials_are_drawn_apart():
    figure = pareto_plots.pareto(two_objectives(objective_names=["error", NASTY]))
    (ax,) = figure.axes
    points = scattered(ax)
    assert points["Pareto front"] == [[1.0, 5.0], [2.0, 2.0], [5.0, 1.0]]
    assert points["dominated"] == [[3.0, 3.0], [2.5, 4.0]]
    assert points["infeasible"] == [[0.5, 0.5]]
    assert ax.get_xlabel() == "error (minimize)" and ax.get_ylabel() == f"{NASTY} (minimize)"
    (staircase,) = ax.lines  # the edge of the front's region: right along, then down
    assert staircase.get_xdata().tolist() == [1.0, 2.0, 5.0]
    assert staircase.get_drawstyle() == "steps-post"
    assert "3 of 6" in figure.texts[0].get_text()  # the title


def test_three_objectives_give_a_panel_per_pair_and_unnamed_axes():
    study = hpo.create_study(
        space=SPACE, sampler="sobol", directions=["minimize", "maximize", "minimize"]
    )
    told(study, [([0.0, 0.0, 1.0], None), ([1.0, 1.0, 0.0], None), ([1.0, 0.0, 1.0], None)])
    figure = pareto_plots.pareto(study)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in axes] == [
        ("objective 0 (minimize)", "objective 1 (maximize)"),
        ("objective 0 (minimize)", "objective 2 (minimize)"),
        ("objective 1 (maximize)", "objective 2 (minimize)"),
    ]
    # trial 2 is dominated by trial 1 only when the second objective is maximized
    assert scattered(axes[1])["dominated"] == [[1.0, 1.0]]
    assert scattered(axes[1])["Pareto front"] == [[0.0, 1.0], [1.0, 0.0]]
    assert not axes[0].lines  # a staircase only for two objectives


def test_the_hypervolume_history_states_its_reference_point():
    study = two_objectives()
    figure = pareto_plots.hypervolume(study, reference=[6.0, 6.0])
    (ax,) = figure.axes
    (line,) = ax.lines
    # feasible trials only: 5 (infeasible) adds nothing
    expected = [5.0, 17.0, 18.0, 18.0, 18.0, 18.0]  # 17 = 5 + 4 x 4 - 4 x 1 (overlap)
    assert line.get_ydata().tolist() == pytest.approx(expected)
    assert "reference point (6, 6), given" in ax.get_title()
    derived = pareto_plots.hypervolume(study).axes[0].get_title()
    # the worst feasible value of each objective plus 10% of its range: 5 + 0.4
    assert "reference point (5.4, 5.4), derived from its trials" in derived


def test_kinds_for_one_objective_refuse_several_and_the_reverse():
    several = two_objectives()
    with pytest.raises(plots.PlotError, match=r"has 2 objectives \(its kinds: pareto, hyper"):
        plots.study_figure("history", several)
    one = hpo.create_study("one", space=SPACE, sampler="random")
    one.add_trial(hpo.create_trial(value=1.0, params={"x": 0.5}))
    with pytest.raises(plots.PlotError, match=r"has one \(its kinds: history, importance"):
        plots.study_figure("pareto", one)
    with pytest.raises(plots.PlotError, match="several objectives"):
        pareto_plots.hypervolume(one)


def test_plot_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    two_objectives("two", "hpo.db")
    runner = CliRunner()
    for kind in ("pareto", "hypervolume"):
        result = runner.invoke(cli, ["plot", "two", "--kind", kind, "-o", f"{kind}.svg"])
        assert result.exit_code == 0, result.output
        assert b"<svg" in (tmp_path / f"{kind}.svg").read_bytes()
    refused = runner.invoke(cli, ["plot", "two", "--kind", "slice", "-o", "s.png"])
    assert refused.exit_code == 2 and "its kinds: pareto, hypervolume" in refused.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_report_of_several_objectives_has_its_sections_and_escapes_the_data():
    study = two_objectives(NASTY, objective_names=["<i>error</i>", "size"])
    page = study_report(study)
    for section in ("summary", "pareto", "hypervolume", "objectives", "front"):
        assert f'<section id="{section}">' in page
    assert page.count("<svg") == 2  # the front and the hypervolume; no intermediate values
    assert "<script" not in page.lower() and "<i>" not in page and "<b>" not in page
    assert "&lt;b&gt;hi&lt;/b&gt;" in page  # a user attribute of a front trial
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;error&lt;/i&gt; (minimize)" in page  # the objective's name, as text
    front = page[page.index('<section id="front">') :]
    rows = front.split("<tr>")[2:]  # after the header row
    assert [row.split("</td>")[0].rsplit(">", 1)[1] for row in rows] == ["0", "1", "2"]
    assert "<th>constraints</th>" in front
    assert "3 trials" in page and "infeasible trials</dt><dd>1<" in page


def test_a_report_of_three_objectives_with_no_feasible_trial_says_so():
    study = hpo.create_study(space=SPACE, sampler="random", directions=["minimize"] * 3)
    told(study, [([1.0, 2.0, 3.0], [1.0])])
    page = study_report(study)
    assert "no completed feasible trial" in page and page.count("<svg") == 1  # the front only


def test_the_derived_reference_point_bounds_every_feasible_trial():
    study = two_objectives()
    point = pareto_plots.study_reference(study)
    feasible = np.array([values for values, c in TWO if c is None or max(c) <= 0])
    assert np.all(point > feasible.max(axis=0))


def test_objective_names_are_checked():
    for bad in (["a"], ["a", "a"], "ab", ["a", ""]):
        with pytest.raises(hpo.StudyConfigError, match="objective_names must be 2 distinct"):
            hpo.create_study(
                space=SPACE, sampler="random", directions=["minimize"] * 2, objective_names=bad
            )


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The Python example of the README's "Several objectives" section, as written."""
    monkeypatch.chdir(tmp_path)
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Several objectives") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("\n```\n", start)]
    assert "study.best_trials" in code
    exec(compile(code, "README.md", "exec"), {})  # our own README
    study = hpo.load_study("tradeoff", "tradeoff.db")
    assert study.best_trials and all(t.feasible for t in study.best_trials)
    assert study.info.objective_names == ["cost", "error"]
    for name in ("front.png", "hypervolume.png", "tradeoff.html"):
        assert (tmp_path / name).stat().st_size > 1000
