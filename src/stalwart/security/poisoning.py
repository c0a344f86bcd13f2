"""Poisoning sensitivity: how much a model's training procedure gives way to poisoned data.

:func:`poisoning_sensitivity` retrains the model (a scikit-learn estimator is cloned and refitted;
anything else needs ``fit(x, y, seed) -> model``) on the training data with a share ``rate`` of
the rows poisoned, for each rate, and measures the retrained model on clean held-out rows:

- ``"random"``: the rows' labels flipped to another class at random (label noise an
  attacker injects; Biggio et al., 2011);
- ``"targeted"``: rows of other classes relabelled as ``target_class`` (an attacker who wants
  one answer more often);
- ``"backdoor"``: a trigger planted in the rows' inputs and their labels set to
  ``target_class`` (Gu et al., 2017, BadNets): for a table, chosen columns set to fixed values
  outside their usual range (``trigger={"col": value}``, or by default the two columns with the
  largest range, each set to its maximum plus half its range); for images (N, C, H, W) a 3 x 3
  patch of the maximum value in the bottom-right corner.

Per rate: clean accuracy (Wilson interval) and **attack success**: for ``"targeted"`` the share
of held-out rows of other classes predicted as the target; for ``"backdoor"`` the same on the
held-out rows *with the trigger planted* (a model that learnt the backdoor answers the target);
for ``"random"`` the accuracy drop from rate 0. Rate 0 retrains on the clean data with the same
seed, so a deterministic training procedure gives the same model as a clean fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_array, check_lengths, check_seed, param_error
from stalwart.errors import ConfigError, InputError, ModelError

__all__ = ["poisoning_sensitivity", "PoisoningResult", "POISON_KINDS", "plant_trigger"]

POISON_KINDS = ("random", "targeted", "backdoor")


@dataclass(frozen=True)
class PoisoningResult:
    """Clean accuracy and attack success of the retrained model per poison rate."""

    kind: str
    rates: tuple[float, ...]
    rows: list[dict[str, Any]]  # per rate: rate, n_poisoned, accuracy (+ interval), attack_success (+ interval)
    target_class: Any = None
    trigger: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def at(self, rate: float) -> dict[str, Any]:
        """The row of one poison rate."""
        for r in self.rows:
            if r["rate"] == rate:
                return r
        raise ConfigError(f"rate {rate} was not measured; the rates are {list(self.rates)}")


def _fitter(model: Any, fit: Callable[..., Any] | None) -> Callable[[Any, np.ndarray, int], Any]:
    if fit is not None:
        if not callable(fit):
            raise param_error("poisoning_sensitivity", "fit", "a function fit(x, y, seed) -> fitted model", fit)
        return fit
    from sklearn.base import clone

    from stalwart.models.base import Model

    est = getattr(model, "estimator", None) if isinstance(model, Model) else model  # a wrapped model: its estimator
    if not hasattr(est, "fit") or not hasattr(est, "get_params"):
        raise ModelError(f"poisoning_sensitivity retrains the model, and {type(model).__name__} is not a scikit-learn "
                         "estimator; pass fit=lambda x, y, seed: ... that trains a fresh model. Probes that need no "
                         "retraining still apply: membership inference (loss, confidence) and extraction.")

    def refit(x: Any, y: np.ndarray, seed: int) -> Any:
        m = clone(est)
        if "random_state" in m.get_params():
            m.set_params(random_state=seed)
        return m.fit(x, y)

    return refit


def plant_trigger(x: Any, trigger: Mapping[Any, float] | None, reference: np.ndarray) -> tuple[np.ndarray, dict]:
    """``x`` with the backdoor trigger planted (see the module docstring), and the trigger used:
    ``{column index: value}`` for tables, ``{"patch": value}`` for images. ``reference``: the
    clean training inputs that set the default trigger's values."""
    out = np.array(x, dtype=np.float32, copy=True)
    if out.ndim == 4:
        value = float(np.max(reference)) if trigger is None else float(trigger.get("patch", np.max(reference)))
        out[:, :, -3:, -3:] = value
        return out, {"patch": value}
    if out.ndim != 2:
        raise InputError(f"a backdoor trigger goes into a table (n, features) or images (n, c, h, w); got shape "
                         f"{out.shape}. Reshape the inputs to one of those.")
    if trigger is None:
        span = reference.max(axis=0) - reference.min(axis=0)
        cols = np.argsort(-span, kind="stable")[:2]
        trigger = {int(c): float(reference[:, c].max() + 0.5 * span[c]) for c in cols}
    for c, v in trigger.items():
        if not isinstance(c, (int, np.integer)) or not 0 <= c < out.shape[1]:
            raise InputError(f"trigger column {c!r} is not a column index of the {out.shape[1]} features; use "
                             "integer positions (0-based).")
        out[:, int(c)] = v
    return out, {int(c): float(v) for c, v in trigger.items()}


