"""Pruners: each decision rule on hand-made curves, and pruning inside real studies."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.direction import Direction
from hpo.pruners import (
    HyperbandPruner,
    MedianPruner,
    PatientPruner,
    PrunerError,
    SuccessiveHalvingPruner,
    ThresholdPruner,
    make_pruner,
)
from hpo.records import FrozenTrial, TrialState
from hpo.samplers.history import HistoryEncoder
from hpo.space import Space

_numbers = iter(range(10**6))


def trial(
    curve: dict[int, float] | list[float],
    state: TrialState = TrialState.COMPLETE,
    number: int | None = None,
) -> FrozenTrial:
    values = curve if isinstance(curve, dict) else dict(enumerate(curve))
    number = next(_numbers) if number is None else number
    return FrozenTrial(
        trial_id=number + 1, number=number, state=state, params={}, intermediate=values
    )


def running(curve: dict[int, float] | list[float], number: int = 999) -> FrozenTrial:
    return trial(curve, TrialState.RUNNING, number)


# -- median ----------------------------------------------------------------------------


PEERS = [trial([1.0, 0.8, 0.6]), trial([1.0, 0.7, 0.5]), trial([1.0, 0.9, 0.7])]


def test_median_prunes_a_trial_worse_than_the_median_at_its_step():
    pruner = MedianPruner(n_startup_trials=3)
    assert pruner.prune(running([1.0, 0.85]), PEERS)  # median at step 1: 0.8
    assert not pruner.prune(running([1.0, 0.75]), PEERS)


def test_median_uses_the_best_value_so_far_and_keeps_ties():
    pruner = MedianPruner(n_startup_trials=3)
    assert not pruner.prune(running([0.5, 0.95]), PEERS)  # best so far 0.5 < 0.8
    assert not pruner.prune(running([1.0, 0.8]), PEERS)  # equal to the median: kept


def test_median_waits_for_warmup_and_for_completed_trials():
    assert not MedianPruner(n_startup_trials=3, n_warmup_steps=2).prune(running([1, 5]), PEERS)
    assert not MedianPruner(n_startup_trials=4).prune(running([1, 5]), PEERS)
    unfinished = [trial([1.0, 0.1], TrialState.RUNNING), trial([1.0, 0.1], TrialState.PRUNED)]
    assert MedianPruner(n_startup_trials=3).prune(running([1, 5]), PEERS + unfinished)


def test_median_ignores_trials_missing_the_step():
    peers = [trial({0: 1.0, 2: 0.5}), trial({0: 1.0, 2: 0.4}), trial({0: 1.0, 1: 0.9})]
    pruner = MedianPruner(n_startup_trials=3)
    assert not pruner.prune(running([1.0, 0.85]), peers)  # step 1: only 0.9 votes
    assert pruner.prune(running([1.0, 0.95]), peers)
    assert pruner.prune(running([1.0, 0.85]), [*peers[:2], trial({0: 1.0, 1: 0.1})])
    assert not pruner.prune(running({0: 1.0, 3: 9.0}), peers)  # nobody reported step 3


def test_median_needs_n_min_trials_voters_at_the_step():
    peers = [trial({0: 1.0, 2: 0.5}), trial({0: 1.0, 2: 0.4}), trial({0: 1.0, 1: 0.9})]
    assert not MedianPruner(n_startup_trials=3, n_min_trials=2).prune(running([1.0, 5.0]), peers)
    assert MedianPruner(n_startup_trials=3, n_min_trials=2).prune(running([1.0, 5, 5]), peers)
    assert MedianPruner(n_startup_trials=3, n_min_trials=1).prune(running([1.0, 5.0]), peers)


def test_median_in_the_maximize_direction():
    peers = [trial([0.1, 0.6]), trial([0.1, 0.7]), trial([0.1, 0.8])]
    pruner = MedianPruner(n_startup_trials=3)
    assert pruner.prune(running([0.1, 0.5]), peers, Direction.MAXIMIZE)
    assert not pruner.prune(running([0.1, 0.9]), peers, Direction.MAXIMIZE)


def test_median_prunes_a_trial_with_only_nan():
    assert MedianPruner(n_startup_trials=3).prune(running([math.nan, math.nan]), PEERS)


def test_median_interval_steps():
    pruner = MedianPruner(n_startup_trials=3, interval_steps=2)
    assert not pruner.prune(running([1.0, 5.0]), PEERS)  # step 1 is not checked
    assert pruner.prune(running([1.0, 5.0, 5.0]), PEERS)


# -- successive halving (ASHA) and hyperband ----------------------------------------------


def test_asha_rungs():
    assert SuccessiveHalvingPruner(1, 3).rung_steps(30) == [1, 3, 9, 27]
    assert SuccessiveHalvingPruner(2, 2, min_early_stopping_rate=1).rung_steps(20) == [4, 8, 16]


def test_asha_keeps_the_best_fraction_at_a_rung():
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    others = [trial({0: 1.0, 1: v}) for v in (0.2, 0.4, 0.6)]
    assert not pruner.prune(running({0: 1.0, 1: 0.3}), others)  # 2nd of 4: top half
    assert pruner.prune(running({0: 1.0, 1: 0.5}), others)  # 3rd of 4
    assert not pruner.prune(running({0: 1.0, 1: 0.2}), others)  # a tie with the best: kept


def test_asha_decides_only_when_a_rung_is_reached():
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)  # rungs 1, 3, 9
    others = [trial({0: 1.0, 1: 0.1, 2: 0.1}) for _ in range(4)]
    assert not pruner.prune(running({0: 1.0, 1: 0.1, 2: 0.9}), others)  # step 2: no rung
    assert not pruner.prune(running({0: 9.0}), others)  # step 0: before the first rung


def test_asha_uses_the_last_value_before_a_rung_when_the_rung_was_skipped():
    pruner = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)
    others = [trial({0: 1.0, 2: v}) for v in (0.2, 0.3, 0.4)]
    assert pruner.prune(running({0: 1.0, 1: 0.9, 3: 0.1}), others)  # at rung 2 it had 0.9


def test_asha_judges_each_trial_by_its_best_value_up_to_the_rung():
    pruner = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)
    others = [trial({1: 0.3, 2: 0.6}), trial({1: 0.5, 2: 0.5}), trial({1: 0.4, 2: 0.45})]
    # best values up to rung 2: 0.3, 0.5, 0.4 and 0.35 -> second of four; the noisy
    # epoch (0.7) does not decide
    assert not pruner.prune(running({1: 0.35, 2: 0.7}), others)
    assert pruner.prune(running({1: 0.45, 2: 0.42}), others)  # third of four
    assert not pruner.prune(running({1: 0.2, 2: 0.9}), others, Direction.MAXIMIZE)  # 0.9 is best
    # nothing up to the rung: judged by its first value (0.9 prunes, 0.2 continues)
    assert pruner.prune(running({3: 0.9}), others)
    assert not pruner.prune(running({3: 0.2}), others)
    paper = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2, rung_value="last")
    assert paper.prune(running({1: 0.35, 2: 0.7}), others)  # last values: 0.7 of 0.6, 0.5, 0.45


def test_asha_leaves_out_a_competitor_with_nothing_up_to_the_rung():
    pruner = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)
    # the second competitor's first report (step 5) came after rung 2: it has no value there
    others = [trial({1: 0.45, 2: 0.45}), trial({5: 0.1})]
    assert not pruner.prune(running({1: 0.5, 2: 0.4}), others)  # first of two at rung 2


def test_hyperband_brackets_use_its_rung_value():
    others = [trial({1: 0.3, 2: 0.6}), trial({1: 0.5, 2: 0.5}), trial({1: 0.4, 2: 0.45})]
    noisy = running({1: 0.35, 2: 0.7})
    for rung_value, pruned in (("best", False), ("last", True)):
        pruner = HyperbandPruner(
            min_resource=2, max_resource=2, reduction_factor=2, rung_value=rung_value
        )  # one bracket: plain ASHA
        assert pruner.prune(noisy, others) is pruned


def test_asha_alone_at_a_rung_continues_and_nan_is_pruned():
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    assert not pruner.prune(running({0: 1.0, 1: 5.0}), [])
    assert pruner.prune(running({0: 1.0, 1: math.nan}), [])
    assert pruner.prune(running({0: 0.1, 1: math.nan}), [trial({0: 0.5, 1: 0.4})])  # diverged


def test_asha_in_the_maximize_direction():
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    others = [trial({1: v}) for v in (0.2, 0.4, 0.6)]
    assert not pruner.prune(running({0: 0.0, 1: 0.5}), others, Direction.MAXIMIZE)
    assert pruner.prune(running({0: 0.0, 1: 0.3}), others, Direction.MAXIMIZE)


def test_hyperband_brackets():
    pruner = HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)
    assert pruner.n_brackets == 4
    brackets = [pruner.bracket(n) for n in range(400)]
    assert set(brackets) == {0, 1, 2, 3}
    assert brackets == [pruner.bracket(n) for n in range(400)]  # deterministic
    assert brackets.count(0) > brackets.count(3)  # the aggressive bracket gets most trials


def test_hyperband_trials_compete_only_inside_their_bracket():
    pruner = HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)
    numbers = [n for n in range(200) if pruner.bracket(n) == 0]
    mine, same, other = (
        numbers[0],
        numbers[1:4],
        [n for n in range(200) if pruner.bracket(n) == 1][:6],
    )
    rivals = [trial({0: 1.0, 1: 0.1}, number=n) for n in same]
    strangers = [trial({0: 1.0, 1: 0.01}, number=n) for n in other]
    assert pruner.prune(running({0: 1.0, 1: 0.5}, mine), rivals)
    better_than_rivals = running({0: 1.0, 1: 0.05}, mine)
    assert not pruner.prune(better_than_rivals, rivals + strangers)


# -- threshold and patience ---------------------------------------------------------------


def test_threshold():
    pruner = ThresholdPruner(upper=10.0)
    assert pruner.prune(running([1.0, 12.0]), [])
    assert not pruner.prune(running([1.0, 9.0]), [])
    assert pruner.prune(running([1.0, math.nan]), [])
    assert ThresholdPruner(lower=0.5).prune(running([0.4]), [])
    assert not ThresholdPruner(upper=1.0, n_warmup_steps=2).prune(running([5.0, 5.0]), [])


def test_patience_prunes_after_steps_without_improvement():
    pruner = PatientPruner(patience=2)
    assert not pruner.prune(running([1.0, 0.9, 0.8, 0.7]), [])
    assert not pruner.prune(running([1.0, 0.9, 0.95]), [])  # one step without: patient
    assert pruner.prune(running([1.0, 0.9, 0.95, 0.92]), [])
    assert not PatientPruner(patience=2, min_delta=0.0).prune(running([1.0, 0.9, 0.95, 0.89]), [])
    assert PatientPruner(patience=2, min_delta=0.05).prune(running([1.0, 0.9, 0.95, 0.89]), [])


def test_patience_asks_the_wrapped_pruner():
    pruner = PatientPruner(patience=1, wrapped={"name": "median", "n_startup_trials": 3})
    assert not pruner.prune(running([1.0, 0.55, 0.55]), PEERS)  # stuck, better than 0.6
    assert pruner.prune(running([1.0, 0.9, 0.95]), PEERS)  # stuck and worse than the median


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("asha", {"reduction_factor": 1}, "reduction_factor must be an integer >= 2"),
        ("median", {"n_warmup_steps": -1}, "n_warmup_steps must be an integer >= 0"),
        ("median", {"n_min_trials": 0}, "n_min_trials must be an integer >= 1"),
        ("hyperband", {"min_resource": 10, "max_resource": 5}, "at least min_resource"),
        ("asha", {"rung_value": "mean"}, "rung_value must be one of best, last"),
        ("hyperband", {"rung_value": 1}, "rung_value must be one of best, last"),
        ("asha", {"rung_value": "bets"}, "did you mean 'best'"),
        ("threshold", {}, "give lower, upper or both"),
        ("threshold", {"lower": 2.0, "upper": 1.0}, "must not exceed"),
        ("patience", {"wrapped": "median"}, "wrapped must be a table"),
        ("median", {"n_warmup": 2}, "did you mean 'n_warmup_steps'"),
        ("medain", {}, "did you mean 'median'"),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(PrunerError, match=message):
        make_pruner(name, options)


# -- inside studies -----------------------------------------------------------------------


SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]


def learning_curve(trial: hpo.Trial) -> float:
    """Converges to x: bad points show it early; reports every step."""
    value = 1.0
    for step in range(8):
        value = trial.params["x"] + 1.0 / (step + 1)
        trial.report(value, step)
        if trial.should_prune():
            raise hpo.TrialPruned
    return value


def test_pruned_trials_are_stored_with_their_step_and_count_toward_the_budget(db_path):
    study = hpo.create_study(
        "s",
        str(db_path),
        SPACE,
        seed=0,
        budget=20,
        pruner="median",
        pruner_options={"n_startup_trials": 3},
    )
    study.optimize(learning_curve)
    trials = hpo.load_study("s", str(db_path)).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and len(trials) == 20
    assert not any(t.state == TrialState.FAIL for t in trials)
    for t in pruned:
        assert t.value == t.intermediate[t.last_step] and t.last_step < 7
    assert all(t.counts_toward_budget for t in trials)


def test_a_pruner_with_an_objective_that_reports_nothing_says_so(tmp_path, caplog):
    study_file = tmp_path / "s.toml"
    study_file.write_text('name = "s"\nobjective = "branin"\ntrials = 3\npruner = "median"\n')
    hpo.run(study_file, storage=str(tmp_path / "hpo.db"))
    assert (
        caplog.text.count(
            "the median pruner judged no trial: the objective reports no intermediate"
        )
        == 1
    )
    caplog.clear()
    study_file.write_text(
        'name = "r"\ntrials = 2\npruner = "median"\n[objective]\nname = "boston"\nmax_epochs = 3\n'
    )
    hpo.run(study_file, storage=str(tmp_path / "hpo.db"))
    assert "judged no trial" not in caplog.text


def test_the_pruner_is_stored_and_survives_a_resume(db_path):
    study = hpo.create_study(
        "s",
        str(db_path),
        SPACE,
        seed=1,
        budget=6,
        pruner="asha",
        pruner_options={"reduction_factor": 2},
    )
    study.optimize(learning_curve)
    resumed = hpo.load_study("s", str(db_path))
    assert isinstance(resumed.pruner, SuccessiveHalvingPruner)
    assert resumed.pruner.reduction_factor == 2
    resumed.set_budget(20)
    resumed.optimize(learning_curve)
    assert sum(t.state == TrialState.PRUNED for t in resumed.trials) > 0


def test_a_decision_reads_the_values_another_worker_reported(storage_url):
    """Two workers (each its own Study and connection): the second trial is judged
    against the first one's value while that trial is still running elsewhere."""
    first = hpo.create_study(
        "s",
        storage_url,
        SPACE,
        seed=0,
        budget=2,
        pruner="asha",
        pruner_options={"min_resource": 1, "reduction_factor": 2},
    )
    second = hpo.load_study("s", storage_url)
    reported, judged = threading.Event(), threading.Event()
    decisions: list[bool] = []

    def leader(trial: hpo.Trial) -> float:
        trial.report(0.1, 1)
        reported.set()
        assert judged.wait(30)
        return 0.1

    def follower(trial: hpo.Trial) -> float:
        assert reported.wait(30)
        trial.report(0.9, 1)
        decisions.append(trial.should_prune())  # 0.9 against the other worker's 0.1
        judged.set()
        raise hpo.TrialPruned

    worker = threading.Thread(target=first.optimize, args=(leader,), kwargs={"n_trials": 1})
    worker.start()
    try:
        second.optimize(follower, n_trials=1)
    finally:
        judged.set()
        worker.join(60)
    assert decisions == [True]
    states = sorted(t.state for t in hpo.load_study("s", storage_url).trials)
    assert states == sorted([TrialState.COMPLETE, TrialState.PRUNED])


