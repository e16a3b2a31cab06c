"""`hpo compare`: studies per (objective, sampler, seed), resuming, the result table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.comparison import (
    Comparison,
    Curves,
    best_so_far,
    load_comparison,
    summarize,
)
from hpo.direction import Direction
from hpo.display import comparison_heading
from hpo.errors import StudyFileError
from hpo.pareto_plots import comparison_fronts, hypervolume
from hpo.records import FrozenTrial, TrialState
from hpo.studyfile import compare_config_from_dict

COMPARISON = """
name = "cmp"
objectives = ["branin", "hartmann6"]
samplers = ["random", "sobol", { name = "tpe", label = "tpe-fast", n_startup = 4 }]
seeds = 2
trials = 8
checkpoints = [0.5, 1.0]
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "cmp.toml").write_text(COMPARISON)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_compare_runs_one_study_per_objective_sampler_and_seed(workdir):
    result = invoke("compare", "cmp.toml", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    names = sorted(s.info.name for s in hpo.studies("hpo.db"))
    assert len(names) == 2 * 3 * 2
    assert "cmp/branin/tpe-fast/seed-1" in names
    study = hpo.load_study("cmp/hartmann6/sobol/seed-1", "hpo.db")
    assert (study.seed, study.budget, len(study.trials)) == (1, 8, 8)
    assert study.user_attrs["comparison"] == "cmp"
    assert set(summary["objectives"]) == {"branin", "hartmann6"}
    branin = summary["objectives"]["branin"]
    assert branin["optimum"] == pytest.approx(0.397887)
    assert summary["checkpoints"] == {"50%": 4, "100%": 8}
    for label, row in branin["samplers"].items():
        assert row["seeds"] == 2
        assert row["best"]["100%"]["mean"] <= row["best"]["50%"]["mean"]
        assert row["regret"] == pytest.approx(row["best"]["100%"]["mean"] - 0.397887)
        assert row["median_ask_ms"] > 0 and row["total_seconds"] > 0
        assert (row["p_value"] is None) == (label == branin["best_sampler"])
    assert sorted(summary["mean_rank"]) == ["random", "sobol", "tpe-fast"]


def test_rerunning_resumes_and_adds_nothing(workdir):
    first = invoke("compare", "cmp.toml", "--json")
    stored = {s.info.name: s.counts for s in hpo.studies("hpo.db")}
    again = invoke("compare", "cmp.toml", "--json")
    assert again.exit_code == 0
    assert {s.info.name: s.counts for s in hpo.studies("hpo.db")} == stored
    assert json.loads(again.stdout)["objectives"] == json.loads(first.stdout)["objectives"]


def test_an_unfinished_comparison_continues(workdir):
    study = hpo.create_study(
        "cmp/branin/random/seed-0",
        "hpo.db",
        objective="branin",
        sampler="random",
        seed=0,
        budget=8,
        user_attrs={
            "comparison": "cmp",
            "objective": "branin",
            "sampler": "random",
            "seed_index": 0,
        },
    )
    study.optimize(n_trials=3)
    result = invoke("compare", "cmp.toml")
    assert result.exit_code == 0, result.output
    assert len(hpo.load_study("cmp/branin/random/seed-0", "hpo.db").trials) == 8


def test_studies_lists_a_comparison_as_one_row_unless_asked_for_all(workdir):
    assert invoke("compare", "cmp.toml").exit_code == 0
    hpo.create_study("alone", "hpo.db", objective="branin", budget=1).optimize()
    listing = invoke("studies").stdout
    rows = [line for line in listing.splitlines() if line.startswith(("cmp", "alone"))]
    assert len(rows) == 2 and "(comparison)" in rows[1] and "12 studies" in rows[1]
    assert "96/96" in rows[1] and "8 each" in rows[1]  # 12 studies of 8 trials, summed
    assert "cmp/branin/random/seed-0" in invoke("studies", "--all").stdout
    every = json.loads(invoke("studies", "--json").stdout)
    assert len(every) == 13
    assert {s["comparison"] for s in every} == {"cmp", None}
    mistaken = CliRunner().invoke(cli, ["trials", "cmp"])
    assert mistaken.exit_code == 2
    assert "'cmp' is a comparison of 12 studies: `hpo studies --all`" in mistaken.stderr


def test_the_table_in_the_terminal(workdir):
    result = invoke("compare", "cmp.toml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "branin (minimize, optimum 0.397887)" in out
    assert "@50% (4)" in out and "@100% (8)" in out and "regret" in out
    assert "vs best" in out and " best " in out
    assert "Mean rank across objectives:" in out
    assert "Report: hpo report cmp  (writes cmp.html)" in out
    assert "study 12/12" in out


def test_flags_without_a_file(workdir):
    result = invoke(
        "compare",
        "--objective",
        "branin",
        "--samplers",
        "random,sobol",
        "--seeds",
        "2",
        "--trials",
        "5",
        "--name",
        "quick",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert len(hpo.studies("hpo.db")) == 4
    assert set(json.loads(result.stdout)["objectives"]["branin"]["samplers"]) == {"random", "sobol"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "branin"], "give a comparison file, or --objective and --samplers"),
        (["--objective", "branin", "--samplers", "random,tpee"], "unknown sampler 'tpee'"),
        (["--objective", "brainn", "--samplers", "random"], "unknown objective 'brainn'"),
        (["cmp.toml", "--samplers", "random,random"], "sampler labels must be unique"),
        (["missing.toml"], "comparison file 'missing.toml' not found"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(workdir, args, message):
    result = invoke("compare", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("hpo: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (workdir / "hpo.db").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"objective": "branin", "samplers": ["random"], "checkpoints": [0]}, "checkpoints"),
        ({"objective": "branin", "samplers": [], "trials": 5}, "'samplers' must be"),
        ({"objective": "branin", "samplers": ["random"], "seeds": 0}, "seeds"),
        ({"objective": "branin", "samplers": ["random"], "colour": 1}, "unknown key 'colour'"),
        ({"samplers": ["random"]}, "give 'objective'"),
    ],
)
def test_bad_comparison_files(data, message):
    with pytest.raises(StudyFileError, match=message):
        compare_config_from_dict({"name": "x", **data})


def _trial(number: int, value: float | None, state=TrialState.COMPLETE) -> FrozenTrial:
    return FrozenTrial(trial_id=number + 1, number=number, state=state, params={}, value=value)


def test_best_so_far_skips_failures_and_pads_what_has_not_run():
    trials = [_trial(0, None, TrialState.FAIL), _trial(1, 5.0), _trial(2, 7.0), _trial(3, 2.0)]
    curve = best_so_far(trials, Direction.MINIMIZE, 6)
    assert np.isnan(curve[0]) and list(curve[1:4]) == [5.0, 5.0, 2.0]
    assert np.isnan(curve[4:]).all()
    assert list(best_so_far(trials, Direction.MAXIMIZE, 4)[1:]) == [5.0, 7.0, 7.0]


def _comparison(finals: dict[str, list[float]], optimum: float | None = 0.0) -> Comparison:
    curves = {}
    for label, values in finals.items():
        curves[label] = Curves(
            best=[np.array([v + 1.0, v]) for v in values],
            ask_seconds=[np.array([0.001, 0.003])] * len(values),
            seconds=[1.0] * len(values),
            seeds=list(range(len(values))),
        )
    return Comparison("c", {"f": Direction.MINIMIZE}, {"f": optimum}, 2, (0.5, 1.0), {"f": curves})


def test_ranks_significance_and_regret():
    summary = summarize(
        _comparison(
            {
                "good": [0.1, 0.2, 0.15, 0.12, 0.18, 0.11],
                "close": [0.13, 0.19, 0.14, 0.16, 0.21, 0.1],
                "bad": [0.9, 1.1, 0.95, 1.2, 1.0, 0.99],
            }
        )
    )
    rows = summary["objectives"]["f"]["samplers"]
    assert summary["objectives"]["f"]["best_sampler"] == "good"
    assert rows["bad"]["mean_rank"] == 3.0 and rows["bad"]["significant"] is True
    assert rows["close"]["significant"] is False  # not told apart from the best
    assert rows["good"]["p_value"] is None
    assert rows["good"]["regret"] == pytest.approx(np.mean([0.1, 0.2, 0.15, 0.12, 0.18, 0.11]))
    assert rows["good"]["median_ask_ms"] == pytest.approx(2.0)
    se = np.std([0.1, 0.2, 0.15, 0.12, 0.18, 0.11], ddof=1) / math.sqrt(6)
    assert rows["good"]["best"]["100%"]["se"] == pytest.approx(se)


def test_ties_share_a_rank_and_no_optimum_means_no_regret():
    summary = summarize(_comparison({"a": [1.0, 2.0], "b": [1.0, 2.0]}, optimum=None))
    rows = summary["objectives"]["f"]["samplers"]
    assert rows["a"]["mean_rank"] == rows["b"]["mean_rank"] == 1.5
    assert rows["a"]["regret"] is None
    other = [label for label in rows if label != summary["objectives"]["f"]["best_sampler"]]
    assert rows[other[0]]["p_value"] == 1.0


def test_load_comparison_reads_the_group_back(workdir):
    invoke("compare", "cmp.toml")
    comparison = load_comparison("cmp", "hpo.db")
    assert set(comparison.curves) == {"branin", "hartmann6"}
    curves = comparison.curves["branin"]["sobol"]
    assert curves.seeds == [0, 1] and all(len(c) == 8 for c in curves.best)
    assert all(np.isfinite(c).all() for c in curves.ask_seconds)


def test_live_progress_shows_studies_trials_and_eta(tmp_path):
    import io

    from hpo.comparison import plan, run_comparison
    from hpo.display import CompareProgress

    config = compare_config_from_dict(
        {
            "name": "p",
            "objective": "branin",
            "samplers": ["random", "sobol"],
            "seeds": 2,
            "trials": 5,
        }
    )
    stream = io.StringIO()
    assert config.n_studies == len(plan(config)[0]) == 4
    progress = CompareProgress(config.n_studies, 5, stream, live=True)
    run_comparison(config, str(tmp_path / "hpo.db"), progress.on_study, [progress])
    progress.close()
    text = stream.getvalue()
    assert "study 4/4 (branin / sobol / seed 1) | trial 5/5 | " in text
    assert "elapsed, ETA" in text and text.endswith("\n")


def test_raising_the_trials_continues_the_studies(workdir):
    invoke("compare", "cmp.toml")
    result = invoke("compare", "cmp.toml", "--trials", "10", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoints"] == {"50%": 5, "100%": 10}
    assert {len(hpo.load_study(s.info.name, "hpo.db").trials) for s in hpo.studies("hpo.db")} == {
        10
    }


def test_a_study_of_another_setting_is_refused(workdir):
    invoke("compare", "cmp.toml")
    before = {s.info.name: s.counts for s in hpo.studies("hpo.db")}
    (workdir / "cmp.toml").write_text(COMPARISON.replace("seeds = 2", "seeds = 2\nseed = 5"))
    result = invoke("compare", "cmp.toml")
    assert result.exit_code == 2
    assert "already has study 'cmp/branin/random/seed-0'" in result.stderr
    assert "seed 0" in result.stderr and "seed 5" in result.stderr
    assert {s.info.name: s.counts for s in hpo.studies("hpo.db")} == before


def test_best_so_far_counts_a_retry_in_place_of_the_lost_trial():
    lost = FrozenTrial(
        trial_id=2, number=1, state=TrialState.FAIL, params={}, system_attrs={"requeued_as": 3}
    )
    trials = [_trial(0, 5.0), lost, _trial(2, 4.0), _trial(3, 1.0)]
    assert list(best_so_far(trials, Direction.MINIMIZE, 3)) == [5.0, 4.0, 1.0]


def test_ranks_pair_the_samplers_seed_by_seed():
    comparison = _comparison({"a": [1.0, 3.0], "b": [2.0, 2.5]})
    comparison.curves["f"]["a"].seeds = [0, 1]
    comparison.curves["f"]["b"].seeds = [1, 2]  # b lacks seed 0, a lacks seed 2
    rows = summarize(comparison)["objectives"]["f"]["samplers"]
    # seed 0: a 1st, b missing (last); seed 1: b (2.0) beats a (3.0); seed 2: b alone
    assert rows["a"]["mean_rank"] == pytest.approx((1 + 2 + 2) / 3)
    assert rows["b"]["mean_rank"] == pytest.approx((2 + 1 + 1) / 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"checkpoints": 0.5}, "'checkpoints' must be a list"),
        ({"objective_options": "x"}, "'objective_options' must be a table"),
        ({"sampler_options": {}}, "sampler options go in the sampler's table"),
    ],
)
def test_comparison_file_types(data, message):
    with pytest.raises(StudyFileError, match=message):
        compare_config_from_dict(
            {"name": "x", "objective": "branin", "samplers": ["random"], **data}
        )


def test_live_progress_labels_each_line_with_the_study_it_counts(tmp_path):
    import io

    from hpo.comparison import run_comparison
    from hpo.display import CompareProgress

    # the random study is finished first; then a grid of 9 points ends its study short
    # of the budget of 10, so its last line is not drawn at once, and the finished
    # random study runs no trial after it: that line is drawn on close, and must keep
    # the grid study's label
    db = str(tmp_path / "hpo.db")
    grid = {"name": "grid", "points": 3}
    run_comparison(
        compare_config_from_dict(
            {"name": "g", "objective": "branin", "seeds": 1, "trials": 10, "samplers": ["random"]}
        ),
        db,
    )
    config = compare_config_from_dict(
        {"name": "g", "objective": "branin", "seeds": 1, "trials": 10, "samplers": [grid, "random"]}
    )
    stream = io.StringIO()
    progress = CompareProgress(config.n_studies, 10, stream, live=True)
    run_comparison(config, db, progress.on_study, [progress])
    progress.close()
    lines = stream.getvalue().replace("\033[K", "").split("\r")
    assert lines[-1].startswith("study 1/2 (branin / grid / seed 0) | trial 9/10 | ")


# -- objectives of several values: scored by hypervolume -----------------------------------

SPACE_X = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]


