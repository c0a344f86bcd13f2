"""Multivariate drift: tests on the joint distribution of all features at once.

- :class:`MMDDrift` -- kernel two-sample test with the maximum mean discrepancy (Gretton et al.,
  JMLR 2012): unbiased MMD^2 with a permutation null, or the linear-time statistic with its
  Gaussian null for large samples.
- :class:`ClassifierDrift` -- a domain classifier tries to tell reference from current rows;
  out-of-fold AUC well above 0.5 means the two differ, and its permutation importances say where.
- :class:`PCAReconstructionDrift` -- PCA fitted on the reference; current rows that PCA explains
  worse than held-out reference rows reveal a change in the correlation structure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from stalwart._validation import check_array, check_choice, check_param
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError
from stalwart.shift import univariate as uv
from stalwart.shift.base import DriftDetector, DriftResult, register

__all__ = ["MMDDrift", "ClassifierDrift", "PCAReconstructionDrift", "mmd2_unbiased", "median_bandwidth"]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _alpha(owner: Any, alpha: Any) -> float:
    check_param(owner, "alpha", alpha, isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
                and 0 < alpha < 1, "a number in (0, 1)")
    return float(alpha)


def _matrix(x: Any, name: str, n_features: int | None = None) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        x = x.to_numpy()
    arr = check_array(x, name, ndim=(1, 2), min_samples=2)
    if arr.ndim == 1:
        arr = arr[:, None]
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(f"{name} has {arr.shape[1]} features but the reference has {n_features}; "
                         "pass the same columns in the same order.")
    return arr


def _fitted(obj: Any, attr: str) -> None:
    if not hasattr(obj, attr):
        raise ConfigError(f"{type(obj).__name__}.test needs a fitted reference; call fit(reference) first")


# -- MMD -----------------------------------------------------------------------------------------
def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (torch: multi-threaded, shares memory with numpy)."""
    import torch  # imported here: tabular drift, which imports this package, never needs it

    ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    d2 = torch.addmm((tb * tb).sum(1)[None, :], ta, tb.T, alpha=-2.0)
    d2.add_((ta * ta).sum(1)[:, None]).clamp_(min=0.0)
    return d2.numpy()


