"""The self-organizing map against its stated guarantees, on generated shapes."""

from __future__ import annotations

import numpy as np
import pytest

from models import sofm, sofm_data
from models.sofm import SOFM, Decay, InverseTime, SOFMError, StepDown
from models.training import EarlyStopping


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def neighbour_sets(topology: str, rows: int, cols: int) -> dict[int, set[int]]:
    adjacent = sofm.grid_neighbours(sofm.TOPOLOGIES[topology](rows, cols))
    return {i: set(np.flatnonzero(row).tolist()) for i, row in enumerate(adjacent)}


# -- grids -------------------------------------------------------------------------


def test_rect_neighbours_are_4_connected():
    n = neighbour_sets("rect", 3, 3)  # 0 1 2 / 3 4 5 / 6 7 8
    assert n[4] == {1, 3, 5, 7}
    assert n[0] == {1, 3}
    assert n[1] == {0, 2, 4}
    assert sum(map(len, n.values())) == 2 * 12  # 12 edges in a 3 x 3 lattice


def test_hex_neighbours_are_6_with_odd_rows_shifted_right():
    n = neighbour_sets("hex", 4, 3)  # rows 1 and 3 shifted right by 1/2
    assert n[4] == {3, 5, 1, 2, 7, 8}  # (row 1, col 1): odd row, looks up/down to cols 1, 2
    assert n[7] == {6, 8, 3, 4, 9, 10}  # (row 2, col 1): even row, cols 0, 1
    assert n[0] == {1, 3}
    positions = sofm.hex_positions(4, 3)
    d = np.sqrt(sofm.grid_sq_distances(positions))
    adjacent = sofm.grid_neighbours(positions)
    np.testing.assert_allclose(d[adjacent], 1.0)  # unit distance between neighbours
    assert d[~adjacent & ~np.eye(12, dtype=bool)].min() == pytest.approx(np.sqrt(3.0))


def test_one_dimensional_grids_are_lines_in_either_topology():
    for rows, cols in ((1, 5), (5, 1)):
        np.testing.assert_array_equal(
            sofm.hex_positions(rows, cols), sofm.rect_positions(rows, cols)
        )
        n = neighbour_sets("hex", rows, cols)
        assert n[0] == {1}
        assert n[2] == {1, 3}


# -- matching ----------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_match_agrees_with_brute_force_in_any_chunking(monkeypatch, distance):
    x, w = rng().standard_normal((200, 5)), rng(1).standard_normal((12, 5))
    if distance == "euclidean":
        table = np.linalg.norm(x[:, None] - w[None], axis=2)  # (n, m)
    else:
        table = 1.0 - (x @ w.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(w, axis=1))
    order = np.argsort(table, axis=1)
    monkeypatch.setattr(sofm, "CHUNK_ELEMENTS", 7 * 12)  # chunks of 7 samples
    units, dist = sofm.match(x, w, distance)
    np.testing.assert_array_equal(units, order[:, :2])
    np.testing.assert_allclose(dist, table[np.arange(200), order[:, 0]], atol=1e-12)


# -- training ----------------------------------------------------------------------


def test_batch_and_online_steps_match_the_per_sample_formulas():
    x, w = rng().standard_normal((30, 3)), rng(1).standard_normal((6, 3))
    bmu = rng(2).integers(0, 6, size=30)
    h = sofm.gaussian(sofm.grid_sq_distances(sofm.rect_positions(2, 3)), 1.2)  # (m, m)
    weight = h[bmu]  # (n, m) h_{c(x) i}
    means = np.array([(weight[:, i, None] * x).sum(0) / weight[:, i].sum() for i in range(6)])
    np.testing.assert_allclose(sofm.batch_step(x, w, bmu, h, 1.0), means)
    np.testing.assert_allclose(sofm.batch_step(x, w, bmu, h, 0.3), w + 0.3 * (means - w))
    one = sofm.online_step(x[:1], w, bmu[:1], h, 0.3)
    np.testing.assert_allclose(one, w + 0.3 * h[bmu[0]][:, None] * (x[0] - w))


def test_units_no_sample_reaches_keep_their_weights():
    w = np.array([[0.0], [1.0], [5.0]])
    h = sofm.bubble(sofm.grid_sq_distances(sofm.rect_positions(1, 3)), 0.5)  # only itself
    out = sofm.batch_step(np.array([[0.2], [0.4]]), w, np.array([0, 0]), h, 1.0)
    np.testing.assert_allclose(out, [[0.3], [1.0], [5.0]])


