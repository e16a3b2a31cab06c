"""NSGA-II and the rankings it rests on: sorting, crowding, constrained domination."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import hpo
from hpo.pareto import (
    crowding_distance,
    hypervolume,
    hypervolume_subset,
    nondominated_ranks,
)
from hpo.samplers import make_sampler
from hpo.samplers.nsga2 import _polynomial, _sbx, _select


def brute_force_ranks(points: np.ndarray) -> np.ndarray:
    """Rank r: dominated only by points of ranks < r (peel the fronts by definition)."""
    n, ranks, rank = len(points), np.full(len(points), -1), 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        front = [
            i
            for i in left
            if not any(
                np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in left
            )
        ]
        ranks[front] = rank
        rank += 1
    assert rank <= n
    return ranks


@pytest.mark.parametrize("k", [1, 2, 3])
def test_nondominated_sorting_matches_brute_force(k):
    rng = np.random.default_rng(k)
    for n in (1, 2, 7, 40, 90):  # both sides of the small-front shortcut
        points = rng.integers(0, 5, size=(n, k)).astype(float)  # many ties and copies
        assert np.array_equal(nondominated_ranks(points), brute_force_ranks(points))


def test_a_hand_worked_sort():
    points = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [2, 2], [6, 6]], dtype=float)
    assert nondominated_ranks(points).tolist() == [0, 0, 0, 1, 2, 0, 3]
    # only as many as needed: the rest get rank n
    assert nondominated_ranks(points, needed=4).tolist() == [0, 0, 0, 7, 7, 0, 7]


def test_constrained_domination_ranks_feasible_first_then_by_violation():
    points = np.array([[0, 0], [1, 1], [5, 5], [0.5, 0.5], [9, 9], [2, 0]], dtype=float)
    violation = np.array([2.0, 0.0, 0.0, 0.5, 0.0, 0.5])
    # feasible: (1,1) and (9,9)... (5,5) rank 1, (9,9) rank 2; then violation 0.5 (two), 2.0
    assert nondominated_ranks(points, violation).tolist() == [4, 0, 1, 3, 2, 3]


def test_crowding_distance_by_hand():
    front = np.array([[0, 4], [1, 2], [2, 1], [4, 0]], dtype=float)
    # (1,2): f1 neighbours 0 and 2 over a range of 4, f2 neighbours 1 and 4: 2/4 + 3/4
    assert crowding_distance(front).tolist() == [np.inf, 1.25, 1.25, np.inf]
    assert crowding_distance(front[:2]).tolist() == [np.inf, np.inf]
    flat = np.array([[1, 1], [1, 1], [1, 1]], dtype=float)  # no range: nothing added
    assert crowding_distance(flat)[1] == 0.0


def test_the_lazy_greedy_subset_is_the_greedy_subset():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        for _ in range(5):
            points = rng.random((12, k))
            reference = np.ones(k) * 1.1
            chosen: list[int] = []
            for _ in range(5):  # the plain greedy: recompute every gain at every step
                gains = [
                    -1.0 if i in chosen else hypervolume(points[[*chosen, i]], reference)
                    for i in range(len(points))
                ]
                chosen.append(int(np.argmax(gains)))
            lazy = hypervolume_subset(points, reference, 5)
            assert hypervolume(points[lazy], reference) == pytest.approx(
                hypervolume(points[chosen], reference)
            )


def test_elitist_selection_keeps_whole_fronts_then_the_least_crowded():
    losses = np.array([[0, 4], [1, 2], [2, 1], [4, 0], [5, 5], [1.1, 1.9]], dtype=float)
    violation = np.zeros(6)
    kept = _select(losses, violation, 4)
    # the front is 0, 1, 2, 3, 5: the extremes (inf), then by crowding distance
    # 2: 2.9/4 + 1.9/4 = 1.2, 1: 1.1/4 + 2.1/4 = 0.8, 5: 1/4 + 1/4 = 0.5
    assert sorted(kept.tolist()) == [0, 1, 2, 3]
    infeasible = np.array([0, 0, 0, 0, 0, 1.0])
    assert 5 not in _select(losses, infeasible, 5)  # feasible beats infeasible


def test_sbx_and_polynomial_mutation_stay_in_the_unit_interval():
    rng = np.random.default_rng(3)
    a, b = rng.random(10_000), rng.random(10_000)
    one, two = _sbx(a, b, 20.0, rng)
    assert ((one >= 0) & (one <= 1) & (two >= 0) & (two <= 1)).all()
    # each child lies on its own parent's side, near it
    assert np.mean(np.abs(one - a)) < np.mean(np.abs(one - b))
    moved = _polynomial(a, 20.0, rng)
    assert ((moved >= 0) & (moved <= 1)).all() and np.mean(np.abs(moved - a)) < 0.05


def test_generations_and_parents_follow_the_trial_numbers():
    sampler = make_sampler("nsga2", {"population_size": 3})
    number = np.arange(7)
    losses = np.array([[3, 3], [1, 2], [2, 1], [0, 0], [9, 9], [8, 8], [5, 5]], dtype=float)
    violation = np.zeros(7)
    assert sampler.parents(number, losses, violation, 0).size == 0
    assert sorted(sampler.parents(number, losses, violation, 1).tolist()) == [0, 1, 2]
    # generation 2: the best 3 of generation 1's parents and generation 1 (3, 4, 5)
    assert sorted(sampler.parents(number, losses, violation, 2).tolist()) == [1, 2, 3]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"population_size": 1}, "population_size must be"),
        ({"crossover": "blend"}, "crossover must be one of"),
        ({"mutation_prob": 1.5}, "mutation_prob must be"),
        ({"swapping_prob": -0.1}, "swapping_prob must be"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(hpo.SamplerError, match=message):
        make_sampler("nsga2", options)


def test_the_optuna_class_name_gives_nsga2():
    from hpo.samplers import NSGAIISampler

    assert type(NSGAIISampler(population_size=10)).__name__ == "NSGA2Sampler"
    study = hpo.create_study(
        space=[{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
        directions=["minimize", "maximize"],
        sampler=NSGAIISampler(population_size=4),
        seed=1,
    )
    study.optimize(lambda t: (t.params["x"], t.params["x"] ** 2), n_trials=12)
    assert study.info.sampler == "nsga2" and study.info.sampler_options["population_size"] == 4


def test_single_objective_nsga2_improves_on_its_first_generation():
    study = hpo.create_study(
        space=[{"name": f"x{i}", "type": "float", "low": -1.0, "high": 1.0} for i in range(3)],
        sampler="nsga2",
        sampler_options={"population_size": 10},
        seed=0,
    )
    study.optimize(lambda t: sum(v * v for v in t.params.values()), n_trials=60)
    values = [t.value for t in study.trials]
    first, last = min(values[:10]), min(values[10:])
    assert last < first
    assert list(itertools.accumulate(values, min))[-1] == study.best_value
