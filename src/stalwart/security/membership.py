"""Membership inference: can an attacker tell the rows a model was trained on from other rows?

A model that memorises its training data gives itself away: it is more confident, and has a
lower loss, on the rows it saw. :func:`membership_inference` runs one of four attacks on a set of
known members (training rows) and known non-members (rows of the same distribution the model
never saw) and scores how well the attack separates them.

Attacks (higher score = "member"):

- ``"loss"`` (Yeom et al., 2018): minus the cross-entropy of the true label, ``log p_y``.
- ``"confidence"``: the model's top probability (as its logit ``log p_max - log(1 - p_max)``,
  which orders rows the same way without rounding near 1); needs no labels.
- ``"shadow"`` (Shokri et al., 2017): shadow models, each trained on one half of ``population``
  (or of the candidate rows) and queried on both halves, teach an attack classifier what a
  training row's output vector looks like; it then scores the target model's outputs.
- ``"lira"`` (Carlini et al., 2022, "Membership Inference Attacks From First Principles"): each
  of ``n_shadow`` shadow models trains on a random half of the candidates (members and
  non-members, plus ``population`` rows), so each candidate is IN for half of them and OUT for
  the other half. Per candidate, the logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of
  its true class is fitted by a Gaussian over the IN models and one over the OUT models; the
  score is the likelihood ratio of the target model's ``phi`` under the two (online), or, with
  ``online=False``, how far ``phi`` sits above the OUT Gaussian (a one-sided test, from the
  OUT models only). Below 64 shadow models a per-candidate variance is unreliable, so, as in
  the paper, one variance is shared by all candidates (online: by the IN and the OUT side too).

Following Carlini et al., a leak is judged by the true-positive rate at a low false-positive
rate (an attack that confidently identifies a few members is a privacy breach even if its
accuracy or AUC is near chance), with the AUC and the membership advantage (max TPR - FPR,
Yeom et al.) reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import (
    check_array,
    check_choice,
    check_labels,
    check_lengths,
    check_param,
    check_seed,
    labels_to_index,
    param_error,
)
from stalwart.errors import ConfigError, InputError, ModelError, StalwartError

__all__ = ["membership_inference", "MembershipResult", "OperatingPoint", "MEMBERSHIP_ATTACKS"]

#: the attacks :func:`membership_inference` runs
MEMBERSHIP_ATTACKS = ("loss", "confidence", "shadow", "lira")

_OWNER = "membership_inference"
_TARGET_FPRS = (0.001, 0.01)
# Carlini et al.: with fewer shadow models than this, a per-example variance is too noisy
_GLOBAL_VARIANCE_BELOW = 64
# probabilities of exactly 0 or 1 (trees, k-NN) still give a finite log or logit
_TINY = 1e-30
_MIN_VARIANCE = 1e-6
_N_BOOT = 500


@dataclass(frozen=True)
class OperatingPoint:
    """The attack's true-positive rate at one target false-positive rate.

    The threshold is chosen on the non-members: a row is called a member when its score is
    strictly above ``threshold``, the (k+1)-th largest non-member score with
    ``k = floor(target_fpr * n_non_members)``. At most k non-members are flagged, so the
    empirical FPR (``fpr``) is <= ``target_fpr``; rows tied at the threshold are all left out,
    never split at random.

    Uncertainty: the threshold's FPR on fresh non-members is itself uncertain, since it was read
    off the same non-members; ``fpr_low``/``fpr_high`` is its Wilson interval over them. The TPR
    interval carries that uncertainty as well as the members': ``tpr_low`` is the lower Wilson
    bound (over the members) of the TPR at the threshold whose empirical FPR is ``fpr_low``,
    ``tpr_high`` the upper Wilson bound at the threshold whose empirical FPR is ``fpr_high``.
    On a model that leaks nothing, with 1000 members and 1000 non-members, this interval held the
    true rate in 99% of simulated runs at 1% FPR and in 88% at 0.1% FPR, where one non-member
    sets the threshold (a Wilson interval at the chosen threshold alone: 84% and 67%); measure a
    0.1% FPR on several thousand non-members. A target below ``1 / n_non_members``
    cannot be measured (no threshold flags so small a share of so few rows): then ``tpr`` and its
    interval are NaN and ``note`` says how many non-members it needs.
    """

    target_fpr: float
    tpr: float
    tpr_low: float
    tpr_high: float
    fpr: float
    fpr_low: float
    fpr_high: float
    threshold: float
    n_true_positives: int
    n_false_positives: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"target_fpr": self.target_fpr, "tpr": _json(self.tpr), "tpr_low": _json(self.tpr_low),
                "tpr_high": _json(self.tpr_high), "fpr": _json(self.fpr), "fpr_low": _json(self.fpr_low),
                "fpr_high": _json(self.fpr_high), "threshold": _json(self.threshold),
                "n_true_positives": self.n_true_positives, "n_false_positives": self.n_false_positives,
                "note": self.note}


@dataclass(frozen=True, eq=False)
class MembershipResult:
    """How well one membership-inference attack separates members from non-members.

    Attributes
    ----------
    attack : the attack's name (one of :data:`MEMBERSHIP_ATTACKS`)
    auc, auc_low, auc_high : ROC AUC with a 95% DeLong interval
    tpr_at_0_1pct_fpr, tpr_at_1pct_fpr : TPR at 0.1% and 1% FPR (NaN when the non-members are
        too few to measure that FPR); intervals, thresholds and achieved FPRs in
        ``operating_points``
    advantage, advantage_low, advantage_high : membership advantage max(TPR - FPR) with a 95%
        bootstrap interval (members and non-members resampled apart)
    operating_points : one :class:`OperatingPoint` per target FPR (0.1%, 1%)
    fpr, tpr : the ROC curve, from (0, 0) to (1, 1), one point per distinct score (for a
        log-scaled FPR axis, as Carlini et al. plot it)
    member_scores, non_member_scores : each row's score (higher = more likely a member)
    n_members, n_non_members : rows scored
    notes : what the numbers rest on or leave out
    params : the attack's settings (seed included), to reproduce it
    """

    attack: str
    auc: float
    auc_low: float
    auc_high: float
    tpr_at_0_1pct_fpr: float
    tpr_at_1pct_fpr: float
    advantage: float
    advantage_low: float
    advantage_high: float
    operating_points: tuple[OperatingPoint, ...]
    fpr: np.ndarray
    tpr: np.ndarray
    member_scores: np.ndarray
    non_member_scores: np.ndarray
    n_members: int
    n_non_members: int
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def tpr_at(self, fpr: float) -> OperatingPoint:
        """The :class:`OperatingPoint` at any target false-positive rate in (0, 1)."""
        check_param("MembershipResult.tpr_at", "fpr", fpr, isinstance(fpr, (int, float, np.floating))
                    and not isinstance(fpr, bool) and 0 < fpr < 1, "a false-positive rate in (0, 1)")
        return _operating_point(self.member_scores, self.non_member_scores, float(fpr))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; the metrics under their glossary names, NaN as None."""
        by_target = {p.target_fpr: p for p in self.operating_points}
        metrics = {"membership_auc": (self.auc, self.auc_low, self.auc_high),
                   "tpr_at_0.1pct_fpr": (self.tpr_at_0_1pct_fpr, by_target[0.001].tpr_low,
                                         by_target[0.001].tpr_high),
                   "tpr_at_1pct_fpr": (self.tpr_at_1pct_fpr, by_target[0.01].tpr_low, by_target[0.01].tpr_high),
                   "membership_advantage": (self.advantage, self.advantage_low, self.advantage_high)}
        return {"attack": self.attack, "n_members": self.n_members, "n_non_members": self.n_non_members,
                "metrics": {k: {"value": _json(v), "low": _json(lo), "high": _json(hi)}
                            for k, (v, lo, hi) in metrics.items()},
                "operating_points": [p.to_dict() for p in self.operating_points],
                "roc": {"fpr": self.fpr.tolist(), "tpr": self.tpr.tolist()},
                "notes": list(self.notes), "params": dict(self.params)}


