"""Samplers against their stated guarantees: the registry, bounds, determinism by
seed, purity, and grid exhaustion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import bench_problems

from hpo.direction import Direction
from hpo.errors import SamplerError, SamplerExhausted
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import SAMPLERS, make_sampler, sampler_names
from hpo.samplers.grid import GridSampler
from hpo.samplers.random import RandomSampler
from hpo.space import Space

PROBLEMS = bench_problems()

SMALL = Space.from_spec(
    [
        {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
        {"name": "kind", "type": "categorical", "choices": ["a", "b"]},
        {
            "name": "arch",
            "type": "branch",
            "choices": {"one": [{"name": "n", "type": "int", "low": 1, "high": 2}], "none": []},
        },
    ]
)  # grid at points=3: 3 x 2 x (2 + 1) = 18 points


def trial(number: int, params: dict, state: TrialState = TrialState.COMPLETE) -> FrozenTrial:
    value = float(number) if state == TrialState.COMPLETE else None
    return FrozenTrial(
        trial_id=number + 1, number=number, state=state, params=dict(params), value=value
    )


def key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def run_grid(
    sampler: GridSampler, space: Space, seed: int = 0, trials: list[FrozenTrial] | None = None
) -> list[dict]:
    """Ask until exhausted, feeding each point back as a completed trial."""
    trials = list(trials or [])
    proposed = []
    for index in range(10_000):
        try:
            params = sampler.ask(space, trials, np.random.default_rng([seed, index]))
        except SamplerExhausted:
            return proposed
        proposed.append(params)
        trials.append(trial(len(trials), params))
    raise AssertionError("the grid sampler never ran out of points")


# -- the registry ---------------------------------------------------------------------


def test_registry_names():
    assert sampler_names() == list(SAMPLERS)
    assert {"random", "grid"} <= set(sampler_names())


def test_make_sampler_builds_by_name_with_options():
    assert isinstance(make_sampler("random"), RandomSampler)
    assert isinstance(make_sampler("random", {}), RandomSampler)
    grid = make_sampler("grid", {"points": 4, "shuffle": False, "values": {"x": [0.5]}})
    assert isinstance(grid, GridSampler)
    assert (grid.points, grid.shuffle, grid.values) == (4, False, {"x": [0.5]})
    default = make_sampler("grid")
    assert (default.points, default.shuffle, default.values) == (10, True, {})


@pytest.mark.parametrize(
    ("name", "options", "fragments"),
    [
        (
            "randm",
            None,
            ["unknown sampler 'randm'", "(did you mean 'random'?)", "available: random, grid"],
        ),
        ("gird", None, ["unknown sampler 'gird'", "(did you mean 'grid'?)"]),
        (
            "grid",
            {"point": 3},
            [
                "sampler 'grid' has no option 'point'",
                "(did you mean 'points'?)",
                "its options: points, values, shuffle",
            ],
        ),
        ("grid", {"shufle": True}, ["no option 'shufle'", "(did you mean 'shuffle'?)"]),
        ("random", {"seed": 1}, ["sampler 'random' has no option 'seed'", "its options: none"]),
        ("grid", {"points": 1}, ["grid: points must be an integer >= 2, got 1"]),
        ("grid", {"points": 0}, ["points must be an integer >= 2, got 0"]),
        ("grid", {"points": 2.5}, ["points must be an integer >= 2, got 2.5"]),
        ("grid", {"points": True}, ["points must be an integer >= 2, got True"]),
        ("grid", {"shuffle": "yes"}, ["grid: shuffle must be true or false, got 'yes'"]),
        ("grid", {"shuffle": 1}, ["shuffle must be true or false, got 1"]),
        ("grid", {"values": [1, 2]}, ["grid: values must map parameter names to lists"]),
    ],
)
def test_make_sampler_errors(name, options, fragments):
    with pytest.raises(SamplerError) as info:
        make_sampler(name, options)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


# -- random ----------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_random_same_seed_same_points(problem):
    space = Space.from_spec(PROBLEMS[problem]["space"])
    sampler = RandomSampler()
    first = [sampler.ask(space, [], np.random.default_rng([3, i])) for i in range(20)]
    again = [RandomSampler().ask(space, [], np.random.default_rng([3, i])) for i in range(20)]
    other = [sampler.ask(space, [], np.random.default_rng([4, i])) for i in range(20)]
    assert first == again
    assert first != other
    assert len({key(p) for p in first}) == 20  # continuous parameters: all distinct


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_random_points_are_valid(problem):
    space = Space.from_spec(PROBLEMS[problem]["space"])
    sampler = RandomSampler()
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = sampler.ask(space, [], rng)
        checked = space.validate(params)
        assert checked == params
        assert [type(v) for v in checked.values()] == [type(v) for v in params.values()]


def test_random_is_pure_in_the_trials():
    space = Space.from_spec(PROBLEMS["conditional_nn"]["space"])
    sampler = RandomSampler()
    history = [trial(i, sampler.ask(space, [], np.random.default_rng(100 + i))) for i in range(10)]
    history.append(trial(10, {"lr": 0.01}, TrialState.FAIL))
    for seed in range(20):
        alone = sampler.ask(space, [], np.random.default_rng(seed))
        with_history = sampler.ask(
            space, history, np.random.default_rng(seed), direction=Direction.MAXIMIZE
        )
        assert alone == with_history


def test_random_covers_each_branch_and_choice():
    space = Space.from_spec(PROBLEMS["mixed_nn"]["space"])
    rng = np.random.default_rng(1)
    points = [RandomSampler().ask(space, [], rng) for _ in range(400)]
    assert {p["activation"] for p in points} == {"relu", "elu", "tanh", "sigmoid"}
    assert min(p["batch_size"] for p in points) < 32
    assert max(p["batch_size"] for p in points) > 256


# -- grid --------------------------------------------------------------------------------


def test_grid_in_order_proposes_every_point_once_then_is_exhausted():
    sampler = GridSampler(points=3, shuffle=False)
    proposed = run_grid(sampler, SMALL)
    assert proposed == SMALL.grid(points=3)
    assert len(proposed) == 18
    trials = [trial(i, p) for i, p in enumerate(proposed)]
    with pytest.raises(SamplerExhausted, match="all 18 grid points have been evaluated"):
        sampler.ask(SMALL, trials, np.random.default_rng(0))


@pytest.mark.parametrize("problem", ["branin", "conditional_nn", "mixed_nn"])
def test_grid_shuffled_proposes_every_point_exactly_once(problem):
    space = Space.from_spec(PROBLEMS[problem]["space"])
    sampler = GridSampler(points=3)
    proposed = run_grid(sampler, space, seed=5)
    grid = space.grid(points=3)
    assert len(proposed) == len(grid)
    assert sorted(map(key, proposed)) == sorted(map(key, grid))
    assert proposed != grid  # shuffled, not grid order
    for params in proposed:
        assert space.validate(params) == params


def test_grid_shuffle_is_deterministic_by_seed():
    first = run_grid(GridSampler(points=3), SMALL, seed=7)
    again = run_grid(GridSampler(points=3), SMALL, seed=7)
    other = run_grid(GridSampler(points=3), SMALL, seed=8)
    assert first == again
    assert first != other
    assert sorted(map(key, first)) == sorted(map(key, other))


def test_grid_skips_points_already_tried_in_any_state():
    grid = SMALL.grid(points=3)
    states = [
        TrialState.COMPLETE,
        TrialState.RUNNING,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.WAITING,
    ]
    tried = [
        trial(i, {**grid[2 * i], "user_extra": i}, state)  # extra, non-space params
        for i, state in enumerate(states)
    ]
    skipped = {key(grid[2 * i]) for i in range(len(states))}
    sampler = GridSampler(points=3, shuffle=False)
    proposed = run_grid(sampler, SMALL, trials=tried)
    assert len(proposed) == len(grid) - len(states)
    assert not skipped & {key(p) for p in proposed}
    assert proposed == [p for p in grid if key(p) not in skipped]
    shuffled = run_grid(GridSampler(points=3), SMALL, seed=1, trials=tried)
    assert sorted(map(key, shuffled)) == sorted(map(key, proposed))


def test_grid_ignores_partial_points_in_trials():
    grid = SMALL.grid(points=3)
    partial = trial(0, {"x": grid[0]["x"]}, TrialState.FAIL)  # not a full grid point
    assert (
        GridSampler(points=3, shuffle=False).ask(SMALL, [partial], np.random.default_rng(0))
        == grid[0]
    )


def test_grid_with_explicit_values():
    space = Space.from_spec(PROBLEMS["branin"]["space"])
    sampler = make_sampler(
        "grid", {"points": 2, "values": {"x1": [-1.0, 0.0, 1.0]}, "shuffle": False}
    )
    proposed = run_grid(sampler, space)
    assert proposed == [{"x1": x1, "x2": x2} for x1 in (-1.0, 0.0, 1.0) for x2 in (0.0, 15.0)]


def test_grid_proposals_are_copies():
    sampler = GridSampler(points=3, shuffle=False)
    first = sampler.ask(SMALL, [], np.random.default_rng(0))
    first["x"] = 99.0
    assert sampler.ask(SMALL, [], np.random.default_rng(0))["x"] == 0.0
    assert sampler.grid(SMALL)[0]["x"] == 0.0


def test_one_grid_sampler_serves_several_spaces():
    sampler = GridSampler(points=2, shuffle=False)
    branin = Space.from_spec(PROBLEMS["branin"]["space"])
    assert sampler.ask(branin, [], np.random.default_rng(0)) == {"x1": -5.0, "x2": 0.0}
    assert sampler.ask(SMALL, [], np.random.default_rng(0)) == SMALL.grid(points=2)[0]
    assert len(run_grid(sampler, branin)) == 4


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"values": {"x3": [1.0]}}, "grid: grid values for unknown parameter 'x3'"),
        ({"values": {"x1": [100.0]}}, "grid value 100.0 for 'x1' is not in float"),
        ({"points": 1001}, "more than 1,000,000"),
    ],
)
def test_grid_that_cannot_be_built_raises_sampler_error(options, fragment):
    space = Space.from_spec(PROBLEMS["branin"]["space"])
    sampler = make_sampler("grid", options)  # the space is known only when asked
    with pytest.raises(SamplerError) as info:
        sampler.ask(space, [], np.random.default_rng(0))
    assert fragment in str(info.value)


def test_grid_recognises_a_tried_point_whatever_the_number_type():
    space = Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 2.0}])
    sampler = GridSampler(values={"x": [0, 1]}, shuffle=False)
    tried = trial(0, space.validate({"x": 0}))  # as Study.enqueue stores it: {"x": 0.0}
    assert sampler.ask(space, [tried], np.random.default_rng(0)) == {"x": 1.0}
