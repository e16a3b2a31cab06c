"""The search space: the neutral spec, validation, the unit-cube encoding, grids.

The benchmark problems (bench/problems.py, a verbatim copy of the shared
definitions) are the reference specs: they must load unchanged and write back
exactly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import bench_problems
from scipy import stats

from hpo.errors import SpaceError
from hpo.space import MAX_GRID_POINTS, Branch, Categorical, Numeric, Space

PROBLEMS = bench_problems()

# Every feature of the spec: log, step, int step, int log, categorical with
# mixed JSON scalars (1, 1.0 and True are distinct choices), nested branches,
# an empty branch, and one name ("C") reused in two sibling branches.
RICH_SPEC = [
    {"name": "lr", "type": "float", "low": 1e-5, "high": 1.0, "log": True},
    {"name": "x", "type": "float", "low": -1.0, "high": 2.0, "log": False},
    {"name": "q", "type": "float", "low": 0.0, "high": 1.0, "log": False, "step": 0.25},
    {"name": "n", "type": "int", "low": 1, "high": 6, "log": False},
    {"name": "m", "type": "int", "low": 0, "high": 20, "log": False, "step": 5},
    {"name": "k", "type": "int", "low": 1, "high": 1024, "log": True},
    {"name": "c", "type": "categorical", "choices": [1, 1.0, True, "1", None, "a", 2.5]},
    {
        "name": "model",
        "type": "branch",
        "choices": {
            "svm": [
                {"name": "C", "type": "float", "low": 0.01, "high": 100.0, "log": True},
                {
                    "name": "kernel",
                    "type": "branch",
                    "choices": {
                        "rbf": [
                            {
                                "name": "gamma",
                                "type": "float",
                                "low": 0.1,
                                "high": 0.9,
                                "log": False,
                                "step": 0.1,
                            }
                        ],
                        "linear": [],
                    },
                },
            ],
            "tree": [
                {"name": "depth", "type": "int", "low": 2, "high": 12, "log": False, "step": 2},
                {"name": "C", "type": "float", "low": 0.0, "high": 1.0, "log": False},
            ],
        },
    },
]
RICH_NAMES = [
    "lr",
    "x",
    "q",
    "n",
    "m",
    "k",
    "c",
    "model",
    "C",
    "kernel",
    "gamma",
    "depth",
    "C",
]  # depth-first: a branch, then its labels' parameters

CONDITIONAL = PROBLEMS["conditional_nn"]["space"]


def draws(space: Space, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.decode(rng.random(len(space))) for _ in range(n)]


def active_mask(space: Space, point: dict) -> np.ndarray:
    """Which coordinates are active for a point: all their branch conditions hold."""
    return np.array(
        [all(point.get(branch) == label for branch, label in dim.conditions) for dim in space.dims]
    )


def assert_same_point(a: dict, b: dict) -> None:
    """Same names, same types, same values (continuous floats to 1e-12)."""
    assert list(a) == list(b)
    for name in a:
        assert type(a[name]) is type(b[name]), name
        if isinstance(a[name], float):
            assert a[name] == pytest.approx(b[name], rel=1e-12, abs=1e-300), name
        else:
            assert a[name] == b[name], name


def chi_square_p(counts) -> float:
    return float(stats.chisquare(np.asarray(counts)).pvalue)


# -- the neutral spec -----------------------------------------------------------------


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bench_problem_specs_load_and_write_back_exactly(problem):
    spec = PROBLEMS[problem]["space"]
    space = Space.from_spec(spec)
    assert space.to_spec() == spec
    assert json.dumps(space.to_spec()) == json.dumps(spec)  # also key order and types
    assert Space.from_spec(space.to_spec()) == space


def test_rich_spec_round_trips():
    space = Space.from_spec(RICH_SPEC)
    assert space.to_spec() == RICH_SPEC
    # == treats 1, 1.0 and True alike; the JSON text does not.
    assert json.dumps(space.to_spec()) == json.dumps(RICH_SPEC)
    assert Space.from_spec(space.to_spec()) == space
    choices = space.params[6].choices
    assert [type(c) for c in choices] == [int, float, bool, str, type(None), str, float]


def test_spec_without_log_key_gains_it_and_round_trips():
    spec = [
        {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
        {"name": "n", "type": "int", "low": 1, "high": 3},
    ]
    space = Space.from_spec(spec)
    assert space.to_spec() == [{**spec[0], "log": False}, {**spec[1], "log": False}]
    assert Space.from_spec(space.to_spec()) == space


def test_parameter_kinds():
    space = Space.from_spec(RICH_SPEC)
    kinds = [type(p) for p in space.params]
    assert kinds == [Numeric] * 6 + [Categorical, Branch]
    assert space.params[7].choices == ("svm", "tree")
    assert space.params[3].grid_step == 1
    assert space.params[0].grid_step is None
    assert space.params[2].grid_step == 0.25


def test_none_spec_is_the_empty_space():
    assert Space.from_spec(None) == Space()
    assert len(Space.from_spec([])) == 0
    assert Space.from_spec([]).to_spec() == []


# -- validation of the spec --------------------------------------------------------------


def _f(**keys):
    return {"name": "x", "type": "float", **keys}


def _i(**keys):
    return {"name": "n", "type": "int", **keys}


INVALID_SPECS = [
    pytest.param(
        [_f(low=1.0, high=1.0)], "low (1.0) must be less than high (1.0)", id="low-equals-high"
    ),
    pytest.param([_f(low=2.0, high=1.0)], "must be less than high", id="low-above-high"),
    pytest.param(
        [_f(low=0.0, high=1.0, log=True)], "must be > 0 when log is true", id="log-low-zero"
    ),
    pytest.param(
        [_f(low=-1.0, high=1.0, log=True)], "must be > 0 when log is true", id="log-low-negative"
    ),
    pytest.param(
        [{"name": "c", "type": "categorical", "choices": []}],
        "choices must be a non-empty list",
        id="empty-choices",
    ),
    pytest.param(
        [{"name": "c", "type": "categorical", "choices": ["a", "b", "a"]}],
        "duplicate choice 'a'",
        id="duplicate-choices",
    ),
    pytest.param(
        [_f(low=0, high=1), _f(low=0, high=2)],
        "'x' appears twice on one active path (space)",
        id="duplicate-top-level",
    ),
    pytest.param(
        [_f(low=0, high=1), {"name": "b", "type": "branch", "choices": {"a": [_f(low=0, high=1)]}}],
        "'x' appears twice on one active path (space -> b=a)",
        id="duplicate-top-and-branch",
    ),
    pytest.param(
        [
            {
                "name": "b",
                "type": "branch",
                "choices": {
                    "a": [
                        _f(low=0, high=1),
                        {"name": "b2", "type": "branch", "choices": {"c": [_f(low=0, high=1)]}},
                    ]
                },
            }
        ],
        "(space -> b=a -> b2=c)",
        id="duplicate-nested-branch",
    ),
    pytest.param(
        [
            {
                "name": "b",
                "type": "branch",
                "choices": {"a": [{"name": "b", "type": "int", "low": 0, "high": 1}]},
            }
        ],
        "'b' appears twice",
        id="branch-param-named-like-branch",
    ),
    pytest.param(
        [_f(low=0, high=1, type="flaot")],
        "unknown type 'flaot' (did you mean 'float'?)",
        id="unknown-type",
    ),
    pytest.param(
        [_f(low=0, high=1, steps=0.5)],
        "unknown key 'steps' for type float (did you mean 'step'?)",
        id="unknown-key",
    ),
    pytest.param(
        [_f(low=0, high=1, lgo=True)],
        "unknown key 'lgo' for type float (did you mean 'log'?)",
        id="swapped-letters-key",
    ),
    pytest.param(
        [{"name": "c", "type": "categorical", "choices": [1], "low": 0}],
        "unknown key 'low' for type categorical",
        id="numeric-key-on-categorical",
    ),
    pytest.param([_f(low=0.0, high=math.inf)], "high must be finite, got inf", id="inf-high"),
    pytest.param([_f(low=-math.inf, high=0.0)], "low must be finite, got -inf", id="inf-low"),
    pytest.param([_f(low=math.nan, high=1.0)], "low must be finite, got nan", id="nan-low"),
    pytest.param(
        [_f(low=0.0, high=1.0, step=0.3)],
        "step (0.3) does not divide the range",
        id="step-does-not-divide",
    ),
    pytest.param(
        [_f(low=0.0, high=1.0, step=0.3333)],
        "step (0.3333) does not divide",
        id="step-nearly-divides",
    ),
    pytest.param(
        [_i(low=0, high=10, step=3)],
        "step (3) does not divide the range",
        id="int-step-does-not-divide",
    ),
    pytest.param([_f(low=0.0, high=1.0, step=0)], "step (0) must be > 0", id="step-zero"),
    pytest.param([_f(low=0.0, high=1.0, step=-0.5)], "step (-0.5) must be > 0", id="step-negative"),
    pytest.param(
        [_f(low=0.1, high=1.0, step=0.1, log=True)],
        "step and log cannot be combined",
        id="float-step-and-log",
    ),
    pytest.param(
        [_i(low=1, high=9, step=2, log=True)],
        "step and log cannot be combined",
        id="int-step-2-and-log",
    ),
    pytest.param(
        [_i(low=0.5, high=3)],
        "low must be an integer for type int, got 0.5",
        id="int-low-not-integer",
    ),
    pytest.param(
        [_i(low=0, high=3, step=0.5)],
        "step must be an integer for type int",
        id="int-step-not-integer",
    ),
    pytest.param([_f(low=True, high=3.0)], "low must be a number, got True", id="bool-as-number"),
    pytest.param([_f(low=0.0, high="1")], "high must be a number, got '1'", id="string-as-number"),
    pytest.param([_f(high=1.0)], "type float needs 'low'", id="missing-low"),
    pytest.param(
        [_f(low=1.0, high=2.0, log="yes")], "log must be true or false", id="log-not-bool"
    ),
    pytest.param(
        [{"type": "float", "low": 0, "high": 1}], "space[0] needs a 'name'", id="missing-name"
    ),
    pytest.param(
        [{"name": " ", "type": "float", "low": 0, "high": 1}],
        "space[0] needs a 'name'",
        id="blank-name",
    ),
    pytest.param([{"name": "x", "low": 0, "high": 1}], "unknown type None", id="missing-type"),
    pytest.param(
        {"name": "x", "type": "float", "low": 0, "high": 1},
        "space must be a list of parameters, got dict",
        id="space-not-a-list",
    ),
    pytest.param(["x"], "space[0] must be a table", id="parameter-not-a-table"),
    pytest.param(
        [{"name": "b", "type": "branch", "choices": {}}],
        "a branch needs choices mapping each label",
        id="empty-branch-choices",
    ),
    pytest.param(
        [{"name": "b", "type": "branch", "choices": ["a", "b"]}],
        "a branch needs choices mapping each label",
        id="branch-choices-a-list",
    ),
    pytest.param(
        [{"name": "b", "type": "branch", "choices": {"a": {"name": "x"}}}],
        "space[0].choices['a'] must be a list of parameters",
        id="branch-not-list",
    ),
    pytest.param(
        [{"name": "b", "type": "branch", "choices": {"": []}}],
        "branch labels must be non-empty strings",
        id="empty-branch-label",
    ),
    pytest.param(
        [{"name": "c", "type": "categorical", "choices": [{"a": 1}]}],
        "must be a string, number, boolean or null",
        id="choice-not-scalar",
    ),
    pytest.param(
        [{"name": "c", "type": "categorical", "choices": [math.nan]}],
        "choice nan must be finite",
        id="choice-nan",
    ),
]


@pytest.mark.parametrize(("spec", "fragment"), INVALID_SPECS)
def test_invalid_spec_raises_space_error(spec, fragment):
    with pytest.raises(SpaceError) as info:
        Space.from_spec(spec)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_same_name_in_sibling_branches_is_allowed():
    spec = [
        {
            "name": "b",
            "type": "branch",
            "choices": {"one": [_i(low=1, high=4)], "two": [_i(low=1, high=4), _f(low=0, high=1)]},
        }
    ]
    space = Space.from_spec(spec)
    assert [dim.param.name for dim in space.dims] == ["b", "n", "n", "x"]
    assert space.validate({"b": "one", "n": 2}) == {"b": "one", "n": 2}
    assert space.validate({"b": "two", "n": 3, "x": 0.5}) == {"b": "two", "n": 3, "x": 0.5}


def test_distinct_mixed_scalar_choices_are_not_duplicates():
    space = Space.from_spec(
        [{"name": "c", "type": "categorical", "choices": [0, 0.0, False, "0", None]}]
    )
    assert len(space.params[0].choices) == 5


# -- the unit-cube encoding ---------------------------------------------------------------


def test_len_counts_every_parameter_including_branches():
    space = Space.from_spec(RICH_SPEC)
    assert [dim.param.name for dim in space.dims] == RICH_NAMES
    assert len(space) == 13
    assert len(Space.from_spec(CONDITIONAL)) == 5
    assert "gamma" in space
    assert "nope" not in space
    conditions = {dim.param.name: dim.conditions for dim in space.dims}
    assert conditions["gamma"] == (("model", "svm"), ("kernel", "rbf"))
    assert conditions["lr"] == ()


@pytest.mark.parametrize(
    "spec", [RICH_SPEC, *(p["space"] for p in PROBLEMS.values())], ids=["rich", *PROBLEMS]
)
def test_decode_encode_round_trip(spec):
    space = Space.from_spec(spec)
    for point in draws(space, 300, seed=1):
        assert_same_point(space.decode(space.encode(point)), point)


def test_discrete_values_round_trip_exactly():
    space = Space.from_spec(RICH_SPEC)
    for point in draws(space, 300, seed=2):
        again = space.decode(space.encode(point))
        for name in ("q", "n", "m", "k", "c", "model", "kernel", "gamma", "depth"):
            if name in point:
                assert again[name] == point[name]
                assert type(again[name]) is type(point[name])


def test_encode_puts_nan_exactly_on_inactive_coordinates():
    space = Space.from_spec(RICH_SPEC)
    seen_labels = set()
    for point in draws(space, 200, seed=3):
        x = space.encode(point)
        assert x.shape == (len(space),)
        active = active_mask(space, point)
        assert np.array_equal(np.isnan(x), ~active)
        assert np.all((x[active] >= 0) & (x[active] < 1))
        seen_labels.add((point["model"], point.get("kernel")))
    assert seen_labels == {("svm", "rbf"), ("svm", "linear"), ("tree", None)}


def test_encode_leaves_missing_parameters_nan():
    space = Space.from_spec(CONDITIONAL)
    x = space.encode({"lr": 0.01})
    assert not np.isnan(x[0])
    assert np.isnan(x[1:]).all()
    x = space.encode({"lr": 0.01, "layers": "two", "units_2_2": 100})
    assert np.array_equal(np.isnan(x), [False, False, True, True, False])


def test_encode_many_matches_encode():
    space = Space.from_spec(RICH_SPEC)
    points = draws(space, 20, seed=4)
    many = space.encode_many(points)
    assert many.shape == (20, len(space))
    for row, point in zip(many, points, strict=True):
        np.testing.assert_array_equal(row, space.encode(point))


def test_decode_ignores_inactive_coordinates():
    space = Space.from_spec(RICH_SPEC)
    rng = np.random.default_rng(5)
    for _ in range(100):
        u = rng.random(len(space))
        point = space.decode(u)
        inactive = ~active_mask(space, point)
        assert inactive.any()  # a branch always leaves some label unchosen
        other = u.copy()
        other[inactive] = rng.random(inactive.sum())
        assert space.decode(other) == point
        other[inactive] = np.nan
        assert space.decode(other) == point


def test_decode_gives_only_active_parameters():
    space = Space.from_spec(CONDITIONAL)
    for point in draws(space, 50, seed=6):
        expected = {
            "one": {"lr", "layers", "units_1_1"},
            "two": {"lr", "layers", "units_2_1", "units_2_2"},
        }[point["layers"]]
        assert set(point) == expected


def test_decoded_values_are_in_bounds_on_grid_and_typed():
    space = Space.from_spec(RICH_SPEC)
    by_path = {(dim.param.name, dim.conditions): dim.param for dim in space.dims}
    for point in draws(space, 500, seed=7):
        assert space.validate(point) == point
        for (name, conditions), param in by_path.items():
            if name not in point or not all(point[b] == lab for b, lab in conditions):
                continue
            value = point[name]
            if isinstance(param, Numeric):
                assert param.low <= value <= param.high
                assert type(value) is (int if param.type == "int" else float)
                step = param.grid_step
                if step is not None:
                    ratio = (value - param.low) / step
                    assert abs(ratio - round(ratio)) < 1e-9
                    if param.type == "float":  # no float noise such as 0.30000000000000004
                        assert value == float(f"{value:.12g}")
            elif isinstance(param, Categorical):
                assert any(value == c and type(value) is type(c) for c in param.choices)
            else:
                assert value in param.choices


EDGE_CASES = [
    (_f(low=-5.0, high=10.0), -5.0, 10.0),
    (_f(low=1e-4, high=1.0, log=True), 1e-4, 1.0),
    (_f(low=0.0, high=1.0, step=0.1), 0.0, 1.0),
    (_i(low=3, high=9), 3, 9),
    (_i(low=0, high=20, step=5), 0, 20),
    (_i(low=1, high=1024, log=True), 1, 1024),
    (_i(low=-7, high=-2), -7, -2),
]


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    EDGE_CASES,
    ids=["float", "log", "step", "int", "int-step", "int-log", "negative"],
)
def test_unit_ends_map_to_low_and_high(spec, low, high):
    space = Space.from_spec([spec])
    name = spec["name"]
    for u in (0.0, 1e-12):
        assert space.decode(np.array([u]))[name] == pytest.approx(low, rel=1e-9)
    for u in (1 - 1e-12, np.nextafter(1.0, 0.0)):
        assert space.decode(np.array([u]))[name] == pytest.approx(high, rel=1e-9)
    if spec["type"] == "int" or "step" in spec:  # discrete: exactly the ends
        assert space.decode(np.array([0.0]))[name] == low
        assert space.decode(np.array([np.nextafter(1.0, 0.0)]))[name] == high


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        (_i(low=1, high=6), [1, 2, 3, 4, 5, 6]),
        (_i(low=0, high=20, step=5), [0, 5, 10, 15, 20]),
        (_f(low=0.0, high=1.0, step=0.25), [0.0, 0.25, 0.5, 0.75, 1.0]),
        (
            {"name": "c", "type": "categorical", "choices": ["a", 1, 1.0, True, None]},
            ["a", 1, 1.0, True, None],
        ),
        ({"name": "b", "type": "branch", "choices": {"p": [], "q": [], "r": []}}, ["p", "q", "r"]),
    ],
    ids=["int", "int-step", "float-step", "categorical", "branch"],
)
def test_uniform_draws_pick_each_value_equally_often(spec, values):
    space = Space.from_spec([spec])
    name = spec["name"]
    keys = [json.dumps(v) + type(v).__name__ for v in values]
    counts = dict.fromkeys(keys, 0)
    n = 600 * len(values)
    for point in draws(space, n, seed=8):
        value = point[name]
        counts[json.dumps(value) + type(value).__name__] += 1  # KeyError: not a value
    assert set(counts) == set(keys)
    assert chi_square_p(list(counts.values())) > 1e-3
    assert min(counts.values()) > 0.8 * n / len(values)


def test_log_float_draws_are_log_uniform():
    space = Space.from_spec([_f(low=1e-4, high=1.0, log=True)])
    x = np.array([p["x"] for p in draws(space, 8000, seed=9)])
    assert np.mean(x < 1e-2) == pytest.approx(0.5, abs=0.03)  # the geometric mean
    assert np.mean(x < 1e-3) == pytest.approx(0.25, abs=0.03)
    assert np.mean(x < 1e-1) == pytest.approx(0.75, abs=0.03)
    counts = np.histogram(np.log10(x), bins=8, range=(-4, 0))[0]
    assert chi_square_p(counts) > 1e-3


def test_log_int_draws_follow_log_scale():
    space = Space.from_spec([_i(low=1, high=1000, log=True)])
    n = np.array([p["n"] for p in draws(space, 8000, seed=10)])
    # coordinates map onto [log 0.5, log 1000.5]: a quarter of the mass is below ~3.5
    below = (math.log(3.5) - math.log(0.5)) / (math.log(1000.5) - math.log(0.5))
    assert np.mean(n <= 3) == pytest.approx(below, abs=0.03)
    assert np.mean(n > 100) == pytest.approx(
        (math.log(1000.5) - math.log(100.5)) / (math.log(1000.5) - math.log(0.5)), abs=0.03
    )


def test_decode_with_fixed_keeps_values_and_follows_the_fixed_branch():
    space = Space.from_spec(CONDITIONAL)
    rng = np.random.default_rng(11)
    for _ in range(50):
        u = rng.random(len(space))
        point = space.decode(u, fixed={"layers": "two", "units_2_2": 77, "lr": 0.123})
        assert point["layers"] == "two"
        assert point["units_2_2"] == 77
        assert point["lr"] == 0.123
        assert set(point) == {"lr", "layers", "units_2_1", "units_2_2"}
        assert point["units_2_1"] == space.dims[3].param.decode(u[3])  # its own coordinate
        one = space.decode(u, fixed={"layers": "one"})
        assert set(one) == {"lr", "layers", "units_1_1"}
        assert one["lr"] == space.decode(u)["lr"]


def test_decode_wrong_length_raises():
    space = Space.from_spec(CONDITIONAL)
    with pytest.raises(SpaceError, match="expected 5 coordinates, got 4"):
        space.decode(np.zeros(4))


def test_encode_unknown_label_or_choice_raises():
    space = Space.from_spec(RICH_SPEC)
    point = draws(space, 1)[0]
    with pytest.raises(SpaceError, match="is not one of"):
        space.encode({**point, "c": "zz"})
    with pytest.raises(SpaceError, match="'forest' is not one of"):
        space.encode({**point, "model": "forest"})


# -- Space.validate -------------------------------------------------------------------------


def test_validate_full_point_returns_it_in_space_order():
    space = Space.from_spec(CONDITIONAL)
    point = {"units_2_2": 60, "units_2_1": 70, "layers": "two", "lr": 0.01}
    checked = space.validate(point)
    assert checked == point
    assert list(checked) == ["lr", "layers", "units_2_1", "units_2_2"]


def test_validate_partial_allows_missing_but_full_does_not():
    space = Space.from_spec(CONDITIONAL)
    assert space.validate({"lr": 0.01}, partial=True) == {"lr": 0.01}
    assert space.validate({"layers": "one"}, partial=True) == {"layers": "one"}
    assert space.validate({}, partial=True) == {}
    with pytest.raises(SpaceError, match="missing parameter 'layers'"):
        space.validate({"lr": 0.01})
    with pytest.raises(SpaceError, match="missing parameter 'units_1_1'"):
        space.validate({"lr": 0.01, "layers": "one"})


def test_validate_unknown_name_suggests_close_name():
    space = Space.from_spec(CONDITIONAL)
    for partial in (False, True):
        with pytest.raises(SpaceError) as info:
            space.validate({"lr": 0.01, "layers": "one", "unit_1_1": 100}, partial=partial)
        message = str(info.value)
        assert "unknown parameter 'unit_1_1'" in message
        assert "did you mean 'units_1_1'?" in message


def test_validate_inactive_parameter_is_an_error():
    space = Space.from_spec(CONDITIONAL)
    point = {"lr": 0.01, "layers": "one", "units_1_1": 100, "units_2_1": 100}
    for partial in (False, True):
        with pytest.raises(SpaceError, match=r"\['units_2_1'\] are not active"):
            space.validate(point, partial=partial)
    with pytest.raises(SpaceError, match="not active"):  # no label chosen at all
        space.validate({"units_2_1": 100}, partial=True)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("lr", 2.0, "2.0 is not in float [1e-05, 1.0] (log)"),
        ("lr", 0.0, "is not in float"),
        ("lr", math.nan, "nan is not in"),
        ("lr", "0.01", "'0.01' is not in"),
        ("q", 0.3, "0.3 is not in float [0.0, 1.0] with step 0.25"),
        ("q", 0.2501, "0.2501 is not in float"),
        ("n", 0, "0 is not in int [1, 6]"),
        ("n", 2.5, "2.5 is not in int"),
        ("n", True, "True is not in int"),
        ("m", 7, "7 is not in int [0, 20] with step 5"),
        ("c", 2, "2 is not in choices"),
        ("c", False, "False is not in choices"),
        ("model", "forest", "'forest' is not in labels ['svm', 'tree']"),
    ],
)
def test_validate_rejects_values_outside_the_space(name, value, fragment):
    space = Space.from_spec(RICH_SPEC)
    point = {
        "lr": 0.01,
        "x": 0.0,
        "q": 0.5,
        "n": 3,
        "m": 10,
        "k": 8,
        "c": "a",
        "model": "tree",
        "depth": 4,
        "C": 0.5,
    }
    assert space.validate(point) == point
    with pytest.raises(SpaceError) as info:
        space.validate({**point, name: value})
    assert f"parameter {name!r}" in str(info.value)
    assert fragment in str(info.value)


def test_validate_coerces_numbers_to_the_parameter_type():
    space = Space.from_spec(RICH_SPEC)
    point = {
        "lr": 1,
        "x": 0,
        "q": 1,
        "n": 3.0,
        "m": np.int64(10),
        "k": 8.0,
        "c": 1.0,
        "model": "tree",
        "depth": 4.0,
        "C": np.float64(0.5),
    }
    checked = space.validate(point)
    assert checked == {
        "lr": 1.0,
        "x": 0.0,
        "q": 1.0,
        "n": 3,
        "m": 10,
        "k": 8,
        "c": 1.0,
        "model": "tree",
        "depth": 4,
        "C": 0.5,
    }
    assert [type(checked[k]) for k in ("lr", "x", "q", "n", "m", "k", "depth", "C")] == [
        float,
        float,
        float,
        int,
        int,
        int,
        int,
        float,
    ]
    assert type(checked["c"]) is float  # 1.0 the choice, not 1 or True


# -- grids ----------------------------------------------------------------------------------

GRID_SPEC = [
    {"name": "lr", "type": "float", "low": 1e-3, "high": 1.0, "log": True},
    {"name": "act", "type": "categorical", "choices": ["relu", "tanh"]},
    {
        "name": "arch",
        "type": "branch",
        "choices": {
            "mlp": [
                {"name": "layers", "type": "int", "low": 1, "high": 3},
                {"name": "drop", "type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
            ],
            "linear": [],
            "conv": [{"name": "layers", "type": "int", "low": 1, "high": 8, "step": 7}],
        },
    },
]


def test_vectorized_snapping_agrees_with_decode():
    space = Space.from_spec([_i(low=1, high=50, log=True), _f(low=0.0, high=2.0, step=0.25)])
    u = np.linspace(0.0, 1.0, 101)
    for param in space.params:
        snapped = param.snap_unit(u)
        assert [param.decode(x) for x in snapped] == [param.decode(x) for x in u]
        low, high = param.slice_of(u)
        assert np.all(low <= u + 1e-12) and np.all(u <= high + 1e-12)
        assert [param.decode(x) for x in (low + high) / 2] == [param.decode(x) for x in u]


def test_grid_size_follows_the_product_rule():
    branin = Space.from_spec(PROBLEMS["branin"]["space"])
    assert branin.grid_size(points=5) == 25
    assert len(branin.grid(points=5)) == 25
    hartmann = Space.from_spec(PROBLEMS["hartmann6"]["space"])
    assert hartmann.grid_size(points=3) == 3**6


def test_grid_size_of_branches_sums_their_sub_grids():
    conditional = Space.from_spec(CONDITIONAL)
    assert conditional.grid_size(points=3) == 3 * (3 + 3 * 3)
    assert len(conditional.grid(points=3)) == 36
    space = Space.from_spec(GRID_SPEC)
    # lr 5 x act 2 x (mlp: 3 layers x 5 drop (6 values > 5 points) + linear: 1 + conv: 2)
    assert space.grid_size(points=5) == 5 * 2 * (3 * 5 + 1 + 2) == 180
    assert len(space.grid(points=5)) == 180


def test_grid_explicit_values():
    space = Space.from_spec(PROBLEMS["branin"]["space"])
    grid = space.grid(points=3, values={"x1": [0.0, 1.5]})
    assert space.grid_size(points=3, values={"x1": [0.0, 1.5]}) == 6
    assert len(grid) == 6
    assert sorted({p["x1"] for p in grid}) == [0.0, 1.5]
    assert sorted({p["x2"] for p in grid}) == [0.0, 7.5, 15.0]


def test_grid_explicit_values_for_a_branch_and_a_branch_parameter():
    space = Space.from_spec(CONDITIONAL)
    values = {"layers": ["two"], "units_2_1": [100, 200]}
    grid = space.grid(points=3, values=values)
    assert len(grid) == space.grid_size(points=3, values=values) == 3 * 2 * 3
    assert {p["layers"] for p in grid} == {"two"}
    assert {p["units_2_1"] for p in grid} == {100, 200}


def test_grid_log_spacing():
    space = Space.from_spec([_f(low=1e-4, high=1.0, log=True)])
    values = [p["x"] for p in space.grid(points=5)]
    assert values == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-9)
    linear = Space.from_spec([_f(low=0.0, high=1.0)])
    assert [p["x"] for p in linear.grid(points=5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_grid_int_with_fewer_values_than_points_gives_all_of_them():
    space = Space.from_spec([_i(low=1, high=4)])
    assert [p["n"] for p in space.grid(points=10)] == [1, 2, 3, 4]
    stepped = Space.from_spec([_i(low=0, high=20, step=5)])
    assert [p["n"] for p in stepped.grid(points=10)] == [0, 5, 10, 15, 20]
    log = Space.from_spec([_i(low=1, high=1000, log=True)])
    values = [p["n"] for p in log.grid(points=40)]  # log spacing crowds the low end
    assert values == sorted(set(values))
    assert values[:4] == [1, 2, 3, 4]
    assert values[-1] == 1000
    assert 20 < len(values) < 40
    wide = Space.from_spec([_i(low=0, high=100)])
    values = [p["n"] for p in wide.grid(points=5)]
    assert values == [0, 25, 50, 75, 100]
    assert all(type(v) is int for v in values)


def test_grid_stepped_floats():
    space = Space.from_spec([_f(low=0.0, high=1.0, step=0.25)])
    assert [p["x"] for p in space.grid(points=10)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    fine = Space.from_spec([_f(low=0.0, high=1.0, step=0.1)])
    assert [p["x"] for p in fine.grid(points=11)] == [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        1.0,
    ]
    assert [p["x"] for p in fine.grid(points=3)] == [0.0, 0.5, 1.0]


def test_grid_categorical_gives_every_choice():
    space = Space.from_spec([{"name": "c", "type": "categorical", "choices": [1, "a", None]}])
    assert space.grid(points=2) == [{"c": 1}, {"c": "a"}, {"c": None}]


@pytest.mark.parametrize(
    ("points", "values", "fragment"),
    [
        (1, None, "grid points must be at least 2, got 1"),
        (0, None, "grid points must be at least 2"),
        (3, {"lrr": [0.1]}, "grid values for unknown parameter 'lrr' (did you mean 'lr'?)"),
        (3, {"lr": [0.1, 2.0]}, "grid value 2.0 for 'lr' is not in float"),
        (3, {"layers": [2.5]}, "grid value 2.5 for 'layers' is not in int"),
        (3, {"act": ["gelu"]}, "grid value 'gelu' for 'act' is not in choices"),
        (3, {"arch": ["rnn"]}, "grid value 'rnn' for 'arch' is not in labels"),
        (3, {"lr": []}, "grid values for 'lr' must be a non-empty list"),
        (3, {"lr": 0.1}, "grid values for 'lr' must be a non-empty list"),
    ],
)
def test_grid_errors(points, values, fragment):
    space = Space.from_spec(GRID_SPEC)
    with pytest.raises(SpaceError) as info:
        space.grid(points=points, values=values)
    assert fragment in str(info.value)


def test_grid_value_must_fit_every_parameter_of_that_name():
    space = Space.from_spec(GRID_SPEC)  # "layers" is int 1..3 in mlp, 1 or 8 in conv
    with pytest.raises(SpaceError, match="grid value 2 for 'layers'"):
        space.grid(points=3, values={"layers": [1, 2]})
    assert len(space.grid(points=3, values={"layers": [1]})) == 3 * 2 * (1 * 3 + 1 + 1)


def test_grid_too_large_is_an_error():
    space = Space.from_spec(PROBLEMS["hartmann6"]["space"])
    assert space.grid_size(points=11) > MAX_GRID_POINTS
    with pytest.raises(SpaceError, match=r"the grid has 1,771,561 points, more than 1,000,000"):
        space.grid(points=11)
    assert space.grid_size(points=10) == MAX_GRID_POINTS  # at the limit: allowed


@pytest.mark.parametrize(
    "spec",
    [GRID_SPEC, RICH_SPEC[:7], CONDITIONAL, PROBLEMS["mixed_nn"]["space"]],
    ids=["branches", "rich-flat", "conditional", "mixed"],
)
def test_grid_points_are_unique_and_valid(spec):
    space = Space.from_spec(spec)
    grid = space.grid(points=3)
    assert len(grid) == space.grid_size(points=3)
    keys = {json.dumps(point, sort_keys=True) for point in grid}
    assert len(keys) == len(grid)
    for point in grid:
        assert_same_point(space.validate(point), point)


def test_grid_explicit_values_take_the_parameter_type():
    space = Space.from_spec([_f(low=0.0, high=2.0), _i(low=0, high=4)])
    grid = space.grid(points=2, values={"x": [0, 1], "n": [2.0, 4.0]})
    for point in grid:
        assert type(point["x"]) is float
        assert type(point["n"]) is int


def test_grid_explicit_duplicate_values_give_no_duplicate_points():
    space = Space.from_spec([_f(low=0.0, high=2.0)])
    for given in ([0.5, 0.5, 1.0], [1, 1.0]):
        try:
            grid = space.grid(points=2, values={"x": given})
        except SpaceError:
            continue  # rejecting the duplicate is a fix too
        assert len(grid) == len({json.dumps(float(p["x"])) for p in grid})
