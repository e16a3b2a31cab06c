"""Many small box-constrained minimizations at once: batched projected BFGS.

The acquisition is maximized from several starts; each start is its own
problem, but evaluating them together costs little more than one. One
L-BFGS-B run on their sum (what the gp sampler did first) shares a line
search and a stopping test between unrelated problems: every backtrack of
one is an evaluation of all (3-5 evaluations per iteration, measured), and
the sum's relative decrease stopped them all while some had far to go. Here
each problem keeps its own inverse-Hessian approximation, step and stopping
test, and only the problems still running are evaluated.

Method: projected quasi-Newton (Bertsekas, 1982, "Projected Newton methods
for optimization problems with simple constraints", SIAM J. Control Optim.
20(2)): variables at a bound whose gradient points outward are held; the
others move along -H g (H the BFGS inverse Hessian, Nocedal & Wright, 2006,
eq. 6.17, scaled before the first update by eq. 6.20), the step is projected
onto the box and backtracked until Armijo's condition holds along the
projection arc. A problem stops when its projected gradient is below `gtol`
(L-BFGS-B's pgtol), its value stops decreasing (L-BFGS-B's factr), or no
step decreases it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Objective = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
_ARMIJO = 1e-4
_BACKTRACKS = 30
_FTOL = 2.2e-9  # L-BFGS-B's default: factr 1e7 times the machine epsilon


def minimize_batched(
    fun: Objective,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    gtol: float = 1e-4,
    ftol: float = _FTOL,
    maxiter: int = 200,
    behind: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize b independent functions over boxes, from x0 (b, D) within lower/upper (b, D).

    fun(x (k, D)) -> values (k,), gradients (k, D), for any k rows. Equal
    bounds hold a coordinate fixed. A problem stops when its projected gradient's
    largest entry is at most gtol, or a step decreases its value by at most ftol
    relative to max(|value|, 1); with `behind`, also when its value is more than
    `behind` above the lowest value any problem has reached (for a caller that
    wants only the best of them). Returns the points (b, D) and values (b,).
    """
    x_out = np.clip(x0, lower, upper)
    f_out, g = fun(x_out)
    state = _State(np.arange(len(x_out)), x_out.copy(), f_out.copy(), g, lower, upper)
    for _ in range(maxiter):
        pg = state.x - np.clip(state.x - state.g, state.lower, state.upper)
        state.keep(np.max(np.abs(pg), axis=1) > gtol, x_out, f_out)
        if state.size == 0:
            break
        step = state.direction()
        moved, x_new, f_new, g_new = _backtrack(fun, state, step)
        running = moved & (state.f - f_new > ftol * np.maximum(np.abs(state.f), 1.0))
        state.update(x_new, f_new, g_new)
        if behind is not None:  # (f_out holds the stopped problems' values, and values
            # above the current ones for the running problems: its minimum is the lowest)
            running &= state.f <= min(f_out.min(), state.f.min()) + behind
        state.keep(running, x_out, f_out)
    state.keep(np.zeros(state.size, dtype=bool), x_out, f_out)
    return x_out, f_out


class _State:
    """The problems still running, compacted: rows[i] is the problem of row i."""

    def __init__(
        self,
        rows: np.ndarray,
        x: np.ndarray,
        f: np.ndarray,
        g: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self.rows, self.x, self.f, self.g = rows, x, f, g
        self.lower, self.upper = lower, upper
        self.pinned = lower == upper  # (k, D)
        dim = x.shape[1]
        self.h = np.broadcast_to(np.eye(dim), (len(x), dim, dim)).copy()  # inverse Hessians
        self.scaled = False  # H has been scaled by a first curvature pair (all rows together)

    @property
    def size(self) -> int:
        return len(self.rows)

    def keep(self, running: np.ndarray, x_out: np.ndarray, f_out: np.ndarray) -> None:
        """Write the rows that stop to the output and drop them."""
        if running.all():
            return
        stopped = self.rows[~running]
        x_out[stopped], f_out[stopped] = self.x[~running], self.f[~running]
        for name in ("rows", "x", "f", "g", "lower", "upper", "pinned", "h"):
            setattr(self, name, getattr(self, name)[running])

    def direction(self) -> np.ndarray:
        """The quasi-Newton step (k, D) on the free variables: -H_FF g_F (H g with the held
        gradients zeroed is H_FF g_F on the free rows); held ones do not move."""
        x, g = self.x, self.g
        held = self.pinned | ((x <= self.lower) & (g > 0)) | ((x >= self.upper) & (g < 0))
        g_free = np.where(held, 0.0, g)
        step = -np.matmul(self.h, g_free[:, :, None])[:, :, 0]
        step[held] = 0.0
        if not self.scaled:  # no curvature known yet: a first step of length at most 1
            step /= np.maximum(np.linalg.norm(g_free, axis=1), 1.0)[:, None]
        return step

    def update(self, x: np.ndarray, f: np.ndarray, g: np.ndarray) -> None:
        """Move to the new points and update H by BFGS where the curvature is positive."""
        s, y = x - self.x, g - self.g  # (k, D)
        sy, yy = np.einsum("kd,kd->k", s, y), np.einsum("kd,kd->k", y, y)
        good = sy > 1e-10 * yy
        if not self.scaled:
            self.h *= np.where(good, sy / np.maximum(yy, 1e-300), 1.0)[:, None, None]
            self.scaled = True
        rho = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)[:, None]  # (k, 1)
        hy = np.einsum("kij,kj->ki", self.h, y)  # (k, D)
        yhy = np.einsum("ki,ki->k", y, hy)[:, None]
        # H+ = H - ρ (H y sᵀ + s yᵀ H) + ρ (1 + ρ yᵀ H y) s sᵀ (N&W eq. 6.17 expanded),
        # as H + s uᵀ - ρ (H y) sᵀ with u = ρ (1 + ρ yᵀ H y) s - ρ H y
        rho_hy = rho * hy
        u = rho * (1.0 + rho * yhy) * s - rho_hy
        self.h += s[:, :, None] * u[:, None, :] - rho_hy[:, :, None] * s[:, None, :]
        self.x, self.f, self.g = x, f, g


def _backtrack(fun: Objective, state: _State, step: np.ndarray) -> tuple[np.ndarray, ...]:
    """Armijo backtracking along the projection arc, each row with its own step length.

    Returns which rows found a decrease, and the new points, values, gradients
    (the old ones where none was found).
    """
    x, f, g = state.x, state.f, state.g
    trial = np.clip(x + step, state.lower, state.upper)
    values, gradients = fun(trial)
    ok = values <= f + _ARMIJO * np.einsum("kd,kd->k", g, trial - x)
    if ok.all():  # the usual case: every full quasi-Newton step is accepted
        return ok, trial, values, gradients
    moved = ok.copy()
    x_new, f_new, g_new = np.where(ok[:, None], trial, x), np.where(ok, values, f), g.copy()
    g_new[ok] = gradients[ok]
    todo, t = np.flatnonzero(~ok), 1.0
    for _ in range(_BACKTRACKS - 1):
        t *= 0.5  # every row still here has failed at each longer step
        trial = np.clip(x[todo] + t * step[todo], state.lower[todo], state.upper[todo])
        values, gradients = fun(trial)
        ok = values <= f[todo] + _ARMIJO * np.einsum("kd,kd->k", g[todo], trial - x[todo])
        done = todo[ok]
        moved[done] = True
        x_new[done], f_new[done], g_new[done] = trial[ok], values[ok], gradients[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            break
    return moved, x_new, f_new, g_new