def _json(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# -- the entry point ---------------------------------------------------------------------------------
def membership_inference(model: Any, members_x: Any, members_y: Any, non_members_x: Any, non_members_y: Any, *,
                         attack: str = "loss", fit: Callable[[Any, np.ndarray, int], Any] | None = None,
                         n_shadow: int = 16, online: bool = True, population: tuple[Any, Any] | None = None,
                         seed: int = 0) -> MembershipResult:
    """Attack ``model``'s training-set membership and measure how well the attack works.

    Parameters
    ----------
    model : a classifier :func:`stalwart.wrap` accepts (scikit-learn estimator or Pipeline, torch
        module, ONNX model, callable returning probabilities)
    members_x, members_y : rows the model was trained on, and their labels
    non_members_x, non_members_y : rows of the same distribution it never saw, and their labels;
        at least 100 to measure the TPR at 1% FPR, 1000 at 0.1%
    attack : ``"loss"``, ``"confidence"``, ``"shadow"`` or ``"lira"`` (module docstring);
        ``"confidence"`` needs no labels (pass ``None`` for both label arguments)
    fit : ``fit(x, y, seed) -> fitted model`` trains one shadow model the way the target was
        trained ("shadow" and "lira" only). Default for a scikit-learn model: clone it (its
        ``random_state`` parameters set to the shadow's seed) and fit the clone. Other models
        need it.
    n_shadow : shadow models to train ("shadow" and "lira"), >= 2; Carlini et al. use 64 or more,
        and fewer share one variance over all candidates
    online : LiRA only: compare IN and OUT shadow models (True) or use the OUT models only
        (False, a one-sided test)
    population : ``(x, y)`` of extra rows from the same distribution, neither members nor
        candidates: the shadow attack trains its shadow models on halves of them (default: the
        candidates themselves), LiRA adds them to every shadow model's training pool. For the
        shadow attack it should hold about twice as many rows as the model's training set.
    seed : every random choice (which rows each shadow model sees, its seed, the bootstrap)
        derives from it; the same seed gives the same result

    Returns
    -------
    MembershipResult

    Raises
    ------
    ConfigError
        An unknown ``attack``, ``n_shadow < 2``, or "shadow"/"lira" with no way to train a model.
    InputError
        Empty, mismatched or non-finite data, missing labels, labels the model does not know.
    ModelError
        A regression model, or a ``fit`` that fails or returns something that is not a classifier.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> x, y = make_classification(400, n_features=8, flip_y=0.3, random_state=0)
    >>> tree = DecisionTreeClassifier(min_samples_leaf=2, random_state=0).fit(x[:200], y[:200])
    >>> res = membership_inference(tree, x[:200], y[:200], x[200:], y[200:], attack="loss")
    >>> round(res.auc, 2), res.tpr_at_0_1pct_fpr  # 200 non-members cannot measure a 0.1% FPR
    (0.62, nan)
    """
    check_choice(_OWNER, "attack", attack, MEMBERSHIP_ATTACKS)
    check_param(_OWNER, "n_shadow", n_shadow, isinstance(n_shadow, (int, np.integer))
                and not isinstance(n_shadow, bool) and n_shadow >= 2,
                "an integer >= 2 (the number of shadow models to train)")
    check_param(_OWNER, "online", online, isinstance(online, (bool, np.bool_)), "True or False")
    check_seed(_OWNER, seed)
    if fit is not None and not callable(fit):
        raise param_error(_OWNER, "fit", "None or a function fit(x, y, seed) returning a fitted model", fit)
    from stalwart.models import wrap

    target = wrap(model)
    if target.task != "classification":
        raise ModelError(f"membership_inference reads class probabilities, and {target.name} is a regression "
                         "model; pass a classifier (a loss-based attack on a regressor is not implemented).")
    mx = _check_x(members_x, "members_x")
    nx = _check_x(non_members_x, "non_members_x")
    if _feature_shape(mx) != _feature_shape(nx):
        raise InputError(f"members_x rows have shape {_feature_shape(mx)} but non_members_x rows have "
                         f"{_feature_shape(nx)}; pass both in the form the model takes.")
    classes = target.known_classes(mx)
    with_labels = attack != "confidence"
    my = _check_y(members_y, mx, "members_x", "members_y", classes, attack, with_labels)
    ny = _check_y(non_members_y, nx, "non_members_x", "non_members_y", classes, attack, with_labels)
    notes: list[str] = []
    params: dict[str, Any] = {"attack": attack, "seed": int(seed)}
    if target.output_kind == "labels":
        notes.append(f"{target.name} gives labels only: every score is 0 or 1, so ties decide most thresholds; "
                     "a label-only attack would need queries around each row (not implemented).")
    rng = np.random.default_rng(seed)

    if attack in ("shadow", "lira"):
        train = _fitter(target, fit, attack)
        pop = _check_population(population, mx, classes)
        params.update(n_shadow=int(n_shadow), population_rows=0 if pop is None else len(pop[1]))
        if attack == "lira":
            params["online"] = bool(online)
            s_m, s_n = _lira(target, train, mx, my, nx, ny, pop, classes, int(n_shadow), bool(online), rng, notes)
        else:
            s_m, s_n = _shadow(target, train, mx, my, nx, ny, pop, classes, int(n_shadow), rng, notes)
    else:
        if population is not None or fit is not None:
            notes.append(f"attack={attack!r} trains no shadow model: population and fit were not used.")
        probs_m, probs_n = target.predict_proba(mx), target.predict_proba(nx)
        if attack == "loss":
            s_m, s_n = (_log_true(p, labels_to_index(y, classes)) for p, y in ((probs_m, my), (probs_n, ny)))
        else:
            s_m, s_n = _top_logit(probs_m), _top_logit(probs_n)
    return _result(attack, s_m, s_n, notes, params, rng)


# -- inputs ------------------------------------------------------------------------------------------
def _check_x(x: Any, name: str) -> Any:
    import pandas as pd

    if isinstance(x, pd.DataFrame):
        if len(x) < 2:
            raise InputError(f"{name} has {len(x)} row(s); pass at least 2 (100 non-members to measure the TPR "
                             "at 1% FPR).")
        numeric = x.select_dtypes("number").to_numpy(dtype=np.float64)
        if bool(x.isna().to_numpy().any()) or not np.isfinite(numeric).all():
            raise InputError(f"{name} contains NaN or infinite values; impute or drop those rows first.")
        return x.reset_index(drop=True)
    if x is None:
        raise InputError(f"{name} is None; pass the rows as an array (n_samples, ...) or a DataFrame.")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor
        x = x.detach().cpu().numpy()
    dtype = np.float32 if getattr(x, "dtype", None) == np.float32 else np.float64
    arr = check_array(x, name, dtype=dtype)
    if arr.ndim < 2:
        raise InputError(f"{name} must have one row per sample (2 or more dimensions); got shape {arr.shape}. "
                         "Reshape a single feature with x.reshape(-1, 1).")
    if len(arr) < 2:
        raise InputError(f"{name} has {len(arr)} row(s); pass at least 2 (100 non-members to measure the TPR at "
                         "1% FPR).")
    return arr


def _feature_shape(x: Any) -> tuple[Any, ...]:
    return tuple(x.columns) if hasattr(x, "columns") else tuple(x.shape[1:])


def _check_y(y: Any, x: Any, x_name: str, name: str, classes: Any, attack: str, required: bool) -> np.ndarray | None:
    if y is None:
        if required:
            raise InputError(f"attack={attack!r} needs the true labels: {name} is None. Pass the labels, or use "
                             "attack='confidence', which needs none.")
        return None
    y = check_labels(y, classes, name)
    check_lengths(x_name, x, name, y)
    return y


def _check_population(population: Any, x: Any, classes: Any) -> tuple[Any, np.ndarray] | None:
    if population is None:
        return None
    if not isinstance(population, (tuple, list)) or len(population) != 2:
        raise param_error(_OWNER, "population", "None or a pair (x, y) of extra labelled rows",
                          type(population).__name__)
    px = _check_x(population[0], "population[0]")
    if _feature_shape(px) != _feature_shape(x):
        raise InputError(f"population rows have shape {_feature_shape(px)} but members_x rows have "
                         f"{_feature_shape(x)}; pass population rows in the form the model takes.")
    py = check_labels(population[1], classes, "population[1]")
    check_lengths("population[0]", px, "population[1]", py)
    return px, py


def _fitter(target: Any, fit: Callable[..., Any] | None, attack: str) -> Callable[[Any, np.ndarray, int], Any]:
    if fit is not None:
        return fit
    estimator = getattr(target, "estimator", None)
    if estimator is None or not hasattr(estimator, "fit"):
        raise ConfigError(
            f"attack={attack!r} trains shadow models, and {target.name} is not a scikit-learn estimator that "
            "can be cloned and refitted: pass fit=lambda x, y, seed: <a model trained like the target on x, y>. "
            "attack='loss' and attack='confidence' need no training function and still apply.")
    from sklearn.base import clone

    def fit_clone(x: Any, y: np.ndarray, seed: int) -> Any:
        model = clone(estimator)
        seeds = {k: seed for k in model.get_params() if k == "random_state" or k.endswith("__random_state")}
        if seeds:
            model.set_params(**seeds)
        return model.fit(x, y)
    return fit_clone


def _rows(x: Any, idx: np.ndarray) -> Any:
    return x.iloc[idx].reset_index(drop=True) if hasattr(x, "iloc") else x[idx]


def _concat(parts: list[Any]) -> Any:
    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts, axis=0)


