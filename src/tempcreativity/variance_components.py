"""REML fits of linear models with one or two crossed random intercepts (variance components), for ratings:
``y = X beta + Z_1 u_1 [+ Z_2 u_2] + e`` with ``u_k ~ N(0, sigma_k^2 I)`` and ``e ~ N(0, sigma^2 I)``.

statsmodels' MixedLM fits the same models, but its variance-component form builds dense indicator matrices of
every level (a million ratings by 200,000 participants asked for 298 GiB). Here nothing is dense but one matrix over
the levels of the smaller factor: with ``theta_k = sigma_k^2 / sigma^2`` and ``H = I + sum_k theta_k Z_k Z_k'``
(``V = sigma^2 H``), every quantity the fit needs is a quadratic form ``v' H^-1 w`` and ``log |H|``, which follow from
the sparse incidence counts by eliminating the larger factor (a diagonal block) and factoring the Schur complement
over the smaller one (``q_2 x q_2``; see ``_Design.gram``):

    v' H^-1 w = v'w - theta_1 c_1' A^-1 e_1 - theta_2 g_v' S^-1 g_w,    log |H| = sum log a + log |S|,
    a = 1 + theta_1 d_1,  S = I + theta_2 D_2 - theta_1 theta_2 N' A^-1 N,  g_v = c_2 - theta_1 N' A^-1 c_1,

with ``c_k = Z_k' v`` (per-level sums), ``d_k`` the level counts and ``N = Z_1' Z_2`` the crossed counts. These are
smooth in theta at and just below 0, so a variance estimated at 0 needs no special case.

The estimates are statsmodels' (tests compare them on random designs, and on the study's ratings the published
values): theta maximises the REML log-likelihood with beta and sigma^2 profiled out; beta is the GLS estimate;
sigma^2 = r' H^-1 r / (n - p); standard errors come, as statsmodels' do, from the inverse of the observed Hessian of
``l(beta, theta) = -1/2 [log |H| + (n - p) log(r' H^-1 r) + log |X' H^-1 X|]`` (beta and theta together; numerical
second differences of the closed form), and p-values from the normal distribution; the fitted values include the
predicted random intercepts (BLUPs, ``u_k = theta_k Z_k' H^-1 r``).

Bound: the smaller factor of a crossed model may have at most MAX_DENSE_LEVELS levels (its Schur complement is dense:
MAX_DENSE_LEVELS^2 x 8 bytes = 128 MB, factored once per likelihood evaluation). One factor has no bound."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, sparse, stats

MAX_DENSE_LEVELS = 4000


class DesignTooLarge(ValueError):
    """A crossed design whose smaller factor has more levels than MAX_DENSE_LEVELS."""


@dataclass
class RandomInterceptFit:
    """What a fit reports: fixed effects (by name) with standard errors and normal p-values, the residual variance
    (``scale``), each factor's variance, the fitted values (fixed part plus predicted random intercepts), and the
    fixed-effect prediction ``X beta``."""

    fe_params: dict[str, float]
    bse_fe: dict[str, float]
    pvalues: dict[str, float]
    scale: float
    variances: dict[str, float]
    fittedvalues: np.ndarray = field(repr=False)
    fixed_prediction: np.ndarray = field(repr=False)
    endog: np.ndarray = field(repr=False)
    theta: dict[str, float] = field(default_factory=dict)


class _Design:
    """The sufficient statistics of a design: per-level sums of y and of X's columns, level counts, crossed counts."""

    def __init__(self, y: np.ndarray, exog: np.ndarray, codes: list[np.ndarray]):
        self.n, self.p = exog.shape
        self.columns = np.column_stack([y, exog])  # v = (y, x_1, ..., x_p)
        self.cross = self.columns.T @ self.columns
        levels = [int(code.max()) + 1 for code in codes]
        self.k = len(codes)
        self.counts = [np.bincount(code, minlength=q).astype(float) for code, q in zip(codes, levels)]
        self.sums = [
            np.column_stack([np.bincount(code, weights=column, minlength=q) for column in self.columns.T])
            for code, q in zip(codes, levels)
        ]
        self.codes = codes
        self._forms: dict[tuple, tuple[float, np.ndarray] | None] = {}
        if self.k == 2:
            ones = np.ones(self.n)
            self.crossed = sparse.csr_matrix((ones, (codes[0], codes[1])), shape=(levels[0], levels[1]))
            self.crossed.sum_duplicates()
            # N' A^-1 N = sum over the distinct level counts c of the larger factor: N_c' N_c / (1 + theta_1 c), where
            # N_c holds its levels with count c: precomputed when there are few distinct counts (a survey gives each
            # participant about the same number of stories), else a sparse product per evaluation.
            distinct = np.unique(self.counts[0])
            self.by_count = None
            if len(distinct) * levels[1] ** 2 * 8 <= 512 << 20:
                parts = [self.crossed[self.counts[0] == value] for value in distinct]
                self.by_count = [(value, (part.T @ part).toarray()) for value, part in zip(distinct, parts)]

    def coupling(self, theta_1: float, a: np.ndarray) -> np.ndarray:
        """``N' A^-1 N`` (dense, over the smaller factor's levels), ``a = 1 + theta_1 d_1``."""
        if self.by_count is None:
            return (self.crossed.T @ sparse.diags(1.0 / a) @ self.crossed).toarray()
        total = np.zeros_like(self.by_count[0][1])
        for count, block in self.by_count:
            total += block / (1.0 + theta_1 * count)
        return total

    def gram(self, theta: np.ndarray) -> tuple[float, np.ndarray, dict] | None:
        """``log |H|`` and the matrix of ``v' H^-1 w`` over v, w in (y, x_1, ..., x_p) at ``theta``; None where H is
        not positive definite (a theta below 0 by more than a step of a numerical derivative)."""
        a = 1.0 + theta[0] * self.counts[0]
        if np.any(a <= 0):
            return None
        scaled_1 = self.sums[0] / a[:, None]  # A^-1 c_1
        gram = self.cross - theta[0] * self.sums[0].T @ scaled_1
        logdet = float(np.log(a).sum())
        parts: dict = {"a": a}
        if self.k == 2:
            schur = self.coupling(theta[0], a) * (-theta[0] * theta[1])  # - theta_1 theta_2 N' A^-1 N
            schur[np.diag_indices_from(schur)] += 1.0 + theta[1] * self.counts[1]
            try:
                factor = linalg.cho_factor(schur, lower=True, check_finite=False)
            except linalg.LinAlgError:
                return None
            g = self.sums[1] - theta[0] * (self.crossed.T @ scaled_1)
            gram = gram - theta[1] * g.T @ linalg.cho_solve(factor, g, check_finite=False)
            logdet += 2.0 * float(np.log(np.diag(factor[0])).sum())
            parts |= {"factor": factor}
        return logdet, gram, parts

    def forms(self, theta: np.ndarray) -> tuple[float, np.ndarray] | None:
        """``gram``'s log |H| and quadratic forms, remembered by theta (the numerical Hessian moves beta alone)."""
        key = tuple(theta.tolist())
        if key not in self._forms:
            result = self.gram(theta)
            self._forms[key] = None if result is None else result[:2]
        return self._forms[key]

    def loglike(self, beta: np.ndarray, theta: np.ndarray) -> float:
        """statsmodels' REML log-likelihood with sigma^2 profiled out and beta given (up to a constant); -inf where
        H is not positive definite."""
        result = self.forms(theta)
        if result is None:
            return -math.inf
        logdet, gram = result
        xtx, xty = gram[1:, 1:], gram[1:, 0]
        quadratic = gram[0, 0] - 2.0 * beta @ xty + beta @ xtx @ beta
        sign, logdet_x = np.linalg.slogdet(xtx)
        if quadratic <= 0 or sign <= 0:
            return -math.inf
        return -0.5 * (logdet + (self.n - self.p) * math.log(quadratic) + logdet_x)

    def profile(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The REML criterion to minimise at ``theta`` (beta at its GLS estimate) and that estimate."""
        result = self.forms(theta)
        if result is None:
            return math.inf, np.full(self.p, math.nan)
        logdet, gram = result
        xtx, xty = gram[1:, 1:], gram[1:, 0]
        try:
            beta = np.linalg.solve(xtx, xty)
        except np.linalg.LinAlgError:
            return math.inf, np.full(self.p, math.nan)
        quadratic = gram[0, 0] - beta @ xty
        sign, logdet_x = np.linalg.slogdet(xtx)
        if quadratic <= 0 or sign <= 0:
            return math.inf, beta
        return logdet + (self.n - self.p) * math.log(quadratic) + logdet_x, beta

    def blups(self, residual_sums: list[np.ndarray], theta: np.ndarray) -> list[np.ndarray]:
        """The predicted random intercepts of each factor, from the per-level sums of the residuals."""
        _, _, parts = self.gram(theta)
        if self.k == 1:
            return [theta[0] * residual_sums[0] / parts["a"]]
        g = residual_sums[1] - theta[0] * (self.crossed.T @ (residual_sums[0] / parts["a"]))
        second = theta[1] * linalg.cho_solve(parts["factor"], g, check_finite=False)
        first = theta[0] * (residual_sums[0] - self.crossed @ second) / parts["a"]
        return [first, second]


def _minimise(design: _Design) -> np.ndarray:
    """theta >= 0 that minimises the REML criterion: L-BFGS-B over the relative standard deviations sqrt(theta) (as
    lme4 does: better scaled) from the best of a few starts, then Newton steps on central differences in theta until
    the step is below 1e-9 (relative), so that the estimates agree with statsmodels' to its printed precision."""

    def criterion(theta: np.ndarray) -> float:
        return design.profile(np.maximum(theta, 0.0))[0]

    starts = [np.full(design.k, value) for value in (0.1, 1.0)]
    best = min(starts, key=criterion)
    found = optimize.minimize(
        lambda sd: criterion(sd**2),
        np.sqrt(best),
        method="L-BFGS-B",
        bounds=[(0.0, None)] * design.k,
        options={"ftol": 1e-14, "gtol": 1e-9},
    )
    theta = np.maximum(found.x, 0.0) ** 2
    for _ in range(10):  # Newton polish on the free coordinates (those at 0 with an ascending criterion stay there)
        steps = 1e-4 * np.maximum(theta, 1e-3)
        unit = np.eye(design.k) * steps
        gradient = np.array(
            [(criterion(theta + unit[i]) - criterion(theta - unit[i])) / (2 * steps[i]) for i in range(design.k)]
        )
        free = ~((theta <= 0) & (gradient >= 0))
        if not free.any():
            break
        hessian = np.empty((design.k, design.k))
        for i in range(design.k):
            for j in range(i, design.k):
                if i == j:
                    second = criterion(theta + unit[i]) - 2 * criterion(theta) + criterion(theta - unit[i])
                    hessian[i, i] = second / steps[i] ** 2
                else:
                    second = (
                        criterion(theta + unit[i] + unit[j])
                        - criterion(theta + unit[i] - unit[j])
                        - criterion(theta - unit[i] + unit[j])
                        + criterion(theta - unit[i] - unit[j])
                    )
                    hessian[i, j] = hessian[j, i] = second / (4 * steps[i] * steps[j])
        sub = hessian[np.ix_(free, free)]
        if not np.all(np.isfinite(sub)) or np.any(np.linalg.eigvalsh(sub) <= 0):
            break
        step = np.zeros(design.k)
        step[free] = -np.linalg.solve(sub, gradient[free])
        proposal = np.maximum(theta + step, 0.0)
        if criterion(proposal) > criterion(theta):
            break
        moved = np.max(np.abs(proposal - theta) / np.maximum(theta, 1e-6))
        theta = proposal
        if moved < 1e-9:
            break
    return theta


def fit_random_intercepts(
    y: np.ndarray, exog: np.ndarray, names: list[str], factors: dict[str, np.ndarray]
) -> RandomInterceptFit:
    """REML fit of ``y ~ exog`` (its columns named ``names``) with one random intercept per level of each of the
    one or two ``factors`` (name: one label per row). DesignTooLarge where the smaller of two factors has more than
    MAX_DENSE_LEVELS levels."""
    import pandas as pd
    from statsmodels.tools.numdiff import approx_hess3

    y, exog = np.asarray(y, dtype=float), np.asarray(exog, dtype=float)
    coded = {name: pd.factorize(labels)[0] for name, labels in factors.items()}  # (hashing: fast on a million)
    ordered = sorted(coded.items(), key=lambda item: -(int(item[1].max()) + 1))  # the larger one is eliminated
    if len(ordered) == 2:
        larger, smaller = (int(codes.max()) + 1 for _, codes in ordered)
        if smaller > MAX_DENSE_LEVELS:
            raise DesignTooLarge(
                f"the crossed random intercepts need one factor with at most {MAX_DENSE_LEVELS:,} levels (its "
                f"{MAX_DENSE_LEVELS:,} x {MAX_DENSE_LEVELS:,} matrix is dense); found {larger:,} {ordered[0][0]} "
                f"levels and {smaller:,} {ordered[1][0]} levels"
            )
    design = _Design(y, exog, [codes for _, codes in ordered])
    theta = _minimise(design)
    _, beta = design.profile(theta)
    _, gram = design.forms(theta)
    residual_form = gram[0, 0] - 2.0 * beta @ gram[1:, 0] + beta @ gram[1:, 1:] @ beta
    scale = float(residual_form / (design.n - design.p))
    point = np.concatenate([beta, theta])
    hessian = approx_hess3(point, lambda values: design.loglike(values[: design.p], values[design.p :]))
    try:
        covariance = np.linalg.inv(-hessian)
        standard_errors = np.sqrt(np.diag(covariance)[: design.p])
    except np.linalg.LinAlgError:
        standard_errors = np.full(design.p, math.nan)
    fixed_prediction = exog @ beta
    residual = y - fixed_prediction
    residual_sums = [
        np.bincount(code, weights=residual, minlength=len(sums)) for code, sums in zip(design.codes, design.sums)
    ]
    fitted = fixed_prediction.copy()
    for code, blup in zip(design.codes, design.blups(residual_sums, theta)):
        fitted += blup[code]
    z = beta / standard_errors
    return RandomInterceptFit(
        fe_params=dict(zip(names, beta.tolist())),
        bse_fe=dict(zip(names, standard_errors.tolist())),
        pvalues=dict(zip(names, (2.0 * stats.norm.sf(np.abs(z))).tolist())),
        scale=scale,
        variances={name: float(value * scale) for (name, _), value in zip(ordered, theta)},
        fittedvalues=fitted,
        fixed_prediction=fixed_prediction,
        endog=y,
        theta={name: float(value) for (name, _), value in zip(ordered, theta)},
    )
