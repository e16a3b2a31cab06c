"""TPE: its Parzen estimators are densities, its split and weights, and it learns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

import hpo
from hpo.direction import Direction
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import make_sampler
from hpo.samplers.history import HistoryEncoder
from hpo.samplers.parzen import Parzen, _bandwidths
from hpo.samplers.tpe import _first_best, _improvement_weights

STUDIES = Path(__file__).resolve().parent.parent / "studies"

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40])
def test_numeric_density_integrates_to_one(n):
    x = RNG.random((n, 1))
    model = Parzen.fit(x, np.ones(n), [0])
    total, _ = integrate.quad(
        lambda v: np.exp(model.log_pdf(np.array([[v]])))[0], 0, 1, limit=200, points=list(x[:, 0])
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_categorical_probabilities_sum_to_one():
    x = (np.array([[0], [0], [2], [3]]) + 0.5) / 4
    model = Parzen.fit(x, np.ones(4), [4])
    grid = (np.arange(4)[:, None] + 0.5) / 4
    probs = np.exp(model.log_pdf(grid))
    assert probs.sum() == pytest.approx(1.0)
    assert probs[0] > probs[2] > probs[1]  # observed twice > once > never


def test_joint_density_of_mixed_coordinates_integrates_to_one():
    x = np.column_stack([RNG.random(6), (RNG.integers(0, 3, 6) + 0.5) / 3])
    model = Parzen.fit(x, np.ones(6), [0, 3])
    total = sum(
        integrate.quad(
            lambda v, c=c: np.exp(model.log_pdf(np.array([[v, c]])))[0], 0, 1, limit=200
        )[0]
        for c in (np.arange(3) + 0.5) / 3
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_samples_follow_the_density():
    model = Parzen.fit(np.array([[0.2], [0.25], [0.8]]), np.ones(3), [0])
    samples = model.sample(np.random.default_rng(1), 20000)
    assert samples.min() >= 0 and samples.max() <= 1
    counts, edges = np.histogram(samples, bins=10, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    expected = np.exp(model.log_pdf(centres[:, None])) * 0.1 * 20000
    assert np.allclose(counts, expected, rtol=0.15, atol=60)


def test_bandwidths_adapt_and_are_clipped():
    x = np.array([[0.10], [0.12], [0.50], [0.90]])
    sigma = _bandwidths(x, 0.05)[:, 0]
    assert sigma[-1] == 1.0  # the prior kernel
    assert sigma[1] < sigma[2]  # crowded observations get narrow kernels
    assert sigma.min() == pytest.approx(0.05)  # clipped, not collapsed onto the point
    assert Parzen.fit(x, np.ones(4), [0]).sigma.min() == pytest.approx(1 / 5)  # magic clip


def test_good_trials_weigh_by_their_improvement():
    loss = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    weights = _improvement_weights(loss, good=np.array([1, 2]), bad=np.array([0, 3, 4]))
    assert weights == pytest.approx([4 / 3, 2 / 3])  # gains 2 and 1 over 3.0, mean 1
    ties = _improvement_weights(np.ones(4), np.array([0, 1]), np.array([2, 3]))
    assert np.array_equal(ties, np.ones(2))


def test_candidates_that_tie_to_rounding_go_to_the_first_drawn():
    assert _first_best(np.array([1.0, 2.0, 3.0, 2.5])) == 2
    assert _first_best(np.array([1.0, 3.0 - 1e-12, 3.0, 3.0])) == 1  # equals, to rounding
    assert _first_best(np.array([1.0, 3.0 - 1e-6, 3.0])) == 2  # a real difference
    assert _first_best(np.array([-np.inf, -np.inf])) == 0


def test_grid_coordinates_are_scored_by_mass_and_drawn_on_the_grid():
    space = hpo.Space.from_spec([{"name": "n", "type": "int", "low": 1, "high": 4}])
    grid = space.params[0]
    x = np.array([[grid.encode(2)], [grid.encode(3)]])
    model = Parzen.fit(x, np.ones(2), [0], grids=[grid])
    values = np.array([[grid.encode(v)] for v in (1, 2, 3, 4)])
    assert np.exp(model.log_pdf(values)).sum() == pytest.approx(1.0)  # masses of the 4 values
    draws = model.sample(np.random.default_rng(0), 200)[:, 0]
    assert set(np.round(draws, 9)) <= set(np.round(values[:, 0], 9))


def _proposals(sampler_options: dict, seed: int, trials: int = 40) -> list[float]:
    space = [{"name": "x", "type": "float", "low": -5.0, "high": 5.0}]
    study = hpo.create_study(space=space, sampler="tpe", sampler_options=sampler_options, seed=seed)
    study.optimize(lambda t: (t.params["x"] - 1.5) ** 2, n_trials=trials)
    return [t.params["x"] for t in study.trials]


def test_tpe_concentrates_near_the_optimum():
    runs = [_proposals({}, seed) for seed in range(5)]
    late = [abs(x - 1.5) for xs in runs for x in xs[-15:]]
    assert np.median(late) < 1.8  # uniform on [-5, 5]: median distance 2.9
    assert np.mean([min(abs(x - 1.5) for x in xs) for xs in runs]) < 0.1


def test_running_trials_push_proposals_away():
    space = hpo.Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    study = hpo.create_study(space=space.to_spec(), seed=0)
    study.optimize(lambda t: abs(t.params["x"] - 0.3), n_trials=30)
    for _ in range(8):
        study.enqueue({"x": 0.3})  # queued: as good as running, for the liar
    trials = study.trials
    distances = {}
    for liar in (True, False):
        sampler = make_sampler("tpe", {"constant_liar": liar})
        picks = [sampler.ask(space, trials, np.random.default_rng(i))["x"] for i in range(20)]
        distances[liar] = np.mean([abs(x - 0.3) for x in picks])
    assert distances[True] > distances[False]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gamma": 0}, "gamma must be a number in"),
        ({"gamma": 1.0}, "gamma must be a number in"),
        ({"n_startup": 0}, "n_startup must be an integer >= 1"),
        ({"n_ei_candidates": 0}, "n_ei_candidates must be"),
        ({"multivariate": "yes"}, "multivariate must be true or false"),
        ({"prior_weight": -1}, "prior_weight"),
        ({"max_good": 0}, "max_good"),
        ({"startup": "halton"}, "startup must be one of sobol, random"),
        ({"gamma_rule": "log"}, "gamma_rule must be one of linear, sqrt, got 'log'"),
        ({"gama": 0.2}, "did you mean 'gamma'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(hpo.SamplerError, match=message):
        make_sampler("tpe", options)


def test_the_article_settings_from_a_study_file(tmp_path):
    from hpo.studyfile import load_study_file

    path = tmp_path / "s.toml"
    path.write_text(
        'objective = "mixed_nn"\ntrials = 25\n[sampler]\nname = "tpe"\n'
        "gamma = 0.2\nn_startup = 20\nn_ei_candidates = 1000\n"
    )
    study = hpo.run(path, storage=str(tmp_path / "hpo.db"))
    assert study.info.sampler_options == {"gamma": 0.2, "n_startup": 20, "n_ei_candidates": 1000}
    assert study.sampler.n_ei_candidates == 1000 and len(study.trials) == 25
    assert load_study_file(path).sampler == "tpe"


@pytest.mark.parametrize(
    ("options", "sizes"),
    [
        # n:                               1  10  50  100  200  1000  5000
        ({"gamma": 0.2}, [1, 2, 10, 20, 25, 25, 25]),  # linear, capped at 25
        ({"gamma": 0.2, "max_good": None}, [1, 2, 10, 20, 40, 200, 1000]),
        ({"gamma": 0.2, "gamma_rule": "sqrt"}, [1, 1, 2, 2, 3, 7, 15]),
        ({"gamma": 0.5, "gamma_rule": "sqrt"}, [1, 2, 4, 5, 8, 16, 25]),  # 36 capped
        ({"gamma": 0.5, "gamma_rule": "sqrt", "max_good": None}, [1, 2, 4, 5, 8, 16, 36]),
        ({"gamma": 0.5, "gamma_rule": "sqrt", "max_good": 3}, [1, 2, 3, 3, 3, 3, 3]),
    ],
)
def test_the_good_group_size_under_each_rule(options, sizes):
    sampler = make_sampler("tpe", options)
    assert [sampler.n_good(n) for n in (1, 10, 50, 100, 200, 1000, 5000)] == sizes


def test_the_sqrt_rule_is_hyperopts_split():
    tpe = pytest.importorskip("hyperopt.tpe")
    for gamma in (0.05, 0.2, 0.25, 0.7):
        sampler = make_sampler("tpe", {"gamma": gamma, "gamma_rule": "sqrt"})
        for n in [*range(1, 120), 199, 200, 201, 400, 2500, 10_000]:
            losses = np.arange(n, dtype=float)[::-1]  # distinct: no tie to break
            below, _ = tpe.ap_split_trials(np.arange(n), losses, np.arange(n), losses, gamma)
            assert sampler.n_good(n) == len(below), (gamma, n)


def test_the_split_uses_the_rule():
    space = hpo.Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    trials = [
        FrozenTrial(i + 1, i, TrialState.COMPLETE, {"x": i / 200}, value=float(i))
        for i in range(200)
    ]
    history = HistoryEncoder()(space, trials)
    for rule, size in (("linear", 25), ("sqrt", 3)):
        good, bad, _, _ = make_sampler("tpe", {"gamma": 0.2, "gamma_rule": rule})._split(history)
        assert np.allclose(good[:, 0], np.arange(size) / 200) and len(bad) == 200 - size


def test_the_article_study_file_has_the_articles_settings():
    from hpo.studyfile import load_study_file

    config = load_study_file(STUDIES / "mnist_article.toml")
    assert (config.objective, config.trials) == ("mnist_mlp", 200)
    assert config.objective_options == {"max_epochs": 50, "patience": 50}  # no early stopping
    sampler = make_sampler(config.sampler, config.sampler_options)
    assert (sampler.gamma, sampler.n_startup, sampler.n_ei_candidates) == (0.2, 20, 1000)
    assert sampler.startup == "random" and not sampler.multivariate
    assert [sampler.n_good(n) for n in (20, 100, 200)] == [1, 2, 3]  # hyperopt's split


# -- the history encoder and the large-history arithmetic --------------------------

MIXED = hpo.Space.from_spec(
    [
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
        {"name": "act", "type": "categorical", "choices": [1, True, "relu", 1.0]},
        {
            "name": "layers",
            "type": "branch",
            "choices": {
                "one": [{"name": "u", "type": "int", "low": 50, "high": 500}],
                "two": [{"name": "u", "type": "int", "low": 8, "high": 512, "log": True}],
            },
        },
    ]
)


def _mixed_trials(n: int, seed: int) -> list[FrozenTrial]:
    """Trials of every state (numbers and ids 0.., as in any fresh study)."""
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(n):
        params = MIXED.decode(rng.random(len(MIXED)))
        state = [TrialState.COMPLETE] * 5 + list(TrialState)
        state = state[rng.integers(len(state))]
        value = float(rng.normal()) if state == TrialState.COMPLETE else None
        reports = {s: float(rng.normal()) for s in range(rng.integers(3))}
        if reports and rng.random() < 0.2:
            reports[max(reports)] = math.nan  # a pruned trial whose last report is unusable
        trials.append(FrozenTrial(i + 1, i, state, params, value, intermediate=reports))
    return trials


def _history_afresh(space, trials, sign):
    """The History by its definition, one trial at a time."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    pruned = [
        t
        for t in trials
        if t.state == TrialState.PRUNED
        and t.intermediate
        and math.isfinite(t.intermediate[max(t.intermediate)])
    ]
    rows = lambda ts: np.array([space.encode(t.params) for t in ts]).reshape(len(ts), len(space))  # noqa: E731
    return {
        "x": rows(done),
        "loss": np.array([sign * t.value for t in done]),
        "number": np.array([t.number for t in done]),
        "pending": rows(pending),
        "pruned_x": rows(pruned),
        "pruned_loss": np.array([sign * t.intermediate[max(t.intermediate)] for t in pruned]),
        "pruned_step": np.array([max(t.intermediate) for t in pruned]),
    }


