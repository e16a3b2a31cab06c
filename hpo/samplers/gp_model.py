"""The Gaussian process of the gp sampler: Matérn-5/2 kernel, likelihood, posterior.

Notation (after Rasmussen & Williams, 2006, "Gaussian Processes for Machine
Learning", chapters 2 and 5; R&W below):

    n    training rows;   D  GP features
    X    (n, D) features in [0, 1];   y (n,) losses, standardized
    λ    (D,) inverse squared length scales;   s  signal variance;   σ²  noise
    θ    (D + 2,) = (log λ, log s, log σ²): what a fit moves
    S    (D, n, n) squared differences, S_d,ij = (x_id - x_jd)²;   r² = Σ_d λ_d S_d
    k    Matérn-5/2: s (1 + √5 r + 5/3 r²) exp(-√5 r)
    K    k(X, X) + σ² I = L Lᵀ;   α = K⁻¹ y

A likelihood evaluation computes r, exp(-√5 r) once and takes the kernel and
its slope from them; S is computed once per fit, so r² and the length-scale
gradient are one matrix-vector product each. Where the gradient needs K⁻¹
itself (the trace in R&W eq. 5.9) it comes from LAPACK's potri on L;
everywhere else (α, the posterior variance and its gradient) triangular solves
with L are used, never an inverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.linalg import lapack

from hpo.errors import SamplerError

SQRT5 = np.sqrt(5.0)
MIN_NOISE = 1e-6  # in standardized units: an objective may well be noiseless
JITTER = 1e-9
_LOG_BOUNDS_LAMBDA = (-9.0, 9.0)
_LOG_BOUNDS_SCALE = (np.log(1e-3), np.log(1e3))
_LOG_BOUNDS_NOISE = (np.log(MIN_NOISE), np.log(10.0))
# hyperparameters need not be exact: a loose tolerance halves a fit
_FIT_OPTIONS = {"ftol": 1e-6, "gtol": 1e-4}


def default_start(dim: int) -> np.ndarray:
    """θ at unit length scales, unit signal variance and noise 0.01: (D + 2,)."""
    return np.concatenate([np.zeros(dim), [0.0, np.log(1e-2)]])


def random_starts(dim: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` random θ (D + 2,) around the default one, for a multi-start fit."""
    return [
        np.concatenate(
            [rng.uniform(-2.0, 2.0, dim), [rng.uniform(-1.0, 1.0), rng.uniform(-6.0, -1.0)]]
        )
        for _ in range(count)
    ]


def fit_theta(x: np.ndarray, y: np.ndarray, starts: Sequence[np.ndarray]) -> np.ndarray:
    """θ maximizing log marginal likelihood + log prior, by L-BFGS-B from each start;
    the best local optimum. x (n, D), y (n,).

    (L-BFGS-B's Moré-Thuente line search needs a third of the evaluations that the
    backtracking of gp_optim.py needs on this badly scaled surface: measured 21
    against 59 from the default start on 190 trials of hartmann6.)
    """
    sq = pairwise_sq(x)  # (D, n, n), shared by every evaluation of this fit
    dim = x.shape[1]
    bounds = [_LOG_BOUNDS_LAMBDA] * dim + [_LOG_BOUNDS_SCALE, _LOG_BOUNDS_NOISE]
    best = None
    for theta0 in starts:
        result = optimize.minimize(
            neg_log_posterior,
            theta0,
            args=(sq, y),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options=_FIT_OPTIONS,
        )
        if best is None or result.fun < best.fun:
            best = result
    if best is None:
        raise SamplerError("gp: a fit needs at least one start")
    return np.asarray(best.x)


def pairwise_sq(x: np.ndarray) -> np.ndarray:
    """S (D, n, n): squared differences of each feature between rows of x (n, D)."""
    columns = x.T  # (D, n)
    sq = columns[:, :, None] - columns[:, None, :]
    sq *= sq
    return sq