@pytest.mark.parametrize("batch_size", [None, 25])
def test_quantization_error_decreases(batch_size):
    x = sofm_data.square(400, rng())
    som = SOFM(6, 6, init="random")
    step = Decay(1.0 if batch_size is None else 0.5, 0.05, 15)
    history = som.fit(x, 15, rng(1), step=step, batch_size=batch_size)
    qe = history.column("train_qe")
    assert len(qe) == 15
    assert history.stopped is None
    assert qe[-1] < 0.5 * qe[0]
    assert np.mean(np.diff(qe) < 0) > 0.8  # nearly monotone
    assert som.quantization_error(x) == pytest.approx(qe[-1])


@pytest.mark.parametrize("init", ["random", "sample", "pca"])
def test_one_dimensional_map_orders_a_line(init):
    x = sofm_data.line(300, rng())
    som = SOFM(1, 12, init=init)
    som.fit(x, 20, rng(2))
    along = som.weights @ np.array([1.0, 0.5])  # (m,) position along the line
    steps = np.diff(along)
    assert np.all(steps > 0) or np.all(steps < 0)
    assert along.min() < 0.15 and along.max() > 1.0  # spread over the whole line


def test_one_dimensional_map_orders_a_curve():
    x = sofm_data.curve(300, rng())
    som = SOFM(10, 1, topology="hex", init="random")
    som.fit(x, 20, rng(3))
    steps = np.diff(som.weights[:, 0])
    assert np.all(steps > 0) or np.all(steps < 0)


@pytest.mark.parametrize("topology", ["rect", "hex"])
@pytest.mark.parametrize("neighbourhood", ["gaussian", "bubble"])
def test_topographic_error_is_low_on_a_square(topology, neighbourhood):
    x = sofm_data.square(500, rng())
    som = SOFM(7, 7, topology=topology, neighbourhood=neighbourhood, init="random")
    bubble = neighbourhood == "bubble"
    history = som.fit(x, 20, rng(1), radius=Decay(3.5, 1.5 if bubble else 1.0, 20))
    # over 30 seeds: gaussian at most 0.036; bubble at most 0.16 (it leaves some twists)
    assert som.topographic_error(x) < (0.25 if bubble else 0.05)
    assert history.records[-1].topographic_error == som.topographic_error(x)
    assert som.quantization_error(x) < 0.1  # 49 units: cells about 1/7 wide


def test_topographic_error_counts_non_neighbours():
    som = SOFM(1, 3)
    som.weights = np.array([[0.0], [1.0], [2.0]])
    assert som.topographic_error(np.array([[0.4], [1.6]])) == 0.0  # BMUs (0, 1), (2, 1)
    som.weights = np.array([[0.0], [2.0], [1.0]])
    assert som.topographic_error(np.array([[0.4], [1.6], [1.9]])) == pytest.approx(1 / 3)