def test_the_encoder_reuses_rows_only_for_the_same_records():
    encoder, first, other = HistoryEncoder(), _mixed_trials(120, 0), _mixed_trials(120, 1)
    # the same trial numbers and ids with other points (another study), a record
    # replaced (a trial that finished), a reordering, a shorter list, another space
    replaced = [*first[:50], FrozenTrial(51, 50, TrialState.COMPLETE, other[50].params, 0.5)]
    replaced += first[51:]
    space_b = hpo.Space.from_spec([{"name": "lr", "type": "float", "low": 1e-5, "high": 1.0}])
    calls = [first, first, other, first, replaced, replaced[::-1], first[:30], first[:0], first]
    for trials, space, direction in [(t, MIXED, Direction.MINIMIZE) for t in calls] + [
        (first, space_b, Direction.MINIMIZE),
        (first, MIXED, Direction.MAXIMIZE),
    ]:
        history = encoder(space, trials, direction)
        expected = _history_afresh(space, trials, direction.sign)
        for field, value in expected.items():
            got = getattr(history, field)
            assert got.shape == value.shape and np.array_equal(got, value, equal_nan=True), field


def test_an_ask_is_a_function_of_its_inputs():
    first, other = _mixed_trials(150, 2), _mixed_trials(150, 3)
    warm = make_sampler("tpe", {"n_startup": 5})
    warm.ask(MIXED, other, np.random.default_rng(9))  # (a previous study's rows)
    for trials in (first, other):
        cold = make_sampler("tpe", {"n_startup": 5}).ask(MIXED, trials, np.random.default_rng(4))
        assert warm.ask(MIXED, trials, np.random.default_rng(4)) == cold