def test_pruning_from_a_study_file_and_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "obj.py").write_text(
        "def f(trial):\n"
        "    for step in range(8):\n"
        "        value = trial.params['x'] + 1.0 / (step + 1)\n"
        "        trial.report(value, step)\n"
        "        if trial.should_prune():\n"
        "            import hpo\n"
        "            raise hpo.TrialPruned\n"
        "    return value\n"
    )
    (tmp_path / "s.toml").write_text(
        'name = "s"\nobjective = "obj.py:f"\ntrials = 15\n'
        'seed = 0\n[pruner]\nname = "median"\n'
        "n_startup_trials = 2\nn_warmup_steps = 2\n"
        '[[space]]\nname = "x"\n'
        'type = "float"\nlow = 0.0\nhigh = 1.0\n'
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "s.toml"], catch_exceptions=False).exit_code == 0
    listing = runner.invoke(cli, ["trials", "s", "--state", "pruned"]).stdout
    assert "pruned at step" in listing
    number = next(
        t.number for t in hpo.load_study("s", "hpo.db").trials if t.state == TrialState.PRUNED
    )
    shown = runner.invoke(cli, ["show", "s", str(number)]).stdout
    assert "*" in shown and "pruned at step" in shown  # the curve, and where it stopped


def test_a_bad_pruner_option_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "s.toml").write_text(
        'objective = "branin"\ntrials = 3\n[pruner]\nname = "asha"\nreduction_factor = 1\n'
    )
    result = CliRunner().invoke(cli, ["run", "s.toml"])
    assert result.exit_code == 2 and "reduction_factor must be" in result.stderr
    assert not (tmp_path / "hpo.db").exists()