def _tradeoff_study(storage: str, label: str, seed: int, points, reference=None) -> None:
    """A member study of comparison "mo" for objective "two", its trials told."""
    study = hpo.create_study(
        f"mo/two/{label}/seed-{seed}",
        storage,
        SPACE_X,
        sampler="random",
        seed=seed,
        directions=["minimize", "maximize"],
        budget=len(points),
        user_attrs={
            "comparison": "mo",
            "objective": "two",
            "sampler": label,
            "seed_index": seed,
            "checkpoints": [0.5, 1.0],
            "reference_point": reference,
        },
    )
    study.add_trials([hpo.create_trial(values=p, params={"x": 0.5}) for p in points])


def test_samplers_of_several_objectives_rank_by_hypervolume(tmp_path):
    storage = str(tmp_path / "mo.db")
    # minimize the first, maximize the second; "good" reaches (1, 9), "bad" (2, 8); the
    # worst feasible values of all of them: 4 and 5, so the derived reference point is
    # (4 + 0.3, 5 - 0.4) for every study alike
    for seed in range(4):
        _tradeoff_study(storage, "good", seed, [(4.0, 5.0), (1.0, 9.0 - seed / 10)])
        _tradeoff_study(storage, "bad", seed, [(4.0 - seed / 10, 6.0), (2.0, 8.0)])
    comparison = load_comparison("mo", storage)
    assert comparison.tradeoffs["two"].reference == pytest.approx((4.3, 4.6))
    summary = summarize(comparison)
    data = summary["objectives"]["two"]
    assert data["score"] == "hypervolume" and data["best_sampler"] == "good"
    assert data["reference_point"] == pytest.approx([4.3, 4.6]) and not data["reference_given"]
    rows = data["samplers"]
    assert rows["good"]["mean_rank"] == 1.0 and rows["bad"]["mean_rank"] == 2.0
    assert rows["bad"]["significant"] is True  # 4 seeds each, all apart
    good = [(4.3 - 1.0) * (9.0 - seed / 10 - 4.6) for seed in range(4)]
    assert rows["good"]["best"]["100%"]["mean"] == pytest.approx(np.mean(good))
    assert rows["good"]["best"]["50%"]["mean"] == pytest.approx(0.3 * 0.4)  # (4, 5) alone
    assert "hypervolume of objective 0 (minimize), objective 1 (maximize)" in (
        comparison_heading("two", data)
    )
    # each sampler's front, its seeds pooled: (1, 9) beats the other seeds' (1, 8.x)
    (ax,) = comparison_fronts(comparison, "two").axes
    drawn = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert drawn == {"good (1)": [[1.0, 9.0]], "bad (1)": [[2.0, 8.0]]}
    assert ax.get_ylabel() == "objective 1 (maximize)"
    member = hpo.load_study("mo/two/good/seed-0", storage)  # its reference point: None
    assert "derived from its trials" in hypervolume(member).axes[0].get_title()