def test_the_log_density_of_many_kernels_matches_its_definition():
    """Gaussians truncated to [0, 1] (one coordinate by density, one int by the mass
    of its slice), a categorical kernel; scored against scipy's truncnorm, kernel by kernel."""
    rng = np.random.default_rng(3)
    wide = hpo.Space.from_spec([{"name": "n", "type": "int", "low": 1, "high": 6}]).params[0]
    n = 3000
    x = np.column_stack(
        [rng.random(n), wide.snap_unit(rng.random(n)), (rng.integers(0, 3, n) + 0.5) / 3]
    )
    weights = rng.random(n) + 0.1
    model = Parzen.fit(x, weights, [0, 0, 3], grids=[None, wide, None], min_width=0.003)
    points = np.column_stack(
        [rng.random(40), wide.snap_unit(rng.random(40)), (rng.integers(0, 3, 40) + 0.5) / 3]
    )
    mu, sigma = model.mu, model.sigma  # (K, 2)
    a, b = -mu / sigma, (1 - mu) / sigma
    density = stats.truncnorm.logpdf(points[:, None, 0], a[:, 0], b[:, 0], mu[:, 0], sigma[:, 0])
    low, high = wide.slice_of(points[:, 1])
    mass = stats.truncnorm.cdf(high[:, None], a[:, 1], b[:, 1], mu[:, 1], sigma[:, 1])
    mass -= stats.truncnorm.cdf(low[:, None], a[:, 1], b[:, 1], mu[:, 1], sigma[:, 1])
    choice = np.minimum((points[:, 2] * 3).astype(int), 2)
    with np.errstate(divide="ignore"):  # far kernels' masses underflow: log 0, no weight
        log_mass = np.log(mass)
    expected = special.logsumexp(
        model.log_weights + density + log_mass + model.log_probs[0][:, choice].T, axis=1
    )
    assert np.allclose(model.log_pdf(points), expected, rtol=1e-9, atol=1e-9)