def _rbf_in_place(d2: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-d2 / (2 sigma^2))``, written over ``d2`` (an n x n matrix is the largest array here)."""
    import torch

    return torch.from_numpy(d2).mul_(-1.0 / (2.0 * sigma * sigma)).exp_().numpy()


def median_bandwidth(sq_dists: np.ndarray) -> float:
    """Median heuristic on a square matrix of pairwise squared distances (diagonal excluded).

    Returns sigma with ``2 sigma^2 = median(||z_i - z_j||^2)``, so the kernel is
    ``exp(-d^2 / median(d^2))``. Each off-diagonal value appears twice in the matrix and the zero
    diagonal sorts first, so the median is two order statistics of the flattened matrix.
    """
    n = sq_dists.shape[0]
    m = n * (n - 1)
    flat = sq_dists.ravel()
    lo, hi = n + (m - 1) // 2, n + m // 2
    part = np.partition(flat, [lo, hi])
    med = 0.5 * (part[lo] + part[hi])
    return float(np.sqrt(med / 2.0)) if med > 0 else 1.0


def mmd2_unbiased(x: Any, y: Any, *, sigma: float | None = None) -> tuple[float, float]:
    """Unbiased MMD^2 between samples ``x`` (m, d) and ``y`` (n, d) with an RBF kernel.

    ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``; ``sigma=None`` uses the median heuristic on the
    pooled sample. Returns ``(mmd2, sigma)``.
    """
    xa, ya = _matrix(x, "x"), _matrix(y, "y", None)
    if xa.shape[1] != ya.shape[1]:
        raise InputError(f"x and y must have the same number of features; got {xa.shape[1]} and {ya.shape[1]}")
    z = np.vstack([xa, ya])
    d2 = _sq_dists(z, z)
    sigma = median_bandwidth(d2) if sigma is None else float(sigma)
    k = _rbf_in_place(d2, sigma)
    a = np.zeros((1, z.shape[0]))
    a[0, : xa.shape[0]] = 1.0
    return float(_mmd2_from_assignments(k, a, xa.shape[0])[0]), sigma


def _mmd2_from_assignments(k: np.ndarray, a: np.ndarray, m: int) -> np.ndarray:
    """Unbiased MMD^2 for each row of the 0/1 assignment matrix ``a`` (P, n) (1 = first sample).

    With b = 1 - a only ``a'Ka`` and ``a'K1`` are needed, so all P statistics cost one
    (P, n) x (n, n) product:
        S_xx = a'Ka - m,  S_yy = 1'K1 - 2 a'K1 + a'Ka - n_y,  S_xy = a'K1 - a'Ka
    (the RBF diagonal is 1, and the unbiased estimator leaves it out).
    """
    import torch

    n = k.shape[0]
    ny = n - m
    tk, ta = torch.from_numpy(k), torch.from_numpy(a)
    row = tk.sum(dim=1)
    total = float(row.sum())
    aka = ((ta @ tk) * ta).sum(dim=1).numpy()
    ar = (ta @ row).numpy()
    sxx = aka - m
    syy = total - 2.0 * ar + aka - ny
    sxy = ar - aka
    return sxx / (m * (m - 1)) + syy / (ny * (ny - 1)) - 2.0 * sxy / (m * ny)


@register
class MMDDrift(DriftDetector):
    """Maximum mean discrepancy two-sample test with an RBF kernel (Gretton et al., 2012).

    Parameters
    ----------
    n_permutations : int, default 100
        Permutations of the pooled sample for the null distribution (quadratic-time test). The
        kernel matrix is computed once; all permutations are evaluated with one matrix product.
        p-value = ``(1 + #{null >= observed}) / (1 + n_permutations)``.
    sigma : float, optional
        Kernel bandwidth; default: median heuristic on the pooled sample.
    linear_time : bool, default False
        Use the linear-time statistic (mean of ``h`` over disjoint pairs, Gretton et al. 2012,
        Sec. 6) with its Gaussian null, ``z = sqrt(n/2) mean(h) / std(h)``: O(n) time and memory,
        for large samples, at some loss of power.
    alpha : float, default 0.05
        Significance level.
    max_samples : int, default 15000
        Largest pooled size for the quadratic test (its kernel matrix is n x n).
    seed : int, default 0
        Seed of the permutations (and of the pairing in the linear-time test).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MMDDrift(seed=0).fit(rng.normal(size=(200, 3)))
    >>> det.test(rng.normal(0.5, 1.0, size=(200, 3))).drifted
    True
    """

    name = "mmd"

    def __init__(self, *, n_permutations: int = 100, sigma: float | None = None, linear_time: bool = False,
                 alpha: float = 0.05, max_samples: int = 15_000, seed: int = 0) -> None:
        check_param(self, "n_permutations", n_permutations, _is_int(n_permutations) and n_permutations >= 1,
                    "an integer >= 1")
        if sigma is not None:
            check_param(self, "sigma", sigma, isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
                        and np.isfinite(sigma) and sigma > 0, "a number > 0 or None")
        check_param(self, "linear_time", linear_time, isinstance(linear_time, bool), "True or False")
        check_param(self, "max_samples", max_samples, _is_int(max_samples) and max_samples >= 4, "an integer >= 4")
        self.n_permutations = int(n_permutations)
        self.sigma = sigma
        self.linear_time = linear_time
        self.alpha = _alpha(self, alpha)
        self.max_samples = int(max_samples)
        self.seed = seed

    def __repr__(self) -> str:
        return (f"MMDDrift(n_permutations={self.n_permutations}, sigma={self.sigma}, "
                f"linear_time={self.linear_time}, alpha={self.alpha}, seed={self.seed})")

    def fit(self, reference: Any) -> MMDDrift:
        """Store the reference sample, shape (n, d)."""
        self.reference_ = _matrix(reference, "reference")
        return self

    def test(self, current: Any) -> DriftResult:
        """Test ``current`` (n, d) against the reference."""
        _fitted(self, "reference_")
        x = self.reference_
        y = _matrix(current, "current", x.shape[1])
        rng = np.random.default_rng(self.seed)
        if self.linear_time:
            return self._linear(x, y, rng)
        m, n = x.shape[0], x.shape[0] + y.shape[0]
        if n > self.max_samples:
            raise InputError(f"the pooled sample has {n} rows, above max_samples={self.max_samples} for the "
                             "quadratic-time test (its kernel matrix is n x n); pass linear_time=True or "
                             "subsample.")
        z = np.vstack([x, y])
        d2 = _sq_dists(z, z)
        sigma = median_bandwidth(d2) if self.sigma is None else float(self.sigma)
        k = _rbf_in_place(d2, sigma)
        a = np.zeros((self.n_permutations + 1, n))
        a[:, :m] = 1.0
        a[1:] = rng.permuted(a[1:], axis=1)
        values = _mmd2_from_assignments(k, a, m)
        observed, null = float(values[0]), values[1:]
        p = float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))
        return DriftResult("mmd", observed, p, self.alpha, p <= self.alpha, details={
            "sigma": sigma, "n_permutations": self.n_permutations, "linear_time": False,
            "null_quantile": float(np.quantile(null, 1 - self.alpha)),
            "n_reference": m, "n_current": y.shape[0]})

    def _linear(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> DriftResult:
        half = min(x.shape[0], y.shape[0]) // 2
        if half < 2:
            raise InputError("the linear-time MMD test needs at least 4 rows in each sample")
        xs = x[rng.permutation(x.shape[0])[: 2 * half]]
        ys = y[rng.permutation(y.shape[0])[: 2 * half]]
        if self.sigma is None:
            pool = np.vstack([xs, ys])
            sub = pool[rng.choice(pool.shape[0], size=min(pool.shape[0], 1000), replace=False)]
            sigma = median_bandwidth(_sq_dists(sub, sub))
        else:
            sigma = float(self.sigma)

        def kern(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.exp(-np.sum((a - b) ** 2, axis=1) / (2.0 * sigma * sigma))

        x1, x2, y1, y2 = xs[0::2], xs[1::2], ys[0::2], ys[1::2]
        h = kern(x1, x2) + kern(y1, y2) - kern(x1, y2) - kern(x2, y1)
        stat = float(h.mean())
        sd = float(h.std(ddof=1))
        z = stat / (sd / np.sqrt(half)) if sd > 0 else (np.inf if stat > 0 else 0.0)
        p = float(special.ndtr(-z))  # the normal upper tail, as scipy.stats.norm.sf
        return DriftResult("mmd", stat, p, self.alpha, p <= self.alpha, details={
            "sigma": sigma, "linear_time": True, "z": float(z), "n_pairs": half,
            "n_reference": x.shape[0], "n_current": y.shape[0]})


# -- domain classifier ---------------------------------------------------------------------------
def _encode(ref: pd.DataFrame, cur: pd.DataFrame, one_hot: bool
            ) -> tuple[np.ndarray, list[np.ndarray], list[str], np.ndarray]:
    """Pooled numeric matrix, the encoded columns of each original feature, names, categorical mask."""
    schema = Schema.infer(ref)
    blocks, groups, cat_mask, start = [], [], [], 0
    pooled = pd.concat([ref, cur], ignore_index=True)
    for col in schema.columns:
        s = pooled[col.name]
        if col.kind in ("numeric", "integer"):
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)[:, None]
            if one_hot:  # logistic regression: impute and standardise
                mu, sd = np.nanmean(v), np.nanstd(v)
                v = (np.where(np.isnan(v), mu, v) - mu) / (sd if sd > 0 else 1.0)
            is_cat = [False]
        else:
            codes = pd.Categorical(s.astype(object).where(s.notna(), None)).codes
            n_cat = int(codes.max()) + 1
            if one_hot:
                v = np.zeros((len(s), max(n_cat, 1)))
                ok = codes >= 0
                v[np.nonzero(ok)[0], codes[ok]] = 1.0
                is_cat = [False] * v.shape[1]
            else:
                v = np.where(codes >= 0, codes, np.nan).astype(float)[:, None]
                is_cat = [n_cat <= 250]  # HistGradientBoosting's native categories need <= max_bins
        blocks.append(v)
        groups.append(np.arange(start, start + v.shape[1]))
        cat_mask.extend(is_cat)
        start += v.shape[1]
    return np.hstack(blocks), groups, [c.name for c in schema.columns], np.array(cat_mask, dtype=bool)


def _as_frame(x: Any, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        df = x
    else:
        arr = np.asarray(x)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise InputError(f"{name} must be 2-D (n_samples x n_features); got shape {arr.shape}")
        df = pd.DataFrame(arr, columns=columns or [f"x{i}" for i in range(arr.shape[1])])
    if len(df) < 2 or df.shape[1] == 0:
        raise InputError(f"{name} is empty or has a single row (shape {df.shape}); pass at least 2 rows.")
    return df


@register
class ClassifierDrift(DriftDetector):
    """Domain-classifier drift test: can a model tell current rows from reference rows?

    A classifier is trained to predict "current" (1) vs "reference" (0) with stratified k-fold
    cross-validation. Its out-of-fold AUC is the statistic (0.5 = indistinguishable) and the
    p-value is the one-sided Mann-Whitney test that current rows score higher than reference rows
    (``AUC = U / (n_ref n_cur)``). Out-of-fold scores from different folds are not fully
    independent, so the p-value is approximate. Feature importances are the mean drop in held-out
    AUC when one feature's values are shuffled (permutation importance on each validation fold).

    Parameters
    ----------
    model : {"hgb", "logistic"}, default "hgb"
        ``HistGradientBoostingClassifier`` (native categories and missing values) or
        ``LogisticRegression`` on standardised numbers and one-hot categories.
    n_folds : int, default 5
        Cross-validation folds.
    alpha : float, default 0.05
        Significance level of the Mann-Whitney test.
    n_top : int, default 5
        How many features ``details["top_features"]`` lists.
    seed : int, default 0
        Seed of the folds, the model and the permutations.
    n_jobs : int or None, default 1
        Threads the classifier may use (``None``: all cores). One thread is fastest on the small
        tables drift tests usually see, and avoids oversubscription under parallel test runners.
    """

    name = "classifier"

    def __init__(self, *, model: str = "hgb", n_folds: int = 5, alpha: float = 0.05, n_top: int = 5,
                 seed: int = 0, n_jobs: int | None = 1) -> None:
        check_choice(self, "model", model, ("hgb", "logistic"))
        check_param(self, "n_folds", n_folds, _is_int(n_folds) and n_folds >= 2, "an integer >= 2")
        check_param(self, "n_top", n_top, _is_int(n_top) and n_top >= 1, "an integer >= 1")
        self.model = model
        self.n_folds = int(n_folds)
        self.alpha = _alpha(self, alpha)
        self.n_top = int(n_top)
        self.seed = seed
        if n_jobs is not None:
            check_param(self, "n_jobs", n_jobs, _is_int(n_jobs) and n_jobs >= 1, "an integer >= 1 or None")
        self.n_jobs = n_jobs

    def __repr__(self) -> str:
        return f"ClassifierDrift(model={self.model!r}, n_folds={self.n_folds}, alpha={self.alpha}, seed={self.seed})"

    def fit(self, reference: Any) -> ClassifierDrift:
        """Store the reference table (DataFrame or 2-D array)."""
        self.reference_ = _as_frame(reference, "reference")
        return self

    def _classifier(self, cat_mask: np.ndarray) -> Any:
        if self.model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(max_iter=100, categorical_features=cat_mask if cat_mask.any()
                                                  else None, random_state=self.seed)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000)

    def test(self, current: Any) -> DriftResult:
        """Cross-validate the domain classifier on reference + ``current``."""
        _fitted(self, "reference_")
        if self.n_jobs is None:
            return self._test(current)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.n_jobs):
            return self._test(current)

    def _test(self, current: Any) -> DriftResult:
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        ref = self.reference_
        cur = _as_frame(current, "current", list(ref.columns) if not isinstance(current, pd.DataFrame) else None)
        lacking = [c for c in ref.columns if c not in cur.columns]
        if lacking:
            raise InputError(f"current lacks columns {lacking} that the reference has; it has {list(cur.columns)}")
        cur = cur[list(ref.columns)]
        if min(len(ref), len(cur)) < self.n_folds:
            raise InputError(f"each sample needs at least n_folds={self.n_folds} rows; got {len(ref)} "
                             f"reference and {len(cur)} current rows.")
        x, groups, names, cat_mask = _encode(ref, cur, one_hot=self.model == "logistic")
        y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
        rng = np.random.default_rng(self.seed)
        oof = np.empty(len(y))
        drops = np.zeros(len(names))
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed)
        for train, val in folds.split(x, y):
            clf = self._classifier(cat_mask).fit(x[train], y[train])
            xv, yv = x[val], y[val]
            oof[val] = clf.predict_proba(xv)[:, 1]
            base = roc_auc_score(yv, oof[val]) if len(np.unique(yv)) == 2 else 0.5
            for j, cols in enumerate(groups):
                shuffled = xv.copy()
                shuffled[:, cols] = xv[rng.permutation(len(val))][:, cols]
                drops[j] += base - roc_auc_score(yv, clf.predict_proba(shuffled)[:, 1])
        drops /= self.n_folds
        auc = float(roc_auc_score(y, oof))
        from scipy import stats

        p = float(stats.mannwhitneyu(oof[y == 1], oof[y == 0], alternative="greater",
                                     method="asymptotic").pvalue)
        order = np.argsort(-drops, kind="stable")
        top = [(names[i], float(drops[i])) for i in order[: self.n_top]]
        return DriftResult("classifier", auc, p, self.alpha, p <= self.alpha, details={
            "auc": auc, "top_features": top, "importances": dict(zip(names, drops.tolist())),
            "model": self.model, "n_folds": self.n_folds, "n_reference": len(ref), "n_current": len(cur)})


# -- PCA reconstruction error --------------------------------------------------------------------
@register
class PCAReconstructionDrift(DriftDetector):
    """Drift in the correlation structure, seen through PCA reconstruction error.

    The reference is split in two random halves: PCA (on standardised features, keeping the
    fewest components that explain ``variance`` of it, at most ``d - 1``) is fitted on one half,
    and the other half's reconstruction errors form the null sample. Current rows are
    reconstructed by the same PCA, so both error samples are out-of-sample and exchangeable when
    nothing changed. The statistic and p-value are the two-sample KS test between the error
    samples; ``details["error_ratio"]`` is mean current error / mean reference error.

    Parameters
    ----------
    variance : float, default 0.95
        Share of the reference variance the kept components explain.
    alpha : float, default 0.05
        Significance level of the KS test.
    seed : int, default 0
        Seed of the reference split.
    """

    name = "pca_reconstruction"

    def __init__(self, *, variance: float = 0.95, alpha: float = 0.05, seed: int = 0) -> None:
        check_param(self, "variance", variance, isinstance(variance, (int, float)) and not isinstance(
            variance, bool) and 0 < variance < 1, "a number in (0, 1)")
        self.variance = float(variance)
        self.alpha = _alpha(self, alpha)
        self.seed = seed

    def __repr__(self) -> str:
        return f"PCAReconstructionDrift(variance={self.variance}, alpha={self.alpha}, seed={self.seed})"

    def fit(self, reference: Any) -> PCAReconstructionDrift:
        """Fit the PCA on half of ``reference`` (n, d) and keep the other half's errors."""
        x = _matrix(reference, "reference")
        if x.shape[1] < 2:
            raise InputError(f"reference must have at least 2 features for PCA reconstruction; got {x.shape[1]}")
        if x.shape[0] < 10:
            raise InputError(f"reference must have at least 10 rows; got {x.shape[0]}")
        idx = np.random.default_rng(self.seed).permutation(x.shape[0])
        fit_rows, null_rows = x[idx[: x.shape[0] // 2]], x[idx[x.shape[0] // 2:]]
        self.mean_ = fit_rows.mean(axis=0)
        sd = fit_rows.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        z = (fit_rows - self.mean_) / self.scale_
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        explained = s ** 2 / np.sum(s ** 2) if np.sum(s ** 2) > 0 else np.ones_like(s) / s.size
        k = int(np.searchsorted(np.cumsum(explained), self.variance) + 1)
        self.n_components_ = min(k, x.shape[1] - 1)
        self.components_ = vt[: self.n_components_]
        self.explained_variance_ = float(np.sum(explained[: self.n_components_]))
        self.reference_errors_ = self._errors(null_rows)
        self.n_features_ = x.shape[1]
        return self

    def _errors(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) / self.scale_
        resid = z - (z @ self.components_.T) @ self.components_
        return np.mean(resid ** 2, axis=1)

    def score(self, x: Any) -> np.ndarray:
        """Per-row reconstruction error (mean squared, standardised units)."""
        _fitted(self, "components_")
        return self._errors(_matrix(x, "x", self.n_features_))

    def test(self, current: Any) -> DriftResult:
        """KS test of current reconstruction errors against the held-out reference errors."""
        _fitted(self, "components_")
        err = self._errors(_matrix(current, "current", self.n_features_))
        r = uv.ks_test(self.reference_errors_, err)
        ref_mean = float(self.reference_errors_.mean())
        ratio = float(err.mean() / ref_mean) if ref_mean > 0 else float("inf")
        return DriftResult("pca_reconstruction", r.statistic, r.p_value, self.alpha, r.p_value <= self.alpha,
                           details={"error_ratio": ratio, "n_components": self.n_components_,
                                    "explained_variance": self.explained_variance_,
                                    "mean_error_reference": ref_mean, "mean_error_current": float(err.mean())})