def neg_log_posterior(theta: np.ndarray, sq: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """-(log marginal likelihood + log prior) and its gradient in θ (D + 2,); sq is S.

    Likelihood: R&W eq. 2.30; gradient: R&W eq. 5.9, ½ tr((α αᵀ - K⁻¹) ∂K/∂θ),
    with ∂K/∂log λ_d = s k'(r²) λ_d S_d (k' = dk/dr² of the unit kernel).
    Prior (Optuna's heuristic, `_gp/prior.py`): -(0.1/λ + 0.1 λ) per dimension,
    s ~ Gamma(2, 1), σ² ~ Gamma(1.1, 30). Where K is not positive definite
    (numerically), a wall: a huge value and no gradient.
    """
    dim, n = sq.shape[0], len(y)
    lam, scale, noise = np.exp(theta[:dim]), np.exp(theta[dim]), np.exp(theta[dim + 1])
    flat = sq.reshape(dim, n * n)  # (D, n²)
    unit, slope = matern_with_slope((lam @ flat).reshape(n, n))  # (n, n) each
    k = scale * unit
    k.flat[:: n + 1] += noise + JITTER
    chol = cholesky(k)
    if chol is None:
        return 1e25, np.zeros_like(theta)
    alpha, _ = lapack.dpotrs(chol, y, lower=1)  # (n,)
    log_ml = -0.5 * y @ alpha - np.sum(np.log(np.diagonal(chol))) - 0.5 * n * np.log(2 * np.pi)
    w = np.multiply.outer(alpha, alpha)  # (n, n): W = α αᵀ - K⁻¹
    w -= _inverse(chol)
    slope *= w
    d_lambda = 0.5 * scale * lam * (flat @ slope.reshape(n * n))
    d_scale = 0.5 * scale * np.einsum("ij,ij->", w, unit)
    d_noise = 0.5 * noise * np.trace(w)
    log_prior = (
        -np.sum(0.1 / lam + 0.1 * lam)
        + (np.log(scale) - scale)
        + (0.1 * np.log(noise) - 30.0 * noise)
    )
    d_prior = np.concatenate([0.1 / lam - 0.1 * lam, [1.0 - scale, 0.1 - 30.0 * noise]])
    gradient = np.concatenate([d_lambda, [d_scale, d_noise]]) + d_prior
    return -float(log_ml + log_prior), -gradient


@dataclass(frozen=True)
class GaussianProcess:
    """A GP conditioned on its training rows: hyperparameters, L and α."""

    x: np.ndarray  # (n, D)
    log_lambda: np.ndarray  # (D,)
    scale: float  # s
    noise: float  # σ²
    chol: np.ndarray  # (n, n) L, lower, Fortran order (what LAPACK takes without a copy)
    alpha: np.ndarray  # (n,) K⁻¹ y

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_restarts: int = 2
    ) -> GaussianProcess:
        """Fit θ on all rows from the default start and `n_restarts` random ones."""
        dim = x.shape[1]
        starts = [default_start(dim), *random_starts(dim, n_restarts, rng)]
        return cls.with_params(x, y, fit_theta(x, y, starts))

    @classmethod
    def with_params(cls, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> GaussianProcess:
        """Condition on x (n, D), y (n,) with hyperparameters θ (R&W Algorithm 2.1, lines 2-3)."""
        dim, n = x.shape[1], len(x)
        log_lambda, scale, noise = theta[:dim], np.exp(theta[dim]), np.exp(theta[dim + 1])
        k = matern(sq_dist(x, x, np.exp(log_lambda)))  # (n, n)
        k *= scale
        k.flat[:: n + 1] += noise + JITTER
        chol = cholesky(k)
        if chol is None:
            raise SamplerError("gp: the kernel matrix is not positive definite")
        alpha, _ = lapack.dpotrs(chol, y, lower=1)
        return cls(x, np.array(log_lambda), float(scale), float(noise), chol, alpha)

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function at z (m, D) (Algorithm 2.1,
        lines 4-6)."""
        k_star = matern(sq_dist(z, self.x, np.exp(self.log_lambda)))  # (m, n)
        k_star *= self.scale
        mean = k_star @ self.alpha
        v, _ = lapack.dtrtrs(self.chol, k_star.T, lower=1)  # (n, m): L⁻¹ k*ᵀ
        var = np.maximum(self.scale - np.einsum("nm,nm->m", v, v), 1e-12)
        return mean, var

    def predict_with_gradient(self, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """Mean (b,), variance (b,) and their gradients (b, D) at points z (b, D).

        ∂k*/∂z = 2 s k'(r²) λ (z - x); ∂mean = ∂k*ᵀ α; ∂var = -2 ∂k*ᵀ K⁻¹ k*,
        with K⁻¹ k* = L⁻ᵀ (L⁻¹ k*): two triangular solves.
        """
        lam = np.exp(self.log_lambda)  # (D,)
        diff = z[:, None, :] - self.x[None, :, :]  # (b, n, D)
        unit, slope = matern_with_slope(np.square(diff) @ lam)  # (b, n) each
        k_star = self.scale * unit  # (b, n)
        mean = k_star @ self.alpha
        v, _ = lapack.dtrtrs(self.chol, k_star.T, lower=1)  # (n, b): L⁻¹ k*ᵀ
        var = np.maximum(self.scale - np.einsum("nb,nb->b", v, v), 1e-12)
        k_inv_k, _ = lapack.dtrtrs(self.chol, v, lower=1, trans=1)  # (n, b): K⁻¹ k*ᵀ
        weights = np.empty((len(z), 2, len(self.x)))  # (b, 2, n)
        np.multiply(slope, self.alpha, out=weights[:, 0])
        np.multiply(slope, k_inv_k.T, out=weights[:, 1])
        both = weights @ diff  # (b, 2, D)
        both *= (2.0 * self.scale) * lam
        return mean, var, both[:, 0], -2.0 * both[:, 1]


def cholesky(k: np.ndarray) -> np.ndarray | None:
    """L (lower, Fortran order) of a symmetric positive definite K (n, n), or None.

    LAPACK directly: this runs dozens of times per fit, where the checks of the
    scipy.linalg wrappers cost more than the arithmetic. K's memory is reused
    (K is symmetric, so its transpose is the Fortran-order matrix LAPACK wants).
    """
    chol, info = lapack.dpotrf(k.T, lower=1, clean=1, overwrite_a=1)
    return chol if info == 0 else None


def _inverse(chol: np.ndarray) -> np.ndarray:
    """K⁻¹ (n, n) from L, in L's memory (potri fills the lower triangle; clean=1 in
    `cholesky` left the upper one zero, so adding the transpose and halving the
    diagonal makes it whole)."""
    inverse, _ = lapack.dpotri(chol, lower=1, overwrite_c=1)
    diagonal = np.diagonal(inverse).copy()
    inverse += inverse.T
    np.fill_diagonal(inverse, diagonal)
    return inverse


def sq_dist(a: np.ndarray, b: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """r² between rows of a (m, D) and b (n, D) with weights λ: (m, n), by
    |a|² + |b|² - 2 a·b (one matrix product; rounding below 0 clipped)."""
    wa, wb = a * np.sqrt(lam), b * np.sqrt(lam)
    r2 = wa @ wb.T
    r2 *= -2.0
    r2 += np.einsum("md,md->m", wa, wa)[:, None]
    r2 += np.einsum("nd,nd->n", wb, wb)[None, :]
    return np.maximum(r2, 0.0, out=r2)


def matern(r2: np.ndarray) -> np.ndarray:
    """Matérn-5/2 with unit variance, as a function of r² (R&W eq. 4.17); r2 is overwritten
    (it becomes exp(-√5 r))."""
    t = np.sqrt(np.multiply(r2, 5.0, out=r2), out=r2)  # √5 r
    unit = t * t
    unit *= 1.0 / 3.0  # 5/3 r²
    unit += 1.0
    unit += t
    unit *= np.exp(np.negative(t, out=t), out=t)
    return unit


def matern_with_slope(r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit Matérn-5/2 and its slope dk/dr² = -(5/6)(1 + √5 r) exp(-√5 r), from one
    square root and one exponential."""
    t = np.sqrt(5.0 * r2)  # √5 r
    slope = t + 1.0  # 1 + √5 r
    unit = t * t
    unit *= 1.0 / 3.0
    unit += slope  # 1 + √5 r + 5/3 r²
    e = np.exp(-t, out=t)
    unit *= e
    slope *= e
    slope *= -5.0 / 6.0
    return unit, slope