# -- several objectives (MOTPE) and constraints -------------------------------------------


def _trials(points, values, constraints=None):
    """Completed records at x = points with these values (one or several per trial)."""
    out = []
    for i, (x, v) in enumerate(zip(points, values, strict=True)):
        several = isinstance(v, tuple | list)
        out.append(
            FrozenTrial(
                i + 1,
                i,
                TrialState.COMPLETE,
                {"x": x},
                value=None if several else v,
                objective_values=list(v) if several else None,
                constraints=None if constraints is None else [constraints[i]],
            )
        )
    return out


X_SPACE = hpo.Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
TWO = (Direction.MINIMIZE, Direction.MINIMIZE)


def test_motpe_fills_the_good_group_front_by_front():
    # 20 trials: gamma 0.1 -> 2 good. The front is (0, 3), (1, 1), (3, 0): three points,
    # too many: the greedy hypervolume subset keeps two of them
    values = [(0, 3), (1, 1), (3, 0)] + [(5 + i, 5 + i) for i in range(17)]
    trials = _trials([i / 20 for i in range(20)], values)
    history = HistoryEncoder()(X_SPACE, trials, TWO)
    sampler = make_sampler("tpe")
    good, bad, weights, _ = sampler._split(history)
    assert len(good) == 2 and len(bad) == 18
    assert set(np.round(good[:, 0] * 20).astype(int)) <= {0, 1, 2}
    assert np.isclose(weights.mean(), 1.0) and (weights > 0).all()
    # 40 trials: 4 good: the whole front (3) and the best of the second front
    values = [(0, 3), (1, 1), (3, 0), (2, 2)] + [(5 + i, 5 + i) for i in range(36)]
    history = HistoryEncoder()(X_SPACE, _trials([i / 40 for i in range(40)], values), TWO)
    good, _, weights, _ = sampler._split(history)
    assert sorted(np.round(good[:, 0] * 40).astype(int).tolist()) == [0, 1, 2, 3]
    # behind the good group's front, (2, 2) weighs next to nothing
    assert weights[np.argmin(np.abs(good[:, 0] - 3 / 40))] < 1e-6
    # without constraints, scaled to a mean of 1, as improvements are with one objective
    assert np.isclose(weights.mean(), 1.0) and weights.max() > 1.2
    # with constraints, the largest contribution weighs 1, as the prior's kernel does:
    # at a mean of 1 the good trials would drown the prior, and the search would stay
    # in the first feasible region it found
    constrained, _, constrained_weights, _ = sampler._split(history, constrained=True)
    assert np.array_equal(constrained, good)
    assert np.allclose(constrained_weights, weights / weights.max())