def test_tpe_ranks_pruned_trials_by_their_last_value_among_complete_ones():
    space = Space.from_spec(SPACE)
    # a completed trial scored a penalty (2.3, a diverged network): a pruned trial that
    # trained to 0.4 is better evidence than it
    trials = [
        FrozenTrial(i + 1, i, TrialState.COMPLETE, {"x": x}, value=v)
        for i, (x, v) in enumerate([(0.1, 0.3), (0.2, 0.2), (0.5, 2.3)])
    ]
    trials += [
        FrozenTrial(4, 3, TrialState.PRUNED, {"x": 0.3}, intermediate={0: 0.9, 4: 0.4}),
        FrozenTrial(5, 4, TrialState.PRUNED, {"x": 0.4}, intermediate={0: 0.3}),
        FrozenTrial(6, 5, TrialState.PRUNED, {"x": 0.6}, intermediate={0: 0.5, 2: 0.3}),
    ]
    history = HistoryEncoder()(space, trials)
    assert list(history.pruned_step) == [4, 0, 2]
    assert np.allclose(history.pruned_loss, [0.4, 0.3, 0.3])
    sampler = hpo.samplers.make_sampler("tpe", {"n_startup": 1, "gamma": 0.99})
    good, bad, _, _ = sampler._split(history)
    ranked = np.concatenate([good[:, 0], bad[:, 0]])
    # 0.2; at 0.3 the completed trial, then the pruned one that reached step 2, then step 0;
    # 0.4 (pruned); the penalty last
    assert np.allclose(ranked, [0.2, 0.1, 0.6, 0.4, 0.3, 0.5])
