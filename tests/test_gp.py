"""The GP sampler: likelihood and posterior against direct dense computations, their
gradients against finite differences, the approximations' error, log-EI, the batched
optimizer, the fit schedule and its cache, features, and that it optimizes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

import hpo
from hpo.samplers import gp_fit, make_sampler
from hpo.samplers.gp import Features, _ehvi_reference
from hpo.samplers.gp_fit import (
    EVERY_TRIAL_UNTIL,
    FIT_ROWS,
    POSTERIOR_ROWS,
    REFIT_GROWTH,
    anchor_size,
    anchor_theta,
    fit_rows,
    hyperparameters,
    posterior_rows,
    warp,
)
from hpo.samplers.gp_model import (
    JITTER,
    GaussianProcess,
    default_start,
    fit_theta,
    neg_log_posterior,
    pairwise_sq,
)
from hpo.samplers.gp_optim import minimize_batched
from hpo.samplers.logei import log_ei, log_h, log_h_and_slope
from hpo.space import Space

RNG = np.random.default_rng(0)
X = RNG.random((20, 3))
Y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2]
Y_STD = (Y - Y.mean()) / Y.std()
THETA = np.array([0.3, -0.5, 1.0, 0.2, -3.0])  # log λ (3), log s, log σ²


@pytest.fixture(autouse=True)
def one_blas_thread():
    """As in an ask (GPSampler.ask limits BLAS so): on a loaded machine, a threaded BLAS
    call on a small matrix can wait milliseconds for its second thread."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def dense_kernel(a: np.ndarray, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Matérn-5/2 written out from R&W eq. 4.17, with explicit differences: (m, n)."""
    dim = a.shape[1]
    lam, scale = np.exp(theta[:dim]), np.exp(theta[dim])
    r = np.sqrt(np.sum(lam * (a[:, None, :] - b[None, :, :]) ** 2, axis=2))
    return scale * (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)


