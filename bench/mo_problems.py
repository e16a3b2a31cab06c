"""Benchmark problems of several objectives, written from their published formulas.

Each problem is a dict in the neutral format of `bench/problems.py`:
  space: a list of parameter specs (here all floats on [0, 1]);
  fn(params: dict) -> list of objective values, every one minimized;
  constraints(params: dict) -> list of constraint values, feasible when all <= 0
      (only the constrained problem has it);
  reference: the fixed reference point (one per objective) the benchmark's
      hypervolume is measured against;
  source: where the formulas come from.

Sizes: the ZDT problems are defined for any number n of variables (the paper
uses n = 30); here n = 10, and DTLZ2 with M = 3 objectives and k = 5 (n = 7
variables; the paper suggests k = 10): model-based samplers are meant for
budgets of 100-300 trials, and so is this benchmark. C2-DTLZ2 uses the same
DTLZ2 with r = 0.4, as Jain & Deb do for three objectives: about 14% of
uniform random points are feasible.
"""

import math

import numpy as np

ZDT_N = 10
DTLZ_M, DTLZ_K = 3, 5
C2_RADIUS = 0.4  # Jain & Deb (2014): r = 0.4 for three objectives, 0.5 otherwise


def _x(p, n):
    return np.array([p[f"x{i}"] for i in range(n)])


def _zdt_g(x):
    """g(x_2..x_n) = 1 + 9 / (n - 1) * sum x_i (Zitzler, Deb & Thiele, 2000, eq. for T1-T3)."""
    return 1.0 + 9.0 * float(np.sum(x[1:])) / (len(x) - 1)


def zdt1(p):
    """ZDT1: convex front f2 = 1 - sqrt(f1) (Zitzler, Deb & Thiele, 2000, T1)."""
    x = _x(p, ZDT_N)
    f1, g = float(x[0]), _zdt_g(x)
    return [f1, g * (1.0 - math.sqrt(f1 / g))]


def zdt2(p):
    """ZDT2: non-convex front f2 = 1 - f1^2 (T2)."""
    x = _x(p, ZDT_N)
    f1, g = float(x[0]), _zdt_g(x)
    return [f1, g * (1.0 - (f1 / g) ** 2)]


def zdt3(p):
    """ZDT3: a front of five disconnected pieces (T3)."""
    x = _x(p, ZDT_N)
    f1, g = float(x[0]), _zdt_g(x)
    return [f1, g * (1.0 - math.sqrt(f1 / g) - (f1 / g) * math.sin(10.0 * math.pi * f1))]


def _dtlz2(x, m):
    """DTLZ2 (Deb, Thiele, Laumanns & Zitzler, 2005, "Scalable test problems for
    evolutionary multiobjective optimization", section 6.2 / eq. 7 of the 2002 report):
    g = sum over the last k variables of (x_i - 0.5)^2;
    f_i = (1 + g) prod_{j < m - i} cos(x_j pi/2) * (sin(x_{m-i} pi/2) for i > 0)."""
    g = float(np.sum((x[m - 1 :] - 0.5) ** 2))
    f = []
    for i in range(m):
        value = 1.0 + g
        for j in range(m - 1 - i):
            value *= math.cos(x[j] * math.pi / 2)
        if i > 0:
            value *= math.sin(x[m - 1 - i] * math.pi / 2)
        f.append(value)
    return f


def dtlz2(p):
    """DTLZ2, three objectives: the front is the unit sphere's positive octant."""
    return _dtlz2(_x(p, DTLZ_M + DTLZ_K - 1), DTLZ_M)


def c2_dtlz2_constraints(p):
    """C2-DTLZ2 (Jain & Deb, 2014, "An evolutionary many-objective optimization
    algorithm using reference-point based nondominated sorting approach, part II",
    IEEE TEC 18(4), problem C2-DTLZ2): feasible only near the front's corners and
    its centre, c = min(min_i [(f_i - 1)^2 + sum_{j != i} f_j^2 - r^2],
    sum_i (f_i - 1/sqrt(M))^2 - r^2) <= 0."""
    f = np.array(dtlz2(p))
    m = len(f)
    corners = min((f[i] - 1.0) ** 2 + float(np.sum(np.delete(f, i) ** 2)) for i in range(m))
    centre = float(np.sum((f - 1.0 / math.sqrt(m)) ** 2))
    return [min(corners, centre) - C2_RADIUS**2]


def _unit(n):
    return [
        {"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0, "log": False} for i in range(n)
    ]


ZDT_SOURCE = "Zitzler, Deb & Thiele (2000), Evolutionary Computation 8(2), 173-195"
DTLZ_SOURCE = "Deb, Thiele, Laumanns & Zitzler (2005), Evolutionary Multiobjective Optimization"

PROBLEMS = {
    "zdt1": {"space": _unit(ZDT_N), "fn": zdt1, "reference": [1.1, 11.0], "source": ZDT_SOURCE},
    "zdt2": {"space": _unit(ZDT_N), "fn": zdt2, "reference": [1.1, 11.0], "source": ZDT_SOURCE},
    "zdt3": {"space": _unit(ZDT_N), "fn": zdt3, "reference": [1.1, 11.0], "source": ZDT_SOURCE},
    "dtlz2": {
        "space": _unit(DTLZ_M + DTLZ_K - 1),
        "fn": dtlz2,
        "reference": [2.5, 2.5, 2.5],
        "source": DTLZ_SOURCE,
    },
    "c2_dtlz2": {
        "space": _unit(DTLZ_M + DTLZ_K - 1),
        "fn": dtlz2,
        "constraints": c2_dtlz2_constraints,
        "reference": [2.5, 2.5, 2.5],
        "source": "Jain & Deb (2014), IEEE Trans. Evol. Comput. 18(4), 602-622",
    },
}