def test_a_given_reference_point_is_used_as_given(tmp_path):
    storage = str(tmp_path / "mo.db")
    for seed in range(2):
        _tradeoff_study(storage, "a", seed, [(1.0, 2.0)], reference=[3.0, 0.0])
        _tradeoff_study(storage, "b", seed, [(2.0, 1.0)], reference=[3.0, 0.0])
    data = summarize(load_comparison("mo", storage))["objectives"]["two"]
    assert data["reference_given"] and data["reference_point"] == [3.0, 0.0]
    assert data["samplers"]["a"]["best"]["100%"]["mean"] == pytest.approx(4.0)  # 2 x 2
    assert data["samplers"]["b"]["best"]["100%"]["mean"] == pytest.approx(1.0)
    assert data["best_sampler"] == "a"


MO_COMPARISON = """
name = "mo-run"
objective = "boston_tradeoff"
samplers = ["random", "sobol"]
seeds = 2
trials = 3
reference_point = [500.0, 120.0]

[objective_options.boston_tradeoff]
max_epochs = 2
"""


def test_a_comparison_of_a_bundled_tradeoff_runs_and_reports(workdir):
    (workdir / "mo.toml").write_text(MO_COMPARISON)
    result = invoke("compare", "mo.toml")
    assert result.exit_code == 0, result.output
    assert "boston_tradeoff (hypervolume of held-out MSE (minimize), hidden units" in (
        result.stdout
    )
    assert "reference point (500, 120), given" in result.stdout
    study = hpo.load_study("mo-run/boston_tradeoff/sobol/seed-1", "hpo.db")
    assert study.n_objectives == 2 and study.info.objective_names == [
        "held-out MSE",
        "hidden units",
    ]
    title = hypervolume(study).axes[0].get_title()  # the member's figure: the same point
    assert "reference point (500, 120), the study's" in title
    assert invoke("report", "mo-run", "-o", "mo.html").exit_code == 0
    page = (workdir / "mo.html").read_text()
    assert "<!-- hypervolume so far -->" in page  # the curves figure's axis
    assert page.count("<svg") == 3  # hypervolume so far, the fronts, time per ask
    assert '<section id="fronts">' in page and "reference point (500, 120), given" in page
    for kind in ("best-so-far", "fronts"):
        assert invoke("plot", "mo-run", "--kind", kind, "-o", f"{kind}.svg").exit_code == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("reference_point = [1.0, 2.0, 3.0]", "reference point of 'boston_tradeoff' has 3"),
        ('directions = ["minimize"] * 0', "invalid TOML"),
        ('directions = ["minimize", "minimize", "minimize"]', "returns 2 value(s)"),
        ('reference_point = ["a", 1]', "reference_point must be a list of finite numbers"),
        ("reference_point = { branin = [1, 2] }", "not an objective of the comparison"),
    ],
)
def test_bad_comparisons_of_several_objectives(workdir, extra, message):
    text = MO_COMPARISON.replace("reference_point = [500.0, 120.0]", extra)
    (workdir / "bad.toml").write_text(text)
    result = invoke("compare", "bad.toml")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (workdir / "hpo.db").exists()


def test_a_sampler_for_one_objective_is_refused_for_a_tradeoff(workdir):
    # (every native sampler takes several objectives; hyperopt's TPE, one)
    (workdir / "one.toml").write_text(MO_COMPARISON.replace('"sobol"', '"hyperopt-tpe"'))
    result = invoke("compare", "one.toml")
    assert result.exit_code == 2 and "optimizes one objective" in result.stderr
    assert not (workdir / "hpo.db").exists()
