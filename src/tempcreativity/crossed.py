"""A fast REML fit of the crossed model ``rating ~ temperature + (1 | participant) + (1 | story)``, for power
simulations that refit it thousands of times on one design.

It maximises the same restricted likelihood as statsmodels' ``mixedlm`` with variance components (ratings.py's
crossed fit), profiled as lme4 does: the residual variance and the fixed effects are solved for in closed form,
leaving the two relative standard deviations theta = (sd_participant, sd_story) / sd_residual, found by
Nelder-Mead within theta >= 0 (derivative-free, so it can leave and reach the boundary theta = 0, where the
deviance's slope vanishes and a gradient method stops). With V = sigma^2 (I + Z Lambda Lambda' Z'), the REML
deviance up to a constant is log|A| + log|X' H^-1 X| + (n - p) log r^2, A = Lambda Z'Z Lambda + I, r^2 the
generalised residual sum of squares; all of it comes from the design's cross-products (computed once) and the
ratings' (per fit), through a Schur complement on the smaller factor, so a fit costs milliseconds whatever the
number of ratings. The standard error of a fixed effect is the model-based sqrt(sigma^2 (X' H^-1 X)^-1) (lme4's);
statsmodels inverts the observed information of all parameters together, which on the study's ratings gives
standard errors up to about 1% larger. The test is the same Wald z test statsmodels reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from scipy.linalg.lapack import dpotrf, dpotrs
from scipy.stats import norm


@dataclass(frozen=True)
class CrossedFitResult:
    """One fit: the fixed effects, the temperature effect's standard error and two-sided p (Wald z), and the
    variance components (REML)."""

    intercept: float
    beta: float
    se: float
    p: float
    var_participant: float
    var_story: float
    var_residual: float
    deviance: float


class CrossedModel:
    """The crossed model on one design (who rated which story), refitted to many rating vectors.

    Args:
        participant: each rating's participant index (0..P-1).
        story: each rating's story index (0..S-1).
        predictor: each rating's predictor value (temperature).
    """

    def __init__(self, participant: np.ndarray, story: np.ndarray, predictor: np.ndarray) -> None:
        participant, story = np.asarray(participant), np.asarray(story)
        self.X = np.column_stack([np.ones(participant.size), np.asarray(predictor, dtype=float)])
        self.n, self.p = self.X.shape
        # Eliminate the larger factor (diagonal block), keep the smaller one for the Cholesky factorisation.
        swap = np.unique(participant).size < np.unique(story).size
        self.big, self.small = (story, participant) if swap else (participant, story)
        self.swap = swap
        self.n_big, self.n_small = int(self.big.max()) + 1, int(self.small.max()) + 1
        self.count_big = np.bincount(self.big, minlength=self.n_big).astype(float)
        self.count_small = np.bincount(self.small, minlength=self.n_small).astype(float)
        incidence = np.zeros((self.n_big, self.n_small))
        np.add.at(incidence, (self.big, self.small), 1.0)
        self.incidence = incidence
        self.equal_counts = bool(np.all(self.count_big == self.count_big[0]))
        self.cross = incidence.T @ incidence if self.equal_counts else None
        if self.p != 2:
            raise ValueError("CrossedModel fits one predictor and an intercept")
        self.ZbX = self._sum_by(self.big, self.n_big, self.X)
        self.ZsX = self._sum_by(self.small, self.n_small, self.X)
        self.XtX = self.X.T @ self.X

    @staticmethod
    def _sum_by(index: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
        out = np.zeros((size,) + values.shape[1:])
        np.add.at(out, index, values)
        return out

    def _statistics(self, y: np.ndarray) -> tuple:
        """The ratings' cross-products with the design, in the forms ``_profile`` needs."""
        W_big = np.column_stack([self.ZbX, np.bincount(self.big, y, self.n_big)])  # [X, y] summed per big level
        W_small = np.column_stack([self.ZsX, np.bincount(self.small, y, self.n_small)])
        gram = np.empty((self.p + 1, self.p + 1))
        gram[: self.p, : self.p] = self.XtX
        gram[: self.p, self.p] = gram[self.p, : self.p] = self.X.T @ y
        gram[self.p, self.p] = y @ y
        if self.equal_counts:  # d_big is one number: precompute what it scales
            return W_big, W_small, gram, W_big.T @ W_big, self.incidence.T @ W_big
        return W_big, W_small, gram, None, None

    def _profile(self, a: float, b: float, stats: tuple) -> tuple[float, np.ndarray, float, np.ndarray]:
        """Deviance (up to a constant), fixed effects, r^2 and X' H^-1 X at theta = (a, b) (big, small factor).

        With D = diag(a^2 count_big + 1) and N the big x small incidence, the small factor's Schur complement is
        diag(b^2 count_small + 1) - a^2 b^2 N' D^-1 N, and [X, y]' H^-1 [X, y] = [X, y]'[X, y] - a^2 W_b' D^-1
        W_b - rhs' S^-1 rhs with rhs = b W_s - a^2 b N' D^-1 W_b (W_b, W_s: [X, y] summed per level)."""
        W_big, W_small, gram, big_gram, big_cross = stats
        d_big = a * a * self.count_big + 1.0
        if self.equal_counts:
            schur = (-(a * a * b * b) / d_big[0]) * self.cross
            rhs = b * W_small - (a * a * b / d_big[0]) * big_cross
            quadratic = (a * a / d_big[0]) * big_gram
        else:
            scaled = self.incidence / d_big[:, None]
            schur = -(a * a * b * b) * (self.incidence.T @ scaled)
            rhs = b * W_small - (a * a * b) * (scaled.T @ W_big)
            quadratic = (a * a) * (W_big.T @ (W_big / d_big[:, None]))
        schur[np.diag_indices(self.n_small)] += b * b * self.count_small + 1.0
        factor, info = dpotrf(schur, lower=1, clean=0, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError("the crossed model's Schur complement is not positive definite")
        solved, _ = dpotrs(factor, rhs, lower=1)
        reduced = gram - quadratic - rhs.T @ solved
        xhx, xhy = reduced[: self.p, : self.p], reduced[: self.p, self.p]
        det = xhx[0, 0] * xhx[1, 1] - xhx[0, 1] * xhx[1, 0]
        inverse = np.array([[xhx[1, 1], -xhx[0, 1]], [-xhx[1, 0], xhx[0, 0]]]) / det
        beta = inverse @ xhy
        r2 = max(float(reduced[self.p, self.p] - xhy @ beta), 1e-300)
        log_det = np.log(d_big).sum() + 2.0 * np.log(np.diagonal(factor)).sum() + math.log(det)
        return log_det + (self.n - self.p) * math.log(r2), beta, r2, inverse

    def fit(self, y: np.ndarray, start: tuple[float, float] = (1.0, 1.0)) -> CrossedFitResult:
        """REML fit to one rating vector.

        Args:
            y: the ratings, in the order of the design's rows.
            start: starting relative standard deviations (participant, story).

        Returns:
            The estimates, the temperature effect's SE and p, and the variance components.
        """
        y = np.asarray(y, dtype=float)
        stats = self._statistics(y)
        begin = (start[1], start[0]) if self.swap else start

        def deviance(theta: np.ndarray) -> float:
            return self._profile(abs(theta[0]), abs(theta[1]), stats)[0]

        found = scipy.optimize.minimize(
            deviance,
            np.asarray(begin, dtype=float),
            method="Nelder-Mead",
            bounds=[(0, None), (0, None)],
            options={"xatol": 1e-4, "fatol": 1e-6, "maxfev": 2000},
        )
        theta = np.abs(found.x)
        value, beta, r2, inverse = self._profile(theta[0], theta[1], stats)
        scale = r2 / (self.n - self.p)
        covariance = scale * inverse
        se = math.sqrt(covariance[1, 1])
        var_big, var_small = theta[0] ** 2 * scale, theta[1] ** 2 * scale
        var_participant, var_story = (var_small, var_big) if self.swap else (var_big, var_small)
        return CrossedFitResult(
            intercept=float(beta[0]),
            beta=float(beta[1]),
            se=se,
            p=float(2 * norm.sf(abs(beta[1]) / se)),
            var_participant=var_participant,
            var_story=var_story,
            var_residual=scale,
            deviance=value + (self.n - self.p) * (1 + math.log(2 * math.pi / (self.n - self.p))),
        )