# -- scores --------------------------------------------------------------------------------------------
def _true_and_rest(probs: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p_y and the sum of the other classes (summed, not 1 - p_y, which rounds to 0 near p_y = 1)."""
    idx = np.broadcast_to(idx, probs.shape[:-1])
    p_true = np.take_along_axis(probs, idx[..., None], axis=-1)[..., 0]
    one_hot = np.arange(probs.shape[-1]) == idx[..., None]
    return p_true, np.where(one_hot, 0.0, probs).sum(axis=-1)


def _log_true(probs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Minus the cross-entropy of the true class."""
    return np.log(np.maximum(_true_and_rest(probs, idx)[0], _TINY))


def _phi(probs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Carlini et al.'s logit-scaled confidence log(p_y / (1 - p_y))."""
    p_true, rest = _true_and_rest(probs, idx)
    return np.log(np.maximum(p_true, _TINY)) - np.log(np.maximum(rest, _TINY))


def _top_logit(probs: np.ndarray) -> np.ndarray:
    return _phi(probs, np.argmax(probs, axis=-1))


# -- shadow models ------------------------------------------------------------------------------------
def _halves(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """(k, n) bool: row i is IN for exactly k // 2 of the k models, chosen at random per row."""
    base = np.repeat((np.arange(k) < k // 2)[:, None], n, axis=1)
    return rng.permuted(base, axis=0)


def _shadow_outputs(train: Callable[..., Any], x: Any, y: np.ndarray, keep: np.ndarray, seeds: np.ndarray,
                    query: Any, classes: np.ndarray, reduce: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``reduce`` of each shadow model's probabilities on ``query`` (columns in ``classes`` order), stacked:
    reduced one model at a time, so that k models' full probability tables are never held at once."""
    from stalwart.models import wrap
    from stalwart.models.base import short_error

    out = []
    for k, (rows, seed) in enumerate(zip(keep, seeds)):
        idx = np.flatnonzero(rows)
        try:
            fitted = train(_rows(x, idx), y[idx], int(seed))
        except StalwartError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's training function failing is a model problem
            raise ModelError(f"fit(x, y, seed) failed on shadow model {k + 1} of {len(keep)} ({idx.size} rows): "
                             f"{short_error(exc)}. It must train and return a fresh model on any random half of "
                             "the rows.") from exc
        if fitted is None:
            raise ModelError("fit(x, y, seed) returned None; it must return the fitted model (return model.fit(x, y)).")
        shadow = wrap(fitted)
        if shadow.task != "classification":
            raise ModelError(f"fit(x, y, seed) returned a regression model ({shadow.name}); it must return a "
                             "classifier trained like the target model.")
        out.append(reduce(_align(shadow.predict_proba(query), shadow.classes, classes)))
    return np.stack(out)


def _align(probs: np.ndarray, own: Any, classes: np.ndarray) -> np.ndarray:
    """Columns in the target's class order; a class the shadow never saw (absent from its half) gets 0."""
    if own is None or list(np.asarray(own).tolist()) == list(np.asarray(classes).tolist()):
        if probs.shape[1] != len(classes):
            raise ModelError(f"a shadow model gives {probs.shape[1]} class scores but the target model has "
                             f"{len(classes)}; fit(x, y, seed) must build the same kind of model as the target.")
        return probs
    lookup = {c: j for j, c in enumerate(np.asarray(classes).tolist())}
    out = np.zeros((len(probs), len(classes)))
    for i, c in enumerate(np.asarray(own).tolist()):
        if c not in lookup:
            raise ModelError(f"a shadow model predicts class {c!r}, which the target model does not have; "
                             "fit(x, y, seed) must train on the labels it is given.")
        out[:, lookup[c]] = probs[:, i]
    return out


def _lira(target: Any, train: Callable[..., Any], mx: Any, my: np.ndarray, nx: Any, ny: np.ndarray,
          pop: tuple[Any, np.ndarray] | None, classes: np.ndarray, k: int, online: bool,
          rng: np.random.Generator, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    cand_x, cand_y = _concat([mx, nx]), np.concatenate([my, ny])
    pool_x, pool_y = (cand_x, cand_y) if pop is None else (_concat([cand_x, pop[0]]), np.concatenate([cand_y, pop[1]]))
    keep = _halves(rng, k, len(pool_y))
    seeds = rng.integers(0, 2**31 - 1, size=k)
    idx = labels_to_index(cand_y, classes)
    phi = _shadow_outputs(train, pool_x, pool_y, keep, seeds, cand_x, classes, lambda p: _phi(p, idx))  # (k, n)
    phi_target = _phi(target.predict_proba(cand_x), idx)
    is_in = keep[:, :len(cand_y)]
    per_example = k >= _GLOBAL_VARIANCE_BELOW
    mu_out, sd_out = _gaussian(phi, ~is_in, per_example)
    if online:
        mu_in, sd_in = _gaussian(phi, is_in, per_example)
        if not per_example:
            # one variance for both sides, as the paper's fixed-variance variant: two separately pooled variances
            # make the ratio quadratic in phi, so a target model slightly more (or less) confident than its
            # shadows everywhere pushes members, furthest out, to the narrower side's tail and ranks them below
            # non-members (AUC 0.46 on an early-stopped MLP that leaks nothing); one variance keeps the score
            # increasing in phi wherever IN sits above OUT
            sd_in = sd_out = _shared_sd(phi, is_in, mu_in, mu_out)
            mu_in = _shrunk_in_mean(mu_in, mu_out, sd_in[0], is_in)
        score = stats.norm.logpdf(phi_target, mu_in, sd_in) - stats.norm.logpdf(phi_target, mu_out, sd_out)
    else:
        # log P(Z < phi) for Z ~ OUT: log, so that rows far in the tail stay ordered instead of tying at 1
        score = stats.norm.logcdf((phi_target - mu_out) / sd_out)
    side = "IN and OUT" if online else "OUT"
    variance = "a variance per candidate" if per_example else (
        f"one variance shared by all candidates (fewer than {_GLOBAL_VARIANCE_BELOW} shadow models)")
    notes.append(f"LiRA ({'online' if online else 'offline'}): {k} shadow models, each on a random half of "
                 f"{len(pool_y)} rows; each candidate is IN for {k // 2} of them; Gaussians fitted to the "
                 f"{side} models with {variance}.")
    n_m = len(my)
    per_shadow = len(pool_y) * (k // 2) / k
    if not 0.5 <= per_shadow / n_m <= 2:
        notes.append(f"each shadow model trains on about {per_shadow:.0f} rows but the target on {n_m} members; LiRA "
                     "assumes they train alike (balance members and non-members, or add population rows).")
    return score[:n_m], score[n_m:]


def _gaussian(phi: np.ndarray, mask: np.ndarray, per_example: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-candidate mean of ``phi`` over the models in ``mask`` and a per-candidate or pooled std."""
    count = mask.sum(axis=0)
    mu = np.where(mask, phi, 0.0).sum(axis=0) / count
    sq = np.where(mask, (phi - mu) ** 2, 0.0)
    if per_example:
        var = sq.sum(axis=0) / np.maximum(count - 1, 1)
    else:
        dof = int(count.sum() - count.size)
        # one model per side and candidate (n_shadow < 4) leaves no spread within a candidate: fall back to the
        # spread over all of them, the paper's own global estimate
        var = np.full(count.size, sq.sum() / dof if dof > 0 else float(np.var(phi[mask])))
    return mu, np.sqrt(np.maximum(var, _MIN_VARIANCE))


def _shared_sd(phi: np.ndarray, is_in: np.ndarray, mu_in: np.ndarray, mu_out: np.ndarray) -> np.ndarray:
    """The within-candidate spread pooled over the IN and the OUT models of every candidate."""
    resid = np.where(is_in, phi - mu_in, phi - mu_out)
    dof = resid.size - 2 * resid.shape[1]
    var = float((resid**2).sum() / dof) if dof > 0 else float(np.var(phi))
    return np.full(resid.shape[1], np.sqrt(max(var, _MIN_VARIANCE)))


def _shrunk_in_mean(mu_in: np.ndarray, mu_out: np.ndarray, sd: float, is_in: np.ndarray) -> np.ndarray:
    """Empirical-Bayes IN means: each candidate's IN-OUT gap shrunk towards the average gap by the share of
    the gaps' spread that is not estimation noise. With a few shadow models per side the gap of a model that
    barely memorises is mostly noise, and the likelihood ratio, linear in phi with that gap as slope, ranks
    candidates by it rather than by the target's phi (online AUC 0.49 over four seeds on an early-stopped
    MLP where the OUT-only test reaches 0.53); shrunk, the ratio falls back to phi against the OUT mean
    there, and keeps each candidate's own gap where the gaps vary far beyond the noise."""
    gap = mu_in - mu_out
    n_in, n_out = is_in.sum(axis=0), (~is_in).sum(axis=0)
    noise = float(np.mean(sd**2 * (1.0 / n_in + 1.0 / n_out)))
    spread = float(np.var(gap))
    keep = 0.0 if spread <= 0 else max(0.0, 1.0 - noise / spread)
    return mu_out + gap.mean() + keep * (gap - gap.mean())


def _shadow(target: Any, train: Callable[..., Any], mx: Any, my: np.ndarray, nx: Any, ny: np.ndarray,
            pop: tuple[Any, np.ndarray] | None, classes: np.ndarray, k: int, rng: np.random.Generator,
            notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    if pop is None:
        sx, sy = _concat([mx, nx]), np.concatenate([my, ny])
        source = "the candidate rows (no population given; their membership in the target is never used)"
    else:
        sx, sy = pop
        source = "population"
    keep = _halves(rng, k, len(sy))
    seeds = rng.integers(0, 2**31 - 1, size=k)
    idx = labels_to_index(sy, classes)
    feats = _shadow_outputs(train, sx, sy, keep, seeds, sx, classes, lambda p: _attack_features(p, idx))
    feats = feats.reshape(k * len(sy), -1)  # model-major, like keep.reshape(-1)
    categorical = [feats.shape[1] - 1] if len(classes) <= 255 else None
    clf = HistGradientBoostingClassifier(categorical_features=categorical, random_state=int(rng.integers(2**31 - 1)))
    # one OpenMP thread: on a busy machine, spin-waiting threads made this small fit take minutes instead of a second
    with threadpool_limits(limits=1, user_api="openmp"):
        clf.fit(feats, keep.reshape(-1))
    notes.append(f"shadow attack: {k} shadow models, each trained on a random half of {len(sy)} rows of {source} "
                 "and queried on both halves; a gradient-boosted attack classifier on (true-class logit, "
                 "log-probabilities, label).")
    score_m = clf.decision_function(_attack_features(target.predict_proba(mx), labels_to_index(my, classes)))
    score_n = clf.decision_function(_attack_features(target.predict_proba(nx), labels_to_index(ny, classes)))
    return score_m, score_n


def _attack_features(probs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.column_stack([_phi(probs, idx), np.log(np.maximum(probs, _TINY)), idx])


# -- measuring the attack -----------------------------------------------------------------------------
def _roc(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR of "score >= t" at every distinct score t, from (0, 0) to (1, 1)."""
    scores = np.concatenate([pos, neg])
    order = np.argsort(-scores, kind="mergesort")
    s, is_pos = scores[order], np.r_[np.ones(len(pos)), np.zeros(len(neg))][order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last row of each run of tied scores
    tp = np.cumsum(is_pos)[last]
    fp = last + 1 - tp
    return np.r_[0.0, fp / len(neg)], np.r_[0.0, tp / len(pos)]


def _auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float, float]:
    """ROC AUC (ties count half) with DeLong's variance (DeLong et al., 1988; midrank form of Sun & Xu, 2014)."""
    from scipy.stats import norm, rankdata

    m, n = len(pos), len(neg)
    ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - rankdata(pos)) / n  # per member: share of non-members below it
    v01 = 1.0 - (ranks[m:] - rankdata(neg)) / m  # per non-member: share of members above it
    auc = float(v10.mean())
    se = math.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    z = norm.ppf(0.975)
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def _advantage_interval(pos: np.ndarray, neg: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    boots = np.empty(_N_BOOT)
    for b in range(_N_BOOT):
        fpr, tpr = _roc(pos[rng.integers(0, len(pos), len(pos))], neg[rng.integers(0, len(neg), len(neg))])
        boots[b] = np.max(tpr - fpr)
    low, high = np.quantile(boots, [0.025, 0.975])
    return float(low), float(high)


def _operating_point(pos: np.ndarray, neg: np.ndarray, target: float) -> OperatingPoint:
    n_pos, n_neg = len(pos), len(neg)
    allowed = int(math.floor(target * n_neg + 1e-9))
    if allowed < 1:
        need = int(math.ceil(1 / target - 1e-9))
        nan = float("nan")
        return OperatingPoint(target, nan, nan, nan, nan, nan, nan, nan, 0, 0,
                              note=f"an FPR of {target:g} needs at least {need} non-members to measure; got {n_neg}, "
                                   "so its TPR is NaN, not a number the data cannot support.")
    desc = np.sort(neg)[::-1]

    def flagged(k: int) -> tuple[float, int, int]:
        """Threshold allowing at most k false positives (the (k+1)-th largest non-member score), TP, FP."""
        t = float(desc[min(k, n_neg - 1)])
        return t, int(np.sum(pos > t)), int(np.sum(neg > t))

    threshold, tp, fp = flagged(allowed)
    fpr_low, fpr_high = (float(v) for v in wilson_interval(fp, n_neg))
    # the TPR at the thresholds whose empirical FPR sits at either end of that interval, each with its own
    # Wilson bound over the members: the interval covers both the members drawn and the threshold's FPR
    tpr_low = float(wilson_interval(flagged(int(math.floor(fpr_low * n_neg + 1e-9)))[1], n_pos)[0])
    tpr_high = float(wilson_interval(flagged(int(math.floor(fpr_high * n_neg + 1e-9)))[1], n_pos)[1])
    note = ""
    if fp < allowed:
        note = (f"ties at the threshold for an FPR of {target:g}: {fp} non-member(s) flagged where {allowed} were "
                f"allowed, so the achieved FPR is {fp / n_neg:.4g}.")
    return OperatingPoint(target, tp / n_pos, min(tpr_low, tp / n_pos), max(tpr_high, tp / n_pos), fp / n_neg,
                          fpr_low, fpr_high, threshold, tp, fp, note)


def _result(attack: str, s_m: np.ndarray, s_n: np.ndarray, notes: list[str], params: dict[str, Any],
            rng: np.random.Generator) -> MembershipResult:
    s_m, s_n = np.asarray(s_m, dtype=np.float64), np.asarray(s_n, dtype=np.float64)
    fpr, tpr = _roc(s_m, s_n)
    auc, auc_low, auc_high = _auc(s_m, s_n)
    adv_low, adv_high = _advantage_interval(s_m, s_n, rng)
    points = tuple(_operating_point(s_m, s_n, t) for t in _TARGET_FPRS)
    notes = notes + [p.note for p in points if p.note]
    return MembershipResult(attack=attack, auc=auc, auc_low=auc_low, auc_high=auc_high,
                            tpr_at_0_1pct_fpr=points[0].tpr, tpr_at_1pct_fpr=points[1].tpr,
                            advantage=float(np.max(tpr - fpr)), advantage_low=adv_low, advantage_high=adv_high,
                            operating_points=points, fpr=fpr, tpr=tpr, member_scores=s_m, non_member_scores=s_n,
                            n_members=len(s_m), n_non_members=len(s_n), notes=tuple(notes), params=params)