def test_motpe_scales_its_weights_by_whether_the_study_sets_constraints():
    # the same losses, all feasible; only whether the trials set constraints differs
    values = [(i / 30, 1 - (i / 30) ** 0.5) for i in range(30)]
    points = [i / 30 for i in range(30)]
    free = _trials(points, values)
    feasible = _trials(points, values, constraints=[-1.0] * 30)
    sampler = make_sampler("tpe", {"n_startup": 5})
    rng = np.random.default_rng
    asked_free = [sampler.ask(X_SPACE, free, rng(seed), TWO)["x"] for seed in range(20)]
    asked_feasible = [sampler.ask(X_SPACE, feasible, rng(seed), TWO)["x"] for seed in range(20)]
    assert asked_free != asked_feasible


def test_tpe_keeps_infeasible_trials_out_of_the_good_group():
    # the four best values are infeasible: the good group (3 of 30) skips them
    values = [float(i) for i in range(30)]
    constraints = [1.0 if i < 4 else -1.0 for i in range(30)]
    trials = _trials([i / 30 for i in range(30)], values, constraints)
    history = HistoryEncoder()(X_SPACE, trials, Direction.MINIMIZE)
    good, bad, weights, _ = make_sampler("tpe")._split(history)
    assert np.allclose(np.sort(good[:, 0]) * 30, [4, 5, 6]) and len(bad) == 27
    # no feasible trial yet: the least violating are the good ones
    constraints = [float(30 - i) for i in range(30)]
    history = HistoryEncoder()(X_SPACE, _trials([i / 30 for i in range(30)], values, constraints))
    good, _, weights, _ = make_sampler("tpe")._split(history)
    assert np.allclose(np.sort(good[:, 0]) * 30, [27, 28, 29]) and (weights == 1).all()
    # and the same with two objectives
    values2 = [(v, -v) for v in values]
    constraints = [1.0 if i % 2 else -1.0 for i in range(30)]
    history = HistoryEncoder()(X_SPACE, _trials([i / 30 for i in range(30)], values2, constraints))
    good, _, _, _ = make_sampler("tpe")._split(history)
    assert all(round(g * 30) % 2 == 0 for g in good[:, 0])


def test_without_constraints_the_single_objective_split_is_unchanged():
    trials = _trials([i / 50 for i in range(50)], [float((i * 7) % 50) for i in range(50)])
    history = HistoryEncoder()(X_SPACE, trials)
    good, bad, _weights, _ = make_sampler("tpe")._split(history)
    assert np.allclose(np.sort(good[:, 0]) * 50, sorted(i for i in range(50) if (i * 7) % 50 < 5))
    assert len(bad) == 45
