"""The MLP against references: gradients against central finite differences, losses
against their formulas, initial weights against He's and Glorot's scales."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit, log_softmax

from models.losses import LOSSES, binary_cross_entropy, cross_entropy, mse, sigmoid_mse
from models.mlp import MLP, NetworkError

N_CLASSES = 3


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def targets(loss: str, n: int, seed: int = 1) -> np.ndarray:
    """Targets each loss takes: class labels, 0/1 labels, values in [0, 1] or real values
    (n, 2)."""
    r = rng(seed)
    if loss == "cross_entropy":
        return r.integers(0, N_CLASSES, n)
    if loss == "binary_cross_entropy":
        return r.integers(0, 2, n).astype(np.float32)
    if loss == "sigmoid_mse":
        return r.uniform(0, 1, (n, 2)).astype(np.float32)
    return r.standard_normal((n, 2)).astype(np.float32)


def out_size(loss: str) -> int:
    return {"cross_entropy": N_CLASSES, "binary_cross_entropy": 1, "mse": 2, "sigmoid_mse": 2}[loss]


def tiny_net(
    activation: str,
    loss: str = "cross_entropy",
    dropout: float = 0.0,
    seed: int = 0,
    hidden: tuple[int, ...] = (5, 4),
) -> MLP:
    """3 -> 5 -> 4 -> k: two hidden layers, so δ crosses an activation twice."""
    net = MLP(
        [3, *hidden, out_size(loss)], rng(seed), activation=activation, loss=loss, dropout=dropout
    )
    for b in net.biases:  # non-zero biases, so their gradients are not trivially shaped
        b[...] = rng(seed + 100).uniform(-0.3, 0.3, b.shape)
    for s in net.slopes:  # distinct prelu slopes, so a slope mixed up with another shows
        s[...] = rng(seed + 200).uniform(0.05, 0.5, s.shape)
    return net


def inputs(n: int = 6, seed: int = 2) -> np.ndarray:
    return rng(seed).standard_normal((n, 3)).astype(np.float32)


def loss_at(net: MLP, x: np.ndarray, y: np.ndarray, seed: int | None) -> float:
    """The loss at the current parameters, evaluated in float64 from the float32 outputs
    (`seed`: the dropout masks of loss_and_grads(..., rng(seed)))."""
    z = net.forward(x, None if seed is None else rng(seed)).astype(np.float64)
    return LOSSES[net.loss_name](z, y)[0]


def numeric_gradient(
    net: MLP, x: np.ndarray, y: np.ndarray, seed: int | None = None, h: float = 1e-2
) -> np.ndarray:
    """Fourth-order central differences dL/dθ_j, one coordinate of flat_params at a time.

    (-L(θ+2h) + 8 L(θ+h) - 8 L(θ-h) + L(θ-2h)) / 12h: truncation O(h⁴), so h can be
    large enough for float32's rounding of the loss not to matter. A coordinate whose
    stencil moves a relu/prelu pre-activation across 0 (where the loss has a kink) is
    NaN: finite differences say nothing there.
    """
    flat = net.flat_params
    grad = np.zeros(flat.size)
    signs = kink_sides(net, x)
    for j in range(flat.size):
        old = flat[j].copy()
        values, smooth = [], True
        for k in (2, 1, -1, -2):
            flat[j] = old + k * h
            values.append(loss_at(net, x, y, seed))
            smooth = smooth and np.array_equal(kink_sides(net, x), signs)
        flat[j] = old
        grad[j] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
        if not smooth:
            grad[j] = np.nan
    return grad


def kink_sides(net: MLP, x: np.ndarray) -> np.ndarray:
    """Which side of 0 each hidden pre-activation is on (relu and prelu only)."""
    if net.activation not in ("relu", "prelu"):
        return np.empty(0)
    a, sides = x.astype(np.float64), []
    for i, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        z = a @ w + b
        sides.append((z > 0).ravel())
        slope = net.slopes[i] if net.activation == "prelu" else 0.0
        a = np.where(z > 0, z, slope * z)
    return np.concatenate(sides)


def analytic_gradient(net: MLP, x: np.ndarray, y: np.ndarray, seed: int = 7) -> np.ndarray:
    net.loss_and_grads(x, y, rng(seed))
    return net.flat_grads.astype(np.float64)


def assert_gradients_match(analytic: np.ndarray, numeric: np.ndarray) -> None:
    """Equal where finite differences are defined, which is nearly everywhere."""
    smooth = np.isfinite(numeric)
    assert smooth.mean() > 0.9, "too many kinks in the way: change a seed"
    scale = max(1.0, float(np.abs(numeric[smooth]).max()))
    np.testing.assert_allclose(analytic[smooth], numeric[smooth], rtol=1e-2, atol=2e-4 * scale)


# -- gradients against finite differences -------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "prelu", "elu", "sigmoid", "tanh"])
def test_gradient_of_every_hidden_activation_matches_finite_differences(activation):
    net, x = tiny_net(activation), inputs(12)
    y = targets("cross_entropy", len(x))
    numeric = numeric_gradient(net, x, y)
    assert_gradients_match(analytic_gradient(net, x, y), numeric)
    assert np.nanmax(np.abs(numeric)) > 1e-2  # a test that could tell a wrong gradient
    if activation == "prelu":
        slopes = numeric[-sum(s.size for s in net.slopes) :]
        assert np.all(np.abs(slopes) > 1e-3)  # each slope has negative inputs: checked


@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradient_of_every_loss_matches_finite_differences(loss):
    net, x = tiny_net("tanh", loss), inputs()
    y = targets(loss, len(x))
    assert_gradients_match(analytic_gradient(net, x, y), numeric_gradient(net, x, y))


@pytest.mark.parametrize(
    ("activation", "hidden"),
    [
        ("sigmoid", (5, 4)),
        ("tanh", (5, 4)),
        # one hidden layer: dropout comes after the only kinks, which kink_sides then sees
        ("relu", (6,)),
        ("prelu", (6,)),
    ],
)
def test_gradient_with_dropout_matches_finite_differences_of_the_same_masks(activation, hidden):
    net, x = tiny_net(activation, dropout=0.4, seed=3, hidden=hidden), inputs(seed=5)
    y = targets("cross_entropy", len(x))
    numeric = numeric_gradient(net, x, y, seed=11)
    assert_gradients_match(analytic_gradient(net, x, y, seed=11), numeric)
    # the masks matter: the network without dropout has another gradient
    assert not np.allclose(numeric, numeric_gradient(net, x, y), atol=1e-3, equal_nan=True)


def test_the_gradient_check_catches_a_wrong_gradient():
    net, x = tiny_net("tanh"), inputs()
    y = targets("cross_entropy", len(x))
    numeric, analytic = numeric_gradient(net, x, y), analytic_gradient(net, x, y)
    for block in range(len(net.params)):  # one block's sign flipped, each in turn
        start = sum(p.size for p in net.params[:block])
        size = net.params[block].size
        wrong = analytic.copy()
        wrong[start : start + size] *= -1
        with pytest.raises(AssertionError):
            assert_gradients_match(wrong, numeric)
    off_by_one = analytic.copy()
    off_by_one[np.abs(analytic).argmax()] *= 1.05  # a 5% error in a single weight
    with pytest.raises(AssertionError):
        assert_gradients_match(off_by_one, numeric)


# -- losses against their formulas --------------------------------------------------


def test_losses_match_their_formulas():
    z = rng(3).standard_normal((7, N_CLASSES)) * 3  # (n, k) float64
    labels = rng(4).integers(0, N_CLASSES, 7)
    value, grad = cross_entropy(z.copy(), labels)
    log_p = log_softmax(z, axis=1)
    assert value == pytest.approx(-np.mean(log_p[np.arange(7), labels]), rel=1e-12)
    onehot = np.eye(N_CLASSES)[labels]
    np.testing.assert_allclose(grad, (np.exp(log_p) - onehot) / 7, atol=1e-15)

    z1, y1 = z[:, :1], labels % 2  # (n, 1) logits, (n,) 0/1 labels
    p = expit(z1[:, 0])
    value, grad = binary_cross_entropy(z1.copy(), y1)
    assert value == pytest.approx(-np.mean(y1 * np.log(p) + (1 - y1) * np.log(1 - p)))
    np.testing.assert_allclose(grad[:, 0], (p - y1) / 7, atol=1e-12)

    y2 = rng(5).standard_normal((7, N_CLASSES))
    value, grad = mse(z.copy(), y2)
    assert value == pytest.approx(0.5 * np.sum((z - y2) ** 2) / 7)
    np.testing.assert_allclose(grad, (z - y2) / 7)

    y3 = rng(6).uniform(0, 1, (7, N_CLASSES))  # targets scaled into [0, 1]
    s = expit(z)
    value, grad = sigmoid_mse(z.copy(), y3)
    assert value == pytest.approx(0.5 * np.sum((s - y3) ** 2) / 7)
    np.testing.assert_allclose(grad, (s - y3) * s * (1 - s) / 7, atol=1e-15)


def test_losses_are_stable_for_huge_logits():
    z = np.array([[1e4, 0, -1e4], [0, 1e4, 0], [-1e4, -1e4, -1e4]], dtype=np.float32)
    labels = np.array([0, 0, 2])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        value, grad = cross_entropy(z.copy(), labels)
        # per sample: 0, 1e4, log 3
        assert value == pytest.approx((1e4 + np.log(3)) / 3, rel=1e-6)
        np.testing.assert_allclose(
            grad * 3, [[0, 0, 0], [-1, 1, 0], [1 / 3, 1 / 3, -2 / 3]], atol=1e-6
        )
        logits = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=np.float32)
        value, grad = binary_cross_entropy(logits.copy(), np.array([1.0, 0.0, 0.0, 1.0]))
        assert value == pytest.approx(1e4 / 2)  # two right at no cost, two wrong by 1e4
        np.testing.assert_allclose(grad[:, 0] * 4, [0, 0, 1, -1], atol=1e-6)


def test_network_predictions_are_stable_for_huge_logits():
    net = MLP([3, 4, N_CLASSES], rng(), activation="sigmoid")
    net.weights[-1][...] *= 1e4  # logits of order 1e4
    x, y = inputs(), targets("cross_entropy", 6)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        assert np.abs(net.forward(x)).max() > 1e3
        p = net.predict(x)
        loss = net.loss(x, y)
        net.loss_and_grads(x, y, rng())
    assert np.all(np.isfinite(p)) and np.isfinite(loss)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert np.all(np.isfinite(net.flat_grads))


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "mse", "sigmoid_mse"])
def test_float64_targets_give_float32_gradients(loss):
    net, x = tiny_net("tanh", loss), inputs()
    y = targets(loss, len(x)).astype(np.float64)  # e.g. targets standardized in float64
    value, grads = net.loss_and_grads(x, y, rng())
    assert np.isfinite(value)
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(
        net.flat_grads, analytic_gradient(net, x, y.astype(np.float32)), rtol=1e-5
    )


# -- dropout ------------------------------------------------------------------------


def test_dropout_is_inverted_so_the_expected_output_is_the_evaluation_output():
    net = MLP([4, 30, 2], rng(), activation="relu", loss="mse", dropout=0.5)
    x = np.repeat(inputs(1, seed=3)[:, [0, 1, 2, 0]], 20_000, axis=0)  # one input, many masks
    evaluation = net.forward(x[:1]).copy()  # (1, 2)
    training = net.forward(x, rng(9)).copy()  # (20000, 2)
    assert training.std(axis=0).min() > 0.05  # masks differ from row to row
    standard_error = training.std(axis=0) / np.sqrt(len(x))
    assert np.all(np.abs(training.mean(axis=0) - evaluation[0]) < 5 * standard_error)
    # without the 1 / (1 - p) scaling the mean would be half the bias-free output
    halfway = 0.5 * (evaluation[0] - net.biases[-1]) + net.biases[-1]
    assert np.all(np.abs(training.mean(axis=0) - halfway) > 10 * standard_error)


def test_dropout_is_off_in_evaluation_and_forward_without_rng_is_deterministic():
    with_dropout = MLP([3, 20, N_CLASSES], rng(), dropout=0.5)
    without = MLP([3, 20, N_CLASSES], rng(), dropout=0.0)  # same seed: same weights
    np.testing.assert_array_equal(with_dropout.flat_params, without.flat_params)
    x, y = inputs(), targets("cross_entropy", 6)
    first = with_dropout.forward(x).copy()
    np.testing.assert_array_equal(with_dropout.forward(x), first)
    np.testing.assert_array_equal(without.forward(x), first)
    np.testing.assert_array_equal(with_dropout.predict(x), without.predict(x))
    assert with_dropout.loss(x, y) == without.loss(x, y)
    assert not np.allclose(with_dropout.forward(x, rng(1)), first)  # training does drop


def test_dropout_drops_about_p_of_the_units():
    net = MLP([3, 200, 1], rng(), activation="sigmoid", loss="mse", dropout=0.3)
    net.weights[-1][...] = 1.0  # the output sums the hidden units, each in (0, 1)
    x = inputs(50)
    dropped = []
    for seed in range(20):
        training = net.forward(x, rng(seed)).copy()[:, 0]
        evaluation = net.forward(x).copy()[:, 0]
        dropped.append(1 - training * (1 - 0.3) / evaluation)  # ≈ fraction dropped
    assert np.mean(dropped) == pytest.approx(0.3, abs=0.01)


def test_gradients_flow_only_through_kept_units():
    net = MLP([3, 40, 2], rng(), activation="sigmoid", loss="mse", dropout=0.5)
    x, y = inputs(1), targets("mse", 1)  # one sample: a unit is kept or not
    net.loss_and_grads(x, y, rng(4))
    w1, b1, w2, _ = net.grads
    dropped_units = np.flatnonzero(np.all(w2 == 0, axis=1))
    kept_units = np.setdiff1d(np.arange(40), dropped_units)
    assert 10 < len(dropped_units) < 30  # about half
    assert np.all(w1[:, dropped_units] == 0) and np.all(b1[dropped_units] == 0)
    assert np.all(w1[:, kept_units] != 0) and np.all(b1[kept_units] != 0)
    assert np.all(w2[kept_units] != 0)


# -- initialization -----------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "prelu", "elu"])
def test_he_initialization_for_relu_like_units(activation):
    net = MLP([500, 400, 10], rng(), activation=activation)
    for w in net.weights:
        fan_in = w.shape[0]
        assert w.var() == pytest.approx(2 / fan_in, rel=0.03)
        assert abs(w.mean()) < 0.02 * np.sqrt(2 / fan_in) + 1e-3
    w = net.weights[0]  # normal, not uniform: 68% within one standard deviation
    assert np.mean(np.abs(w) < np.sqrt(2 / 500)) == pytest.approx(0.683, abs=0.01)
    assert all(np.all(b == 0) for b in net.biases)
    assert all(np.all(s == 0.25) for s in net.slopes)
    assert len(net.slopes) == (1 if activation == "prelu" else 0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_glorot_initialization_for_saturating_units(activation):
    net = MLP([500, 400, 10], rng(), activation=activation)
    for w in net.weights:
        limit = np.sqrt(6 / (w.shape[0] + w.shape[1]))
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.99 * limit
        assert w.var() == pytest.approx(limit**2 / 3, rel=0.03)  # uniform's variance
    w = net.weights[0]
    limit = np.sqrt(6 / 900)
    assert np.mean(np.abs(w) < limit / 2) == pytest.approx(0.5, abs=0.01)


def test_explicit_init_overrides_the_default():
    glorot_relu = MLP([500, 400, 10], rng(), activation="relu", init="glorot")
    assert np.abs(glorot_relu.weights[0]).max() <= np.sqrt(6 / 900)
    he_tanh = MLP([500, 400, 10], rng(), activation="tanh", init="he")
    assert he_tanh.weights[0].var() == pytest.approx(2 / 500, rel=0.03)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (MLP([5, 7, 3], rng(s)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)


# -- predictions, shapes, dtypes ----------------------------------------------------


@pytest.mark.parametrize("loss", list(LOSSES))
def test_predict_shapes_and_values(loss):
    net, x = tiny_net("elu", loss), inputs(10)
    p = net.predict(x)
    assert p.shape == (10, out_size(loss)) and p.dtype == np.float32
    z = net.forward(x).astype(np.float64)
    if loss == "cross_entropy":
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
        np.testing.assert_allclose(p, np.exp(log_softmax(z, axis=1)), rtol=1e-5)
    elif loss in ("binary_cross_entropy", "sigmoid_mse"):
        np.testing.assert_allclose(p, expit(z), rtol=1e-5)
    else:
        np.testing.assert_allclose(p, z, rtol=1e-6)
    # in batches: the same answer
    np.testing.assert_allclose(net.predict(x, batch_size=3), p, rtol=1e-6)
    y = targets(loss, 10)
    assert net.loss(x, y, batch_size=3) == pytest.approx(net.loss(x, y), rel=1e-5)


def test_loss_is_the_mean_loss_of_the_outputs():
    net, x = tiny_net("sigmoid"), inputs(9)
    y = targets("cross_entropy", 9)
    p = net.predict(x).astype(np.float64)
    assert net.loss(x, y) == pytest.approx(-np.mean(np.log(p[np.arange(9), y])), rel=1e-5)


@pytest.mark.parametrize("activation", ["relu", "prelu", "elu", "sigmoid", "tanh"])
def test_everything_is_float32(activation):
    net, x = tiny_net(activation, dropout=0.2), inputs()
    y = targets("cross_entropy", 6)
    assert net.flat_params.dtype == np.float32 and net.flat_grads.dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.params)
    assert net.forward(x).dtype == np.float32
    assert net.forward(x, rng()).dtype == np.float32
    _, grads = net.loss_and_grads(x, y, rng())
    assert all(g.dtype == np.float32 for g in grads)
    assert net.predict(x).dtype == np.float32


# -- parameters as views, state ------------------------------------------------------


def test_params_and_grads_are_views_of_the_flat_arrays():
    net = tiny_net("prelu")
    shapes = [(3, 5), (5,), (5, 4), (4,), (4, N_CLASSES), (N_CLASSES,), (5,), (4,)]
    assert [p.shape for p in net.params] == shapes
    assert net.n_params == sum(int(np.prod(s)) for s in shapes)
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in net.params]), net.flat_params)
    net.weights[1][2, 3] = 42.0  # writing a layer's array writes the flat one
    assert 42.0 in net.flat_params
    net.flat_params[-1] = -7.0  # and the other way: the last entry is the last slope
    assert net.slopes[-1][-1] == -7.0
    assert all(np.shares_memory(p, net.flat_params) for p in net.params)
    x, y = inputs(), targets("cross_entropy", 6)
    _, grads = net.loss_and_grads(x, y, rng())
    assert all(np.shares_memory(g, net.flat_grads) for g in grads)
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in grads]), net.flat_grads)
    net.grads[0][...] = 0  # the list returned is the network's own views
    assert np.all(net.flat_grads[:15] == 0)


def test_state_and_restore_round_trip():
    net, x = tiny_net("tanh"), inputs()
    before, outputs = net.state(), net.forward(x).copy()
    assert not np.shares_memory(before, net.flat_params)  # a copy
    net.flat_params[...] += 1.0
    assert not np.allclose(net.forward(x), outputs)
    assert not np.array_equal(before, net.flat_params)  # the copy kept the old values
    weights = net.weights[0]
    net.restore(before)
    assert net.weights[0] is weights  # restored in place: the views stay valid
    np.testing.assert_array_equal(net.flat_params, before)
    np.testing.assert_array_equal(net.forward(x), outputs)


# -- bad settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sizes": [3]}, "needs an input and an output size"),
        ({"sizes": []}, "needs an input and an output size"),
        ({"sizes": [3, 0, 2]}, "positive integers"),
        ({"sizes": [3, -4, 2]}, "positive integers"),
        ({"sizes": [3, 2.5, 2]}, "positive integers"),
        ({"sizes": [3, True, 2]}, "positive integers"),
        ({"activation": "softmax"}, "unknown activation 'softmax'.*relu, prelu, elu"),
        ({"activation": "identity"}, "unknown activation"),
        ({"loss": "hinge"}, "unknown loss 'hinge'.*cross_entropy"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"dropout": float("nan")}, r"dropout must be in \[0, 1\)"),
        ({"init": "xavier"}, "unknown initialization 'xavier'"),
    ],
)
def test_bad_settings_raise_network_error(options, message):
    settings = {"sizes": [3, 4, 2], **options}
    with pytest.raises(NetworkError, match=message):
        MLP(settings.pop("sizes"), rng(), **settings)


def test_network_error_is_a_value_error():
    assert issubclass(NetworkError, ValueError)
    MLP([3, np.int64(4), 2], rng())  # NumPy integers are sizes too
