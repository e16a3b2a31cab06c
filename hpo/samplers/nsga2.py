"""NSGA-II: a genetic algorithm for several objectives.

Deb, Pratap, Agarwal & Meyarivan (2002), "A fast and elitist multiobjective
genetic algorithm: NSGA-II", IEEE Trans. Evol. Comput. 6(2). One ask:

    the new trial's generation: its position among the trials // population_size
    -> that generation's parents: the elitist selection, generation by generation,
       of the best population_size of (previous parents + previous offspring), by
       non-domination rank, then crowding distance (hpo.pareto)
    -> two parents by binary tournament (the crowded-comparison operator)
    -> crossover (SBX or uniform), then mutation, in the space's unit cube

Generation 0 is uniform random. Constraints by constrained domination (Deb,
2000): feasible beats infeasible, of two infeasible the smaller total
violation wins. The sampler keeps no state: the generations and parents are
recomputed from the trials at each ask (a few sorts of 2 x population_size
points per generation), so any process, after any history, proposes the
same point. Trials still running when their generation ends simply do not
take part in selection; failed ones leave a hole.

Tree-structured spaces: a coordinate a parent lacks (its branch not chosen)
takes the other parent's value, or a uniform draw if neither has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.pareto import crowding_distance, nondominated_ranks
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.samplers.history import Goal, HistoryEncoder
from hpo.space import Branch, Categorical, Space

CROSSOVERS = ("sbx", "uniform")
MUTATIONS = ("polynomial", "uniform")
SBX_CROSS = 0.5  # each numeric coordinate is crossed by SBX with this probability (Deb's code)


class NSGA2Sampler:
    """NSGA-II (non-dominated sorting genetic algorithm): several objectives, constraints.

    population_size: trials per generation (the first generation is random);
    crossover: "sbx" (simulated binary crossover, Deb & Agrawal 1995: a child
    near its parents, spread set by `eta`; the default, as in the NSGA-II
    paper for real variables: it can make values no parent has, which
    uniform crossover cannot) or "uniform" (each coordinate from either
    parent, as Optuna's default); crossover_prob: the chance a child is a
    crossover, else a copy of its first parent; swapping_prob: the chance a
    coordinate comes from the second parent (the second SBX child);
    mutation: "polynomial" (Deb & Goyal 1996, spread set by `eta`;
    categorical coordinates are redrawn) or "uniform" (redrawn);
    mutation_prob: per coordinate, None for 1 / the number of coordinates;
    eta: the distribution index of SBX and polynomial mutation (larger:
    children closer to their parents; 20 in the NSGA-II paper).
    """

    multi_objective = True  # and one objective: a plain elitist genetic algorithm

    def __init__(
        self,
        population_size: int = 50,
        crossover: str = "sbx",
        crossover_prob: float = 0.9,
        swapping_prob: float = 0.5,
        mutation: str = "polynomial",
        mutation_prob: float | None = None,
        eta: float = 20.0,
    ) -> None:
        check.integer("nsga2", "population_size", population_size, 2)
        check.one_of("nsga2", "crossover", crossover, CROSSOVERS)
        check.number("nsga2", "crossover_prob", crossover_prob, 0.0, 1.0)
        check.number("nsga2", "swapping_prob", swapping_prob, 0.0, 1.0)
        check.one_of("nsga2", "mutation", mutation, MUTATIONS)
        if mutation_prob is not None:
            check.number("nsga2", "mutation_prob", mutation_prob, 0.0, 1.0)
        check.number("nsga2", "eta", eta, 0.0, math.inf)
        self.population_size, self.crossover = population_size, crossover
        self.crossover_prob, self.swapping_prob = crossover_prob, swapping_prob
        self.mutation, self.mutation_prob, self.eta = mutation, mutation_prob, eta
        self._encode = HistoryEncoder()

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Goal = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        history = self._encode(space, trials, direction)
        generation = len(trials) // self.population_size
        parents = self.parents(history.number, history.losses, history.violation, generation)
        if len(parents) == 0:
            return space.decode(rng.random(len(space)))
        losses, violation = history.losses[parents], history.violation[parents]
        ranks = nondominated_ranks(losses, violation)
        distance = _crowding(losses, ranks)
        first = parents[_tournament(ranks, distance, rng)]
        second = parents[_tournament(ranks, distance, rng)]
        child = self._child(space, history.x[first], history.x[second], rng)
        return space.decode(child)

    def parents(
        self, number: np.ndarray, losses: np.ndarray, violation: np.ndarray, generation: int
    ) -> np.ndarray:
        """Indices into the completed trials (trial numbers `number` (n,), `losses`
        (n, k), `violation` (n,)) of the parents of `generation`: generation 1's are
        the best of generation 0, each later one's the best of the previous parents and
        the previous generation's offspring (elitism)."""
        born = number // self.population_size  # (n,) each completed trial's generation
        population = np.zeros(0, dtype=int)
        for g in range(generation):
            pool = np.concatenate([population, np.flatnonzero(born == g)])
            population = pool[_select(losses[pool], violation[pool], self.population_size)]
        return population

    def _child(
        self, space: Space, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """A child (d,) of two parents (d,) in the unit cube (NaN where inactive)."""
        d = len(space)
        categorical = np.array([isinstance(dim.param, Categorical | Branch) for dim in space.dims])
        # a coordinate one parent lacks: the other's; neither has it: a uniform draw
        first = np.where(np.isnan(first), second, first)
        second = np.where(np.isnan(second), first, second)
        fresh = rng.random(d)  # (d,)
        first = np.where(np.isnan(first), fresh, first)
        second = np.where(np.isnan(second), fresh, second)
        child = first.copy()
        if rng.random() < self.crossover_prob:
            other = second
            if self.crossover == "sbx":
                crossed = rng.random(d) < SBX_CROSS
                one, two = _sbx(first, second, self.eta, rng)
                numeric = crossed & ~categorical
                child = np.where(numeric, one, first)
                other = np.where(numeric, two, second)
            swap = rng.random(d) < self.swapping_prob
            child = np.where(swap, other, child)
        return self._mutate(child, categorical, rng)

    def _mutate(
        self, child: np.ndarray, categorical: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Each coordinate mutated with mutation_prob (default 1/d)."""
        d = len(child)
        probability = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(d, 1)
        mutate = rng.random(d) < probability
        redrawn = rng.random(d)
        if self.mutation == "polynomial":
            moved = _polynomial(child, self.eta, rng)
            redrawn = np.where(categorical, redrawn, moved)
        return np.clip(np.where(mutate, redrawn, child), 0.0, 1.0)


def _select(losses: np.ndarray, violation: np.ndarray, size: int) -> np.ndarray:
    """Indices of the best `size` of the points (n, k): whole fronts by rank, the last
    one taken by decreasing crowding distance (Deb et al. 2002, section III-C); in
    order of rank, a tie in distance by position."""
    if len(losses) <= size:
        return np.arange(len(losses))
    ranks = nondominated_ranks(losses, violation)
    distance = _crowding(losses, ranks)
    return np.lexsort((-distance, ranks))[:size]


def _crowding(losses: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """(n,) each point's crowding distance within its own front."""
    distance = np.zeros(len(losses))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        distance[members] = crowding_distance(losses[members])
    return distance


def _tournament(ranks: np.ndarray, distance: np.ndarray, rng: np.random.Generator) -> int:
    """Binary tournament by the crowded-comparison operator (Deb et al. 2002, section
    III-C): the lower rank wins, then the larger crowding distance, then the first drawn."""
    a, b = (int(i) for i in rng.integers(len(ranks), size=2))
    if ranks[a] != ranks[b]:
        return a if ranks[a] < ranks[b] else b
    return b if distance[b] > distance[a] else a


def _sbx(
    first: np.ndarray, second: np.ndarray, eta: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated binary crossover on [0, 1] (Deb & Agrawal, 1995, "Simulated binary
    crossover for continuous search space", Complex Systems 9; the bounded form of
    Deb's NSGA-II code, `realcross`): two children (d,) spread around the parents
    (d,) with a spread factor beta whose density is bounded so both stay in [0, 1]."""
    low, high = np.minimum(first, second), np.maximum(first, second)
    gap = np.maximum(high - low, 1e-14)
    u = rng.random(len(first))
    power = 1.0 / (eta + 1.0)

    def spread(beta: np.ndarray) -> np.ndarray:
        alpha = 2.0 - beta ** -(eta + 1.0)
        return np.where(
            u <= 1.0 / alpha,
            (u * alpha) ** power,
            (1.0 / np.maximum(2.0 - u * alpha, 1e-300)) ** power,
        )

    one = 0.5 * (low + high - spread(1.0 + 2.0 * low / gap) * gap)
    two = 0.5 * (low + high + spread(1.0 + 2.0 * (1.0 - high) / gap) * gap)
    ordered = first <= second  # each parent's child: the one on its side
    one, two = np.where(ordered, one, two), np.where(ordered, two, one)
    same = high - low < 1e-14  # equal parents: nothing to cross
    one, two = np.where(same, first, one), np.where(same, second, two)
    return np.clip(one, 0.0, 1.0), np.clip(two, 0.0, 1.0)


def _polynomial(x: np.ndarray, eta: float, rng: np.random.Generator) -> np.ndarray:
    """Polynomial mutation on [0, 1] (Deb & Goyal, 1996, "A combined genetic adaptive
    search (GeneAS) for engineering design"; the bounded form of Deb's NSGA-II code,
    `real_mutate_ind`): each coordinate (d,) moved by a perturbation whose density
    peaks at zero and reaches both ends of the interval."""
    u = rng.random(len(x))
    power = 1.0 / (eta + 1.0)
    below = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - x) ** (eta + 1.0)
    above = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * x ** (eta + 1.0)
    delta = np.where(u <= 0.5, below**power - 1.0, 1.0 - above**power)
    return np.clip(x + delta, 0.0, 1.0)