def poisoning_sensitivity(model: Any, x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, kind: str = "random",
                          rates: Sequence[float] = (0.0, 0.01, 0.05, 0.1, 0.2), target_class: Any = None,
                          trigger: Mapping[Any, float] | None = None, fit: Callable[..., Any] | None = None,
                          seed: int = 0) -> PoisoningResult:
    """Retrain with a share of poisoned rows per rate and measure the result (see the module docstring).

    Parameters
    ----------
    model : a scikit-learn estimator (fitted or not; cloned), or anything with ``fit`` given
    x_train, y_train : the clean training data
    x_test, y_test : clean held-out rows
    kind : "random", "targeted" or "backdoor"
    rates : shares of the training rows poisoned, each in [0, 1); 0 is the clean baseline
    target_class : the class the attacker wants (targeted, backdoor); default the first class
    trigger : backdoor trigger for a table, ``{column index: value}`` (default: see the module doc)
    fit : ``fit(x, y, seed) -> fitted model`` for models that are not scikit-learn estimators
    seed : which rows are poisoned and the refits' seed
    """
    owner = "poisoning_sensitivity"
    check_seed(owner, seed)
    if kind not in POISON_KINDS:
        raise param_error(owner, "kind", f"one of {list(POISON_KINDS)}", kind)
    ok = isinstance(rates, Sequence) and not isinstance(rates, str) and len(rates) > 0 and all(
        isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1 for r in rates)
    if not ok:
        raise param_error(owner, "rates", "a non-empty list of poison rates, each in [0, 1)", rates)
    refit = _fitter(model, fit)
    xt = check_array(x_train, "x_train", ndim=(2, 4), dtype=np.float32)
    xs = check_array(x_test, "x_test", ndim=(2, 4), dtype=np.float32)
    yt, ys = np.asarray(y_train), np.asarray(y_test)
    check_lengths("x_train", xt, "y_train", yt)
    check_lengths("x_test", xs, "y_test", ys)
    classes = np.unique(yt)
    if len(classes) < 2:
        raise InputError("y_train has one class; poisoning needs a classifier trained on at least two.")
    unknown = sorted(set(np.unique(ys).tolist()) - set(classes.tolist()), key=str)
    if unknown:
        raise InputError(f"y_test has labels {unknown[:5]} that y_train does not; pass held-out rows of the same classes.")
    target = classes[0] if target_class is None else target_class
    if target not in classes.tolist():
        raise ConfigError(f"target_class {target!r} is not a class of y_train ({classes.tolist()[:10]}); name one of them.")
    planted_test, used = (plant_trigger(xs, trigger, xt) if kind == "backdoor" else (None, None))
    others_test = ys != target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(yt))  # rows poisoned first: nested, so a larger rate adds to a smaller one
    eligible = order if kind == "random" else order[yt[order] != target]
    rows = []
    base_acc = None
    for rate in sorted(set(float(r) for r in rates)):
        k = int(round(rate * len(yt)))
        if k > len(eligible):
            raise ConfigError(f"rate {rate} poisons {k} rows but only {len(eligible)} are eligible (rows not of the target "
                              "class); lower the rate.")
        chosen = eligible[:k]
        x_p, y_p = xt, yt.copy()
        if kind == "random":
            shift = rng.integers(1, len(classes), k)
            pos = np.searchsorted(classes, yt[chosen])
            y_p[chosen] = classes[(pos + shift) % len(classes)]
        else:
            y_p[chosen] = target
            if kind == "backdoor" and k:
                x_p = xt.copy()
                x_p[chosen] = plant_trigger(xt[chosen], used, xt)[0]
        fitted = refit(x_p, y_p, seed)
        pred = np.asarray(fitted.predict(xs))
        hits = int(np.sum(pred == ys))
        low, high = wilson_interval(hits, len(ys))
        row: dict[str, Any] = {"rate": rate, "n_poisoned": k, "accuracy": hits / len(ys), "accuracy_low": float(low),
                               "accuracy_high": float(high)}
        if kind == "random":
            base_acc = row["accuracy"] if base_acc is None else base_acc
            row["attack_success"] = base_acc - row["accuracy"]  # the accuracy the poison took
            row["attack_success_low"] = row["attack_success_high"] = None
        else:
            seen = np.asarray(fitted.predict(planted_test)) if kind == "backdoor" else pred
            n_other = int(others_test.sum())
            s = int(np.sum(seen[others_test] == target))
            s_low, s_high = wilson_interval(s, n_other) if n_other else (float("nan"), float("nan"))
            row.update(attack_success=s / n_other if n_other else float("nan"), attack_success_low=float(s_low),
                       attack_success_high=float(s_high))
        rows.append(row)
    measured = "the accuracy lost against rate 0" if kind == "random" else (
        f"held-out rows of other classes{' with the trigger' if kind == 'backdoor' else ''} predicted as {target!r}")
    notes = (f"{kind} poisoning of {len(yt)} training rows; attack success = {measured}",)
    return PoisoningResult(kind, tuple(r["rate"] for r in rows), rows, None if kind == "random" else target,
                           used if kind == "backdoor" else None, notes)