def test_cosine_distance_maps_directions():
    angle = rng().uniform(0.0, np.pi / 2, size=300)  # (n,)
    scale = rng(1).uniform(0.5, 5.0, size=300)  # lengths the map must ignore
    x = scale[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    som = SOFM(1, 8, distance="cosine", init="random")
    history = som.fit(x, 20, rng(2))
    angles = np.arctan2(som.weights[:, 1], som.weights[:, 0])
    assert np.all(np.diff(angles) > 0) or np.all(np.diff(angles) < 0)
    assert history.records[-1].train_qe < 0.01  # 1 - cos of about 6 degrees: 0.005
    assert som.quantization_error(3.0 * x) == pytest.approx(som.quantization_error(x))
    np.testing.assert_array_equal(som.bmu(7.0 * x), som.bmu(x))
    assert (
        som.bmu(x).tolist()
        == np.argmax(sofm.unit_rows(x) @ sofm.unit_rows(som.weights).T, axis=1).tolist()
    )


# -- initializations ---------------------------------------------------------------


def test_random_and_sample_inits():
    x = sofm_data.blobs(100, rng(), d=3)
    positions = sofm.rect_positions(4, 5)
    w = sofm.init_random(x, positions, rng(1))
    assert w.shape == (20, 3)
    assert np.all(w >= x.min(axis=0)) and np.all(w <= x.max(axis=0))
    w = sofm.init_sample(x, positions, rng(1))
    assert len({tuple(row) for row in w}) == 20
    assert all(any(np.array_equal(row, sample) for sample in x) for row in w)


def correlated(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) Gaussian with standard deviations 3, 1, 0.1 along a rotated basis."""
    basis = np.linalg.qr(rng(seed + 1).standard_normal((3, 3)))[0]
    return 5.0 + (rng(seed).standard_normal((n, 3)) * [3.0, 1.0, 0.1]) @ basis.T


def test_pca_init_lies_along_the_first_component_for_a_1d_grid():
    x = correlated(2000)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0))
    w = sofm.init_pca(x, sofm.rect_positions(9, 1), rng())
    offsets = w - x.mean(axis=0)  # (m, d)
    along = offsets @ vt[0]  # (m,)
    np.testing.assert_allclose(offsets, np.outer(along, vt[0]), atol=1e-9)
    np.testing.assert_allclose(np.abs(along).max(), np.std(x @ vt[0], ddof=1), rtol=1e-9)
    assert np.all(np.diff(along) > 0) or np.all(np.diff(along) < 0)


def test_pca_init_spans_the_first_two_components_longer_axis_first():
    x = correlated(2000)
    _, s, vt = np.linalg.svd(x - x.mean(axis=0))
    w = sofm.init_pca(x, sofm.hex_positions(3, 6), rng())
    offsets = w - x.mean(axis=0)
    assert np.abs(offsets @ vt[2]).max() < 1e-9  # nothing along the third
    grid = sofm.hex_positions(3, 6)
    first, second = offsets @ vt[0], offsets @ vt[1]
    assert abs(np.corrcoef(first, grid[:, 0])[0, 1]) > 0.99  # 6 columns: the first component
    assert abs(np.corrcoef(second, grid[:, 1])[0, 1]) > 0.99
    assert np.ptp(first) / np.ptp(second) == pytest.approx(s[0] / s[1], rel=1e-6)


def test_randomized_principal_axes_match_the_svd():
    scale = np.concatenate([[5.0, 3.0], np.linspace(1.0, 0.1, 58)])  # a gap after two
    x = rng().standard_normal((400, 60)) * scale  # (n, d)
    xc = x - x.mean(axis=0)
    s, vt = sofm.principal_axes(xc, 2, rng(1))
    _, s0, vt0 = np.linalg.svd(xc, full_matrices=False)
    np.testing.assert_allclose(s, s0[:2], rtol=1e-3)
    np.testing.assert_allclose(np.abs(np.sum(vt * vt0[:2], axis=1)), 1.0, atol=1e-3)


# -- early stopping, callback, determinism ------------------------------------------


def test_early_stopping_restores_the_best_weights():
    x = sofm_data.square(400, rng())
    valid = 0.5 + 0.02 * rng(1).standard_normal((50, 2))  # the centre: best while contracted
    snapshots = []
    som = SOFM(6, 6)
    history = som.fit(
        x,
        30,
        rng(2),
        valid=valid,
        early_stopping=EarlyStopping(patience=3),
        callback=lambda epoch, record: snapshots.append(som.weights),
    )
    valid_qe = history.column("valid_qe")
    assert history.stopped == "early stopping"
    assert len(history.records) == history.best_epoch + 4 < 30
    assert valid_qe[history.best_epoch] == valid_qe.min()
    np.testing.assert_array_equal(som.weights, snapshots[history.best_epoch])
    assert not np.array_equal(som.weights, snapshots[-1])
    assert som.quantization_error(valid) == pytest.approx(valid_qe.min())


def test_min_delta_counts_small_gains_as_no_improvement():
    x = sofm_data.square(300, rng())
    stopping = EarlyStopping(patience=2, min_delta=1.0)  # no gain is that big
    history = SOFM(5, 5).fit(x, 30, rng(1), early_stopping=stopping)
    assert history.best_epoch == 0
    assert len(history.records) == 3
    assert np.isnan(history.column("valid_qe")).all()


def test_callback_sees_every_epoch_and_can_stop_training():
    x = sofm_data.ring(300, rng())
    seen = []

    def callback(epoch: int, record: sofm.EpochRecord) -> bool:
        seen.append((epoch, record.epoch, record.seconds >= 0.0))
        return epoch == 2

    history = SOFM(4, 4, topology="hex").fit(x, 10, rng(1), callback=callback)
    assert seen == [(0, 0, True), (1, 1, True), (2, 2, True)]
    assert history.stopped == "callback"
    assert len(history.records) == 3


def test_schedules_go_from_start_to_end():
    for name, decay in sofm.DECAYS.items():
        assert decay(5.0, 0.5, 0.0) == pytest.approx(5.0), name
        assert decay(5.0, 0.5, 1.0) == pytest.approx(0.5), name
        assert decay(5.0, 0.5, 0.2) > decay(5.0, 0.5, 0.6), name
    history = SOFM(4, 4).fit(
        sofm_data.square(100, rng()),
        5,
        rng(1),
        step=Decay(0.8, 0.2, 5, "exponential"),
        radius=Decay(3.0, 1.0, 5, "exponential"),
    )
    np.testing.assert_allclose(history.column("radius"), 3.0 * (1 / 3) ** np.linspace(0, 1, 5))
    np.testing.assert_allclose(history.column("step"), [0.8, 0.8 / 2**0.5, 0.4, 0.4 / 2**0.5, 0.2])


@pytest.mark.parametrize(("init", "batch_size"), [("random", None), ("sample", None), ("pca", 16)])
def test_training_is_deterministic_by_seed(init, batch_size):
    x = sofm_data.blobs(200, rng(), d=4)

    def train(seed: int) -> tuple[np.ndarray, np.ndarray]:
        som = SOFM(3, 4, init=init)
        history = som.fit(x, 5, rng(seed), step=0.5, batch_size=batch_size)
        return som.weights, history.column("train_qe")

    (w1, qe1), (w2, qe2), (w3, _) = train(7), train(7), train(8)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(qe1, qe2)
    assert not np.array_equal(w1, w3)


# -- schedules, given weights, resumed training ---------------------------------------


def test_schedules_are_functions_of_the_maps_epoch():
    step = InverseTime(0.05, 10)  # NeuPy's reduce_step_after=10
    assert [step(e) for e in (0, 10, 30)] == pytest.approx([0.05, 0.025, 0.0125])
    radius = StepDown(10, 1)  # NeuPy's learning_radius=10, reduce_radius_after=1
    assert [radius(e) for e in (0, 3, 9, 10, 15)] == [10, 7, 1, 0, 0]
    assert [StepDown(6, 5)(e) for e in (0, 4, 5, 29, 40)] == [6, 6, 5, 1, 0]
    late = Decay(3.0, 1.0, 5, first=10)  # a decay over epochs 10-14 of a resumed map
    assert [late(e) for e in (0, 10, 12, 14, 20)] == pytest.approx([3.0, 3.0, 2.0, 1.0, 1.0])
    for bad in (
        lambda: Decay(0.0, 1.0, 5),
        lambda: Decay(1.0, 1.0, 0),
        lambda: Decay(2.0, 1.0, 5, "cosine"),
        lambda: InverseTime(0.1, 0),
        lambda: StepDown(3.0, 0),
        lambda: StepDown(3.0, 1, floor=4.0),
    ):
        with pytest.raises(SOFMError):
            bad()


def test_radius_zero_moves_the_bmu_alone():
    d2 = sofm.grid_sq_distances(sofm.rect_positions(2, 3))
    for name, neighbourhood in sofm.NEIGHBOURHOODS.items():
        np.testing.assert_array_equal(neighbourhood(d2, 0.0), np.eye(6), err_msg=name)


def test_fit_starts_from_the_given_weights():
    x = sofm_data.square(60, rng())
    init = rng(1).uniform(0, 1, (6, 2))
    given = init.copy()
    som = SOFM(2, 3, neighbourhood="bubble", init=init)
    som.fit(x, 1, rng(2), step=0.5, radius=1.0)
    bmu = sofm.match(x, given, "euclidean")[0][:, 0]
    h = sofm.bubble(sofm.grid_sq_distances(som.positions), 1.0)
    np.testing.assert_allclose(som.weights, sofm.batch_step(x, given, bmu, h, 0.5))
    np.testing.assert_array_equal(init, given)  # the caller's array is left alone
    with pytest.raises(SOFMError, match=r"must be an \(6, d\) array"):
        SOFM(2, 3, init=given[:5])
    with pytest.raises(SOFMError, match="initial weights 2"):
        SOFM(2, 3, init=given).fit(np.zeros((10, 3)), 1, rng())


def neupy_like(init: np.ndarray) -> SOFM:
    return SOFM(2, len(init) // 2, neighbourhood="bubble", init=init)


def test_resumed_training_goes_on_with_the_weights_and_the_schedules():
    """Trained one epoch at a time (the article's loop of `train(data, epochs=1)`), a map
    follows its schedules as one trained in one call: the same weights, steps and radii."""
    x = sofm_data.curve(80, rng())
    init = np.vstack([sofm_data.line(10, rng(1))] * 2)  # (20, 2): a 2 x 10 grid
    schedules = {"step": InverseTime(0.3, 2), "radius": StepDown(3, 1), "batch_size": 1}
    whole, stepwise = neupy_like(init), neupy_like(init)
    history = whole.fit(x, 6, rng(3), **schedules)
    generator, records = rng(3), []
    for _ in range(6):
        records += stepwise.fit(x, 1, generator, resume=True, **schedules).records
    np.testing.assert_array_equal(stepwise.weights, whole.weights)
    assert [r.epoch for r in records] == [r.epoch for r in history.records] == list(range(6))
    assert [r.radius for r in records] == [3, 2, 1, 0, 0, 0]
    assert [r.step for r in records] == pytest.approx([0.3 / (1 + e / 2) for e in range(6)])
    assert stepwise.epochs_trained == 6
    trained = stepwise.weights.copy()
    for data, refused in ((np.zeros((5, 3)), {}), (x, {"step": 1.5}), (x, {"radius": -1.0})):
        for resume in (True, False):
            with pytest.raises(SOFMError):
                stepwise.fit(data, 1, rng(), resume=resume, **refused)
    np.testing.assert_array_equal(stepwise.weights, trained)  # refused before any change
    assert stepwise.epochs_trained == 6
    stepwise.fit(x, 1, rng(3), **schedules)  # without resume: from the start again
    assert stepwise.epochs_trained == 1


# The text-style article ("Create unique text-style with SOFM", NeuPy, 2017) on a small
# scale: a 5x7 pixel font instead of matplotlib's, 432 points instead of 20,000.
GLYPHS = {
    "H": ["X...X", "X...X", "X...X", "XXXXX", "X...X", "X...X", "X...X"],
    "P": ["XXXX.", "X...X", "X...X", "XXXX.", "X....", "X....", "X...."],
    "O": [".XXX.", "X...X", "X...X", "X...X", "X...X", "X...X", ".XXX."],
}


def text_points(word: str, scale: int = 3) -> np.ndarray:
    """(n, 2) pixel coordinates (x right, y up) of `word` in GLYPHS, each pixel scale²."""
    points = []
    for k, letter in enumerate(word):
        for row, line in enumerate(GLYPHS[letter]):
            for col in (c for c, v in enumerate(line) if v == "X"):
                x0, y0 = (6 * k + col) * scale, (6 - row) * scale
                points += [(x0 + j, y0 + i) for i in range(scale) for j in range(scale)]
    return np.array(points, dtype=float)


def test_the_text_style_example_covers_the_text_with_a_string_of_units():
    x = text_points("HPO")  # (432, 2), 50 x 20 pixels
    init = sofm_data.sine_wave(2, 100, x.min(axis=0), x.max(axis=0), turns=6)  # the article's
    som = neupy_like(init)
    generator, schedules = rng(0), {"step": InverseTime(0.05, 10), "radius": StepDown(10, 1)}
    for _ in range(30):  # the article: 30 calls of one epoch each, one sample a step
        som.fit(x, 1, generator, batch_size=1, resume=True, **schedules)
    to_units = sofm.euclidean(x, som.weights).min(axis=1)  # (n,) pixel -> nearest unit
    to_text = sofm.euclidean(som.weights, x).min(axis=1)  # (m,) unit -> nearest pixel
    before = sofm.euclidean(x, init).min(axis=1)
    assert to_units.max() < 2.0 < before.max() / 2  # every pixel has a unit beside it
    assert to_units.mean() < 0.75 < before.mean() / 2
    assert np.percentile(to_text, 95) < 2.0  # and the units lie on the text
    for row in (som.weights[:100], som.weights[100:]):  # each row stays one string
        links = np.linalg.norm(np.diff(row, axis=0), axis=1)  # (99,)
        assert np.median(links) < 2.0 and links.max() < 6.0


# -- bad parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: SOFM(0, 3),
        lambda: SOFM(3, -1),
        lambda: SOFM(2.5, 3),
        lambda: SOFM(True, 3),
        lambda: SOFM(3, 3, topology="triangle"),
        lambda: SOFM(3, 3, neighbourhood="mexican hat"),
        lambda: SOFM(3, 3, distance="manhattan"),
        lambda: SOFM(3, 3, init="zeros"),
    ],
)
def test_bad_maps_raise(build):
    with pytest.raises(SOFMError):
        build()


@pytest.mark.parametrize(
    "options",
    [
        {"epochs": 0},
        {"epochs": 2.0},
        {"step": 0.0},
        {"step": 1.5},
        {"step": InverseTime(2.0, 10)},  # above 1 for epochs 0 to 9
        {"radius": -1.0},
        {"radius": np.inf},
        {"radius": lambda epoch: 3.0 - epoch},  # negative at epoch 4
        {"batch_size": 0},
        {"valid": np.zeros((5, 3))},
        {"x": np.zeros(10)},
        {"x": np.zeros((0, 2))},
        {"x": np.array([[0.0, np.nan]])},
    ],
)
def test_bad_training_settings_raise(options):
    settings = {"x": sofm_data.square(20, rng()), "epochs": 5} | options
    x, epochs = settings.pop("x"), settings.pop("epochs")
    with pytest.raises(SOFMError):
        SOFM(3, 3).fit(x, epochs, rng(), **settings)


def test_unfitted_map_and_wrong_width_raise():
    som = SOFM(2, 2)
    with pytest.raises(SOFMError, match="call fit first"):
        som.bmu(np.zeros((3, 2)))
    som.fit(sofm_data.square(20, rng()), 2, rng())
    with pytest.raises(SOFMError, match="features"):
        som.quantization_error(np.zeros((3, 5)))
    assert issubclass(SOFMError, ValueError)


# -- data helpers -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(sofm_data.SHAPES))
def test_shapes_are_seeded(name):
    make = sofm_data.SHAPES[name]
    a, b, c = make(50, rng(3)), make(50, rng(3)), make(50, rng(4))
    assert a.shape == (50, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ring_and_square_stay_in_their_bounds():
    r = np.linalg.norm(sofm_data.ring(500, rng(), inner=0.6), axis=1)
    assert r.min() >= 0.6 and r.max() <= 1.0
    s = sofm_data.square(500, rng())
    assert s.min() >= 0.0 and s.max() <= 1.0


def test_sine_wave_lays_every_grid_row_along_one_wave_in_the_box():
    w = sofm_data.sine_wave(2, 50, np.array([10.0, 0.0]), np.array([60.0, 20.0]), turns=3)
    assert w.shape == (100, 2)
    np.testing.assert_array_equal(w[:50], w[50:])  # both rows alike, as in the article
    np.testing.assert_allclose(w[:50, 0], np.linspace(10, 60, 50))
    assert w[:, 1].min() == pytest.approx(0.0, abs=0.1) and w[:, 1].max() <= 20.0
    assert np.sum(np.diff(np.sign(w[:50, 1] - 10.0)) != 0) == 6  # three periods


def test_split_and_subsample_are_seeded_partitions():
    x = np.arange(40.0).reshape(20, 2)
    train, valid = sofm_data.split(x, 0.25, rng(1))
    assert (len(train), len(valid)) == (15, 5)
    rows = sorted(map(tuple, np.vstack([train, valid]).tolist()))
    assert rows == sorted(map(tuple, x.tolist()))
    np.testing.assert_array_equal(sofm_data.split(x, 0.25, rng(1))[1], valid)
    assert len(sofm_data.split(x[:2], 0.01, rng())[1]) == 1  # never empty
    sample = sofm_data.subsample(x, 6, rng(2))
    assert len({tuple(row) for row in sample.tolist()}) == 6
    assert len(sofm_data.subsample(x, 100, rng(2))) == 20
    for bad in (
        lambda: sofm_data.split(x, 1.0, rng()),
        lambda: sofm_data.split(x[:1], 0.5, rng()),
        lambda: sofm_data.square(0, rng()),
        lambda: sofm_data.ring(5, rng(), inner=1.0),
    ):
        with pytest.raises(sofm_data.SOFMDataError):
            bad()