def dense_k(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    noise = np.exp(theta[x.shape[1] + 1])
    return dense_kernel(x, x, theta) + (noise + JITTER) * np.eye(len(x))


def test_log_posterior_matches_a_dense_computation():
    k = dense_k(X, THETA)
    _, log_det = np.linalg.slogdet(k)
    log_ml = -0.5 * Y_STD @ np.linalg.solve(k, Y_STD) - 0.5 * log_det - 10 * np.log(2 * np.pi)
    lam, scale, noise = np.exp(THETA[:3]), np.exp(THETA[3]), np.exp(THETA[4])
    log_prior = -np.sum(0.1 / lam + 0.1 * lam) + np.log(scale) - scale
    log_prior += 0.1 * np.log(noise) - 30 * noise
    value, _ = neg_log_posterior(THETA, pairwise_sq(X), Y_STD)
    assert value == pytest.approx(-(log_ml + log_prior), rel=1e-10)


@pytest.mark.parametrize(
    "theta", [THETA, np.array([2.0, -3.0, 0.0, -1.0, -12.0]), np.array([-1, 1, 0.5, 1.5, -1])]
)
def test_log_posterior_gradient_matches_finite_differences(theta):
    sq = pairwise_sq(X)
    value, gradient = neg_log_posterior(theta, sq, Y_STD)
    numeric = optimize.approx_fprime(theta, lambda t: neg_log_posterior(t, sq, Y_STD)[0], 1e-6)
    assert np.allclose(gradient, numeric, rtol=1e-4, atol=1e-4)
    assert np.isfinite(value)


def test_log_posterior_is_a_wall_where_the_kernel_matrix_breaks_down():
    duplicated = np.vstack([X, X[:1]])  # two equal rows: K singular without noise
    y = np.r_[Y_STD, Y_STD[0]]
    broken = np.array([0.0, 0.0, 0.0, 0.0, np.log(1e-30)])
    value, gradient = neg_log_posterior(broken, pairwise_sq(duplicated), y)
    if value == 1e25:  # (LAPACK may still factor it, rounded)
        assert np.all(gradient == 0)
    assert neg_log_posterior(THETA, pairwise_sq(duplicated), y)[0] < 1e25


def test_posterior_matches_a_dense_computation():
    gp = GaussianProcess.with_params(X, Y_STD, THETA)
    z = RNG.random((7, 3))
    k_star = dense_kernel(z, X, THETA)  # (7, 20)
    k = dense_k(X, THETA)
    mean = k_star @ np.linalg.solve(k, Y_STD)
    var = np.exp(THETA[3]) - np.sum(k_star * np.linalg.solve(k, k_star.T).T, axis=1)
    for got_mean, got_var, *_ in (gp.predict(z), gp.predict_with_gradient(z)):
        assert np.allclose(got_mean, mean, rtol=1e-9, atol=1e-10)
        assert np.allclose(got_var, var, rtol=1e-7, atol=1e-10)


def test_posterior_interpolates_noiseless_data_and_knows_what_it_does_not_know():
    gp = GaussianProcess.with_params(X, Y_STD, np.array([1.0, 1.0, 1.0, 0.0, np.log(1e-6)]))
    mean, var = gp.predict(X)
    assert np.allclose(mean, Y_STD, atol=1e-3)
    assert var.max() < 1e-3
    far = np.full((1, 3), 5.0)  # far from every training point
    assert gp.predict(far)[1][0] == pytest.approx(gp.scale, rel=1e-3)


def test_posterior_gradients_match_finite_differences():
    gp = GaussianProcess.fit(X, Y_STD, np.random.default_rng(1))
    z = RNG.random((4, 3))
    _, _, d_mean, d_var = gp.predict_with_gradient(z)
    for i in range(4):
        numeric_mean = optimize.approx_fprime(z[i], lambda v: gp.predict(v[None])[0][0], 1e-7)
        numeric_var = optimize.approx_fprime(z[i], lambda v: gp.predict(v[None])[1][0], 1e-7)
        assert np.allclose(d_mean[i], numeric_mean, atol=1e-5)
        assert np.allclose(d_var[i], numeric_var, atol=1e-5)


def test_fitting_finds_the_relevant_dimensions():
    x = RNG.random((40, 3))
    y = np.sin(6 * x[:, 0])  # only the first coordinate matters
    gp = GaussianProcess.fit(x, (y - y.mean()) / y.std(), np.random.default_rng(2))
    lam = np.exp(gp.log_lambda)
    assert lam[0] > 10 * lam[1] and lam[0] > 10 * lam[2]


def smooth(x: np.ndarray) -> np.ndarray:
    """A test objective on [0, 1]^4 with one irrelevant coordinate."""
    return np.sin(5 * x[:, 0]) + (x[:, 1] - 0.3) ** 2 * 4 + np.cos(3 * x[:, 2])


def test_hyperparameters_fitted_on_a_subset_predict_as_well(monkeypatch):
    """Beyond FIT_ROWS rows the likelihood sees a random subset: the posterior (on all
    rows) with those hyperparameters predicts held-out points within 10% of the error
    of the posterior with hyperparameters fitted on every row, and the two posteriors
    differ by a small fraction of the data's spread. (FIT_ROWS lowered: the same
    approximation at half the size, so that the test takes a second.)"""
    monkeypatch.setattr(gp_fit, "FIT_ROWS", FIT_ROWS // 2)
    rng = np.random.default_rng(3)
    x, test = rng.random((FIT_ROWS, 4)), rng.random((300, 4))
    y = warp(smooth(x))
    start = [default_start(4)]
    rows = fit_rows(len(x))
    assert len(rows) == FIT_ROWS // 2
    full = GaussianProcess.with_params(x, y, fit_theta(x, y, start))
    subset = GaussianProcess.with_params(x, y, fit_theta(x[rows], y[rows], start))
    truth = (smooth(test) - smooth(x).mean()) / smooth(x).std()
    error = {name: gp.predict(test)[0] for name, gp in (("full", full), ("subset", subset))}
    rmse = {name: np.sqrt(np.mean((mean - truth) ** 2)) for name, mean in error.items()}
    assert rmse["subset"] <= 1.1 * rmse["full"] + 1e-3
    assert np.sqrt(np.mean((error["subset"] - error["full"]) ** 2)) < 0.02


def test_posterior_on_a_subset_stays_close_where_the_best_trials_are():
    """Beyond POSTERIOR_ROWS trials the posterior keeps the better half and a sample of
    the rest: near the best trials (where EI is decided) its mean and deviation stay
    within 0.1% of the exact posterior's scale; elsewhere, where half the trials were
    dropped, the deviation grows (more exploration there), within 20%."""
    rng = np.random.default_rng(4)
    n = POSTERIOR_ROWS + POSTERIOR_ROWS // 2
    x = rng.random((n, 3))
    loss = np.sin(5 * x[:, 0]) + (x[:, 1] - 0.3) ** 2 * 4 + np.cos(3 * x[:, 2])
    y = warp(loss)
    theta = np.array([1.5, 1.5, 1.5, 0.0, np.log(1e-4)])
    exact = GaussianProcess.with_params(x, y, theta)
    rows = posterior_rows(loss, pending=0)
    assert len(rows) == POSTERIOR_ROWS and len(np.unique(rows)) == POSTERIOR_ROWS
    approx = GaussianProcess.with_params(x[rows], y[rows], theta)
    best = x[np.argsort(loss)[:50]]
    near = np.clip(best + rng.normal(0, 0.02, best.shape), 0, 1)
    # measured: 7e-6 and 3e-6 near the best trials; 0.008 and 0.08 at random points
    for points, mean_bound, std_bound in ((near, 1e-3, 1e-3), (rng.random((300, 3)), 0.05, 0.2)):
        (m0, v0), (m1, v1) = exact.predict(points), approx.predict(points)
        assert np.max(np.abs(m1 - m0)) < mean_bound * np.ptp(y)
        assert np.max(np.abs(np.sqrt(v1) - np.sqrt(v0))) < std_bound * np.sqrt(exact.scale)


def test_posterior_rows_keep_the_best_and_every_running_trial():
    loss = np.random.default_rng(5).random(POSTERIOR_ROWS + 500)
    rows = posterior_rows(loss, pending=3)
    assert len(rows) == POSTERIOR_ROWS + 3
    assert set(np.argsort(loss)[: POSTERIOR_ROWS // 2]) <= set(rows)
    assert list(rows[-3:]) == [len(loss), len(loss) + 1, len(loss) + 2]
    assert np.array_equal(rows, posterior_rows(loss, pending=3))  # by the data alone
    assert np.array_equal(posterior_rows(loss[:100], 2), np.arange(102))


def test_anchor_schedule_refits_every_trial_then_once_per_fifth_of_growth():
    sizes = [anchor_size(n) for n in range(1, 20_000)]
    assert all(1 <= a <= n for n, a in zip(range(1, 20_000), sizes, strict=True))
    assert sizes == sorted(sizes)
    assert sizes[:EVERY_TRIAL_UNTIL] == list(range(1, EVERY_TRIAL_UNTIL + 1))
    # the next refit is never more than 20% (and one trial) past the last one ...
    assert all(n <= REFIT_GROWTH * a + 1 for n, a in zip(range(1, 20_000), sizes, strict=True))
    # ... and a study of 20,000 trials refits 57 times
    assert len(set(sizes)) == 57


def test_the_anchor_cache_returns_exactly_what_a_fit_returns():
    gp_fit.clear_cache()
    first = anchor_theta(X, Y, 2)
    again = anchor_theta(X, Y, 2)  # from the cache
    gp_fit.clear_cache()
    fresh = anchor_theta(X, Y, 2)  # computed again
    assert np.array_equal(first, again) and np.array_equal(first, fresh)
    again[0] = 99.0  # the caller's copy: the cache is not changed through it
    assert np.array_equal(anchor_theta(X, Y, 2), first)
    shifted = anchor_theta(X, Y + 1e-12, 2)  # keyed by the full bytes: no false hit
    assert shifted is not None and anchor_theta(X, Y, 2)[0] != 99.0


def test_asks_do_not_depend_on_what_this_process_asked_before():
    """The same trials and rng give the same point whether the fit cache is empty, was
    filled by other studies, or by this study's earlier asks (a resumed study, another
    worker process and the original run all see the same answers)."""
    study = hpo.create_study(objective="branin", sampler="random", seed=0)
    study.optimize(n_trials=40)
    other = hpo.create_study(objective="branin", sampler="random", seed=1)
    other.optimize(n_trials=40)
    space, trials = study.space, study.trials
    sampler = make_sampler("gp", {"n_candidates": 256}, seed=0)

    def ask(history) -> dict:
        return sampler.ask(space, history, np.random.default_rng(7))

    gp_fit.clear_cache()
    cold = ask(trials)
    for n in range(12, 40, 3):  # the asks of a running study, and of another one
        ask(trials[:n])
        ask(other.trials[:n])
    assert ask(trials) == cold
    gp_fit.clear_cache()
    history = sampler._encode(space, trials)
    x = Features.of_space(space)(history.x)
    theta = hyperparameters(x, history.loss, 2)
    ask(other.trials)
    assert np.array_equal(hyperparameters(x, history.loss, 2), theta)


def test_log_h_matches_the_direct_formula_and_stays_finite():
    z = np.linspace(-5, 5, 41)
    direct = np.log(stats.norm.pdf(z) + z * stats.norm.cdf(z))
    assert np.allclose(log_h(z), direct, rtol=1e-9)
    assert np.allclose(log_h(z[z > -1]), direct[z > -1], rtol=1e-9)  # one region only
    tail = np.array([-40.0, -1e3, -1e9])  # where the direct formula gives log(0)
    assert np.all(np.isfinite(log_h(tail))) and np.all(np.diff(log_h(tail)) < 0)
    both = np.array([-1e9, -50.0, -3.0, -1.0, 0.0, 2.0])
    numeric = (log_h(both + 1e-6) - log_h(both - 1e-6)) / 2e-6
    assert np.allclose(log_h_and_slope(both[1:])[1], numeric[1:], rtol=1e-4)
    assert log_h_and_slope(both[:1])[1][0] == pytest.approx(1e9)  # far tail: -z


def test_expected_improvement_is_positive_and_grows_with_uncertainty():
    mean = np.array([0.0, 0.0, 2.0, 30.0])
    std = np.array([1.0, 2.0, 1.0, 1.0])
    values = log_ei(mean, std, best=0.0)
    assert np.all(np.isfinite(values))  # EI > 0 everywhere: its log is finite
    assert values[1] > values[0] > values[2] > values[3]


def rosenbrock(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x (k, 2) -> values (k,) and gradients (k, 2)."""
    a, b = x[:, 0], x[:, 1]
    value = 100 * (b - a**2) ** 2 + (1 - a) ** 2
    gradient = np.stack([-400 * a * (b - a**2) - 2 * (1 - a), 200 * (b - a**2)], axis=1)
    return value, gradient


def test_batched_minimization_matches_lbfgsb_problem_by_problem():
    starts = np.array([[-1.2, 1.0], [0.5, -1.5], [1.8, 1.8], [-0.5, 0.5]])
    lower = np.array([[-2, -2], [-2, -2], [-2, 1.5], [-2, 0.5]], dtype=float)
    upper = np.array([[2, 2], [2, 2], [2, 2], [2, 0.5]], dtype=float)  # last: y held at 0.5
    x, f = minimize_batched(rosenbrock, starts, lower, upper, gtol=1e-8, maxiter=500)
    for i in range(len(starts)):
        reference = optimize.minimize(
            lambda v: tuple(r[0] for r in rosenbrock(v[None])),
            starts[i],
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lower[i], upper[i], strict=True)),
            options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 2000},
        )
        assert f[i] == pytest.approx(reference.fun, abs=1e-8)
        assert np.allclose(x[i], reference.x, atol=1e-4)
    assert np.all(x >= lower) and np.all(x <= upper)
    assert x[3, 1] == 0.5  # a held coordinate never moves
    assert x[2, 1] == 1.5  # stopped by the bound y >= 1.5


def test_batched_minimization_drops_problems_far_behind_the_best():
    starts = np.array([[1.0, 1.0], [-1.5, 2.0]])  # the first starts at the minimum
    lower, upper = np.full((2, 2), -2.0), np.full((2, 2), 2.0)
    full, f_full = minimize_batched(rosenbrock, starts, lower, upper, gtol=1e-8)
    cut, f_cut = minimize_batched(rosenbrock, starts, lower, upper, gtol=1e-8, behind=2.0)
    assert f_full[1] < 1e-8  # left alone, the second finds the minimum too
    assert f_cut[1] > 2.0  # dropped while more than 2 above the first
    assert np.array_equal(cut[0], full[0]) and f_cut[0] == f_full[0]  # the best is unchanged


def test_warp_keeps_the_order_and_tames_the_tail():
    loss = np.array([0.1, 0.2, 0.3, 0.5, 1.0, 400.0])
    warped = warp(loss)
    assert np.all(np.diff(warped) > 0)
    assert warped.mean() == pytest.approx(0.0, abs=1e-9) and warped.std() == pytest.approx(1.0)
    standardized = (loss - loss.mean()) / loss.std()
    assert warped[-1] < standardized[-1]  # the outlier is pulled in


def test_features_one_hot_and_inactive_values():
    space = Space.from_spec(
        [
            {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
            {
                "name": "b",
                "type": "branch",
                "choices": {
                    "p": [{"name": "y", "type": "float", "low": 0.0, "high": 1.0}],
                    "q": [{"name": "c", "type": "categorical", "choices": ["u", "v", "w"]}],
                },
            },
        ]
    )
    features = Features.of_space(space)
    assert features.size == 1 + 2 + 1 + 3
    u = space.encode_many([{"x": 0.25, "b": "p", "y": 0.75}, {"x": 1.0, "b": "q", "c": "w"}])
    f = features(u)
    assert np.allclose(f[0], [0.25, 1, 0, 0.75, 0, 0, 0])  # c inactive: all zero
    assert np.allclose(f[1], [1.0, 0, 1, 0.5, 0, 0, 1])  # y inactive: 0.5
    assert list(np.flatnonzero(features.free_mask(u[0]))) == [0, 3]


def test_gp_optimizes_branin_far_better_than_random():
    regrets = {}
    for sampler in ("gp", "random"):
        study = hpo.create_study(objective="branin", sampler=sampler, seed=0, budget=25)
        study.optimize()
        regrets[sampler] = study.best_value - 0.397887
    assert regrets["gp"] < 0.05 < regrets["random"]


def test_a_running_trial_is_not_proposed_again():
    space = Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    study = hpo.create_study(space=space.to_spec(), seed=0)
    study.optimize(lambda t: (t.params["x"] - 0.3) ** 2, n_trials=12)
    sampler = make_sampler("gp", {"n_startup": 5})
    first = sampler.ask(space, study.trials, np.random.default_rng(0))["x"]
    study.enqueue({"x": first})  # as if a worker were evaluating it now
    second = sampler.ask(space, study.trials, np.random.default_rng(0))["x"]
    assert abs(second - first) > 1e-3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_startup": 0}, "n_startup must be an integer >= 1"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"n_refine": 0}, "n_refine"),
        ({"constant_liar": 1}, "constant_liar must be true or false"),
        ({"n_startups": 3}, "did you mean 'n_startup'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(hpo.SamplerError, match=message):
        make_sampler("gp", options)


# -- several objectives and constraints: log EHVI, log P(feasible) ------------------------


def _objective_gps(k: int, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """k GPs on 30 points of three features, and their standardized training values."""
    from hpo.samplers.gp_model import GaussianProcess

    x = rng.random((30, 3))
    columns = [np.sin(3 * x[:, 0]) + x[:, 1], np.cos(2 * x[:, 1]) + x[:, 2], x[:, 0] * x[:, 2]]
    ys = np.column_stack([(c - c.mean()) / c.std() for c in columns[:k]])  # (30, k)
    gps = [GaussianProcess.fit(x, ys[:, j], rng) for j in range(k)]
    return gps, ys


@pytest.mark.parametrize("k", [2, 3])
def test_the_boxes_cover_exactly_what_the_front_leaves(k):
    from hpo.pareto import front_mask, hypervolume
    from hpo.samplers.acquisition import nondominated_boxes

    rng = np.random.default_rng(k)
    points = rng.random((25, k))
    front, reference = points[front_mask(points)], np.full(k, 1.2)
    lower, upper = nondominated_boxes(front, reference)
    floor = np.full(k, -0.5)  # clip the boxes' -inf: their volume above a floor
    boxes = np.prod(upper - np.maximum(lower, floor), axis=1).sum()
    whole = np.prod(reference - floor)
    assert boxes + hypervolume(front, reference) == pytest.approx(whole)
    # and a point's improvement, summed over the boxes, is its exact hypervolume gain
    for y in rng.random((5, k)) - 0.2:
        gain = np.prod(np.clip(upper - np.maximum(lower, y), 0, None), axis=1).sum()
        exact = hypervolume(np.vstack([front, y]), reference) - hypervolume(front, reference)
        assert gain == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_log_ehvi_against_monte_carlo_and_its_gradient_against_differences(k):
    from hpo.pareto import front_mask
    from hpo.samplers.acquisition import LogEHVI, nondominated_boxes

    rng = np.random.default_rng(10 + k)
    gps, ys = _objective_gps(k, rng)
    front, reference = ys[front_mask(ys)], ys.max(axis=0) + 0.1
    acquisition = LogEHVI(gps, front, reference)
    x = rng.random((4, 3))
    value, gradient = acquisition.with_gradient(x)
    assert np.allclose(value, acquisition(x), atol=1e-7)
    step, numeric = 1e-6, np.zeros_like(gradient)
    for d in range(3):
        e = np.zeros(3)
        e[d] = step
        numeric[:, d] = (acquisition(x + e) - acquisition(x - e)) / (2 * step)
    assert np.allclose(gradient, numeric, rtol=1e-4, atol=1e-6)
    # E[HVI] by sampling the posterior at the point of largest EHVI
    best = x[int(np.argmax(value))][None, :]
    moments = [gp.predict(best) for gp in gps]
    draws = np.column_stack([rng.normal(m[0], np.sqrt(v[0]), 200_000) for m, v in moments])
    lower, upper = nondominated_boxes(front, reference)
    gains = np.prod(np.clip(upper - np.maximum(lower, draws[:, None, :]), 0, None), axis=2)
    expected = gains.sum(axis=1)
    error = 4 * expected.std() / np.sqrt(len(expected))
    assert abs(np.exp(value.max()) - expected.mean()) < max(error, 1e-9)


def test_log_probability_of_feasibility_and_its_gradient():
    from scipy import stats

    from hpo.samplers.acquisition import LogPoF

    rng = np.random.default_rng(4)
    gps, _ = _objective_gps(2, rng)
    pof = LogPoF(gps, [0.3, -0.2])
    x = rng.random((5, 3))
    value, gradient = pof.with_gradient(x)
    expected = sum(
        stats.norm.logcdf((t - m) / np.sqrt(v))
        for (m, v), t in zip([gp.predict(x) for gp in gps], [0.3, -0.2], strict=True)
    )
    assert np.allclose(value, expected)
    step, numeric = 1e-6, np.zeros_like(gradient)
    for d in range(3):
        e = np.zeros(3)
        e[d] = step
        numeric[:, d] = (pof(x + e) - pof(x - e)) / (2 * step)
    assert np.allclose(gradient, numeric, rtol=1e-3, atol=1e-6)


def test_single_objective_gp_with_a_constraint_keeps_to_the_feasible_side():
    def objective(trial: hpo.Trial) -> float:
        x = trial.params["x"]
        trial.set_constraints([0.4 - x])  # feasible for x >= 0.4; the optimum is x = 0.4
        return (x - 0.1) ** 2

    study = hpo.create_study(
        space=[{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
        sampler="gp",
        sampler_options={"n_startup": 5, "n_candidates": 256},
        seed=0,
    )
    study.optimize(objective, n_trials=20)
    assert 0.4 <= study.best_trial.params["x"] < 0.45
    # the model search hugs the boundary (some land a hair on the infeasible side)
    assert all(abs(t.params["x"] - 0.4) < 0.02 for t in study.trials[-8:])


def test_ehvi_reference_point_by_objectives_and_constraints():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        every = rng.standard_normal((60, k))  # standardized losses of every trial
        feasible = every[:40]  # the first 40 are feasible
        front = feasible[hpo.pareto.front_mask(feasible)]
        # no constraints, three objectives: just beyond the front; other trials lie outside
        # no constraints, two: beyond every (feasible) trial
        reference = _ehvi_reference(feasible, front, None)
        if k == 3:
            margin = np.maximum(0.1 * np.ptp(front, axis=0), 0.1)
            assert (front < reference).all()
            assert np.allclose(reference, front.max(axis=0) + margin)
            assert not (feasible < reference).all()
        else:
            assert (feasible < reference).all()
            assert (reference >= feasible.max(axis=0) + 0.1).all()
        # constraints: beyond every trial, the infeasible included, where the feasible
        # regions not found yet may lie
        reference = _ehvi_reference(feasible, front, every)
        assert (every < reference).all()
        assert (reference >= every.max(axis=0) + 0.1).all()
        assert (reference >= _ehvi_reference(feasible, front, None)).all()
    # a front of one point still leaves a box a tenth of a standard deviation deep
    one = np.zeros((1, 3))
    assert np.allclose(_ehvi_reference(np.vstack([one, one + 5]), one, None), 0.1)
