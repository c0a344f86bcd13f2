"""Contract checks for plug-ins, in the spirit of scikit-learn's ``check_estimator``.

stalwart runs these over every registered attack, perturbation and detector
(``tests/test_common.py``); plug-in authors run them over theirs::

    from stalwart.testing import check_attack
    check_attack(MyAttack(threat, steps=10), model, x, y)

Each raises ``AssertionError`` with a message that names the rule that broke.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import (
    check_array,
    check_choice,
    check_param,
    check_positive,
    check_seed,
    param_error,
)
from stalwart.errors import ConfigError, InputError

__all__ = ["check_attack", "check_perturbation", "check_detector", "linear_problem", "linear_boundary_distance",
           "check_linear_closed_form"]


def _fail(owner: Any, rule: str) -> AssertionError:
    return AssertionError(f"{type(owner).__name__}: {rule}")


def _require(value: Any, owner: str, name: str, cls: type, expect: str) -> None:
    """A helper called with the wrong kind of object is misuse (ConfigError), not a broken plug-in."""
    if not isinstance(value, cls):
        raise param_error(owner, name, expect, value)


def check_attack(attack: Any, model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """An attack stays inside its threat model, reports success honestly and is reproducible.

    - ``repr`` names the class; ``type(attack)(attack.threat, **attack.params())`` rebuilds it
    - the same seed gives the same adversarial examples
    - every example is within eps (in the threat model's norm), within bounds, and leaves
      immutable features exactly unchanged; failed samples are returned unchanged
    - reported success equals success recomputed from the model's own predictions, and the reported
      predictions are the model's own on ``x`` and on the returned examples
    """
    from stalwart.attacks.base import Attack
    from stalwart.models import wrap

    _require(attack, "check_attack", "attack", Attack, "an Attack instance, e.g. attacks.PGD(threat)")
    model = wrap(model)
    if type(attack).__name__ not in repr(attack):
        raise _fail(attack, f"repr {attack!r} does not name the class")
    rebuilt = _rebuild(attack)
    first = attack.run(model, x, y)
    second = rebuilt.run(model, x, y)
    if not (np.array_equal(first.x_adv, second.x_adv) and np.array_equal(first.success, second.success)):
        raise _fail(attack, "the same seed and parameters gave different results")
    threat = attack.threat
    dist = np.asarray(threat.distance(first.x_adv, np.asarray(x, dtype=np.float32)), dtype=float)
    if np.any(dist > float(threat.eps) * (1 + 1e-5) + 1e-6):
        raise _fail(attack, f"returned a perturbation of {threat.norm} size {dist.max():.6g} > eps={threat.eps}")
    if threat.bounds is not None:
        lo, hi = (np.asarray(b, dtype=np.float32) for b in threat.bounds)
        if np.any(first.x_adv < lo - 1e-6) or np.any(first.x_adv > hi + 1e-6):
            raise _fail(attack, "returned examples outside the threat model's bounds")
    if threat.mutable is not None:
        frozen = ~np.broadcast_to(np.asarray(threat.mutable), first.x_adv.shape[1:])
        if not np.array_equal(first.x_adv[:, frozen], np.asarray(x, dtype=np.float32)[:, frozen]):
            raise _fail(attack, "changed an immutable feature")
    pred_adv = model.predict(first.x_adv)
    pred_clean = model.predict(np.asarray(x, dtype=np.float32))
    expected = (pred_adv != first.y) | (pred_clean != first.y)
    if first.targeted:
        raise _fail(attack, "check_attack runs untargeted attacks; pass targeted=None")
    if not np.array_equal(expected, first.success):
        raise _fail(attack, "reported success differs from success recomputed with the model")
    if getattr(model, "verdict_draws", 1) == 1 and not (
            np.array_equal(first.pred_adv, pred_adv) and np.array_equal(first.pred_clean, pred_clean)):
        raise _fail(attack, "reported predictions differ from the model's own on x and x_adv")
    if not np.array_equal(first.x_adv[~first.success], np.asarray(x, dtype=np.float32)[~first.success]):
        raise _fail(attack, "a failed sample was returned changed")
    if np.any(first.queries < 0) or first.time_s < 0:
        raise _fail(attack, "negative query count or time")


def _rebuild(attack: Any) -> Any:
    params = attack.params()
    try:
        return type(attack)(attack.threat, **params)
    except TypeError as exc:
        # parameters that are objects (a schema, a synonym source) are not plain params; an attack
        # may keep them private and expose `rebuild_kwargs` for the rest
        extra = getattr(attack, "rebuild_kwargs", None)
        if extra is None:
            raise _fail(attack, f"cannot be rebuilt from params() {params}: {exc}") from None
        return type(attack)(attack.threat, **params, **extra())


def check_perturbation(perturbation: Any, x: Any, schema: Any = None) -> None:
    """A perturbation is pure, seeded, keeps the input's type and length, and validates severity;
    an image perturbation also takes a non-contiguous tensor view (a permuted N x H x W x C array)
    and gives the same images as from the array."""
    from stalwart.perturb.base import Perturbation

    _require(perturbation, "check_perturbation", "perturbation", Perturbation,
             "a Perturbation instance, e.g. perturb.get('fog')")
    if isinstance(x, (pd.DataFrame, np.ndarray)):
        before = x.copy()
    elif isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        # not a batch; apply() refuses it with the reason, else the helper does
        perturbation.apply(x, 3, rng=1, schema=schema)
        raise param_error("check_perturbation", "x", "a batch: a DataFrame or array, or a list of strings", x)
    else:
        before = list(x)
    a = perturbation.apply(x, 3, rng=1, schema=schema)
    b = perturbation.apply(x, 3, rng=1, schema=schema)
    if not _same(a, b):
        raise _fail(perturbation, "the same seed gave different outputs")
    if not _same(x, before):
        raise _fail(perturbation, "modified its input in place")
    if type(a) is not type(x) or len(a) != len(x):
        raise _fail(perturbation, f"returned {type(a).__name__} of length {len(a)} for {type(x).__name__} of "
                    f"length {len(x)}")
    if isinstance(x, np.ndarray) and a.shape != x.shape:
        raise _fail(perturbation, f"changed the shape {x.shape} -> {a.shape}")
    if isinstance(x, np.ndarray) and x.ndim == 4 and getattr(perturbation, "modality", None) == "image":
        # the usual numpy-to-torch path: N x H x W x C memory seen as N x C x H x W, a strided view
        import torch

        view = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
        t = perturbation.apply(view, 3, rng=1, schema=schema)
        if not isinstance(t, torch.Tensor) or not np.allclose(t.cpu().numpy(), a, atol=1e-5):
            raise _fail(perturbation, "gave another result on a non-contiguous tensor view of the same images")
    for bad in (0, 6, 2.5, True):
        try:
            perturbation.apply(x, bad, rng=0, schema=schema)
        except ConfigError:
            continue
        raise _fail(perturbation, f"accepted severity {bad!r}; severities are the integers 1..5")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    return list(a) == list(b)


def check_detector(detector: Any, reference: Any, current: Any) -> None:
    """A detector follows its interface: drift ``fit``/``test``, OOD ``fit``/``score``, streaming ``update``."""
    from stalwart.shift.base import DriftDetector, DriftResult, OODDetector, StreamDetector

    if isinstance(detector, DriftDetector):
        if detector.fit(reference) is not detector:
            raise _fail(detector, "fit() must return the detector")
        result = detector.test(current)
        if not isinstance(result, DriftResult):
            raise _fail(detector, f"test() returned {type(result).__name__}, not DriftResult")
        if result.p_value is not None and not 0.0 <= result.p_value <= 1.0:
            raise _fail(detector, f"p-value {result.p_value} outside [0, 1]")
        again = detector.test(current)
        if again.to_dict() != result.to_dict():
            raise _fail(detector, "testing the same data twice gave different results")
    elif isinstance(detector, OODDetector):
        if detector.fit(reference) is not detector:
            raise _fail(detector, "fit() must return the detector")
        scores = np.asarray(detector.score(current))
        if scores.shape != (len(current),) or not np.all(np.isfinite(scores)):
            raise _fail(detector, f"score() must return one finite score per sample; got shape {scores.shape}")
        detector.infer_threshold(reference, fpr=0.1)
        flagged = np.asarray(detector.predict(reference))
        if flagged.dtype != bool or abs(flagged.mean() - 0.1) > 0.1:
            raise _fail(detector, f"infer_threshold(fpr=0.1) flags {flagged.mean():.2f} of the reference")
    elif isinstance(detector, StreamDetector):
        fired = detector.run(current)
        if any(not 0 <= i < len(np.ravel(current)) for i in fired) or fired != sorted(fired):
            raise _fail(detector, f"detected_at {fired} are not increasing indices into the stream")
    else:
        raise ConfigError(f"check_detector(detector=...) must be a DriftDetector, OODDetector or StreamDetector "
                          f"instance (e.g. shift.TabularDrift()); got {detector!r}")


def linear_problem(d: int = 10, n: int = 300, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, float]:
    """A random binary linear torch classifier with Gaussian inputs labelled by its own decisions.

    Returns ``(net, x, y, w, b)`` where ``w·x + b`` is the score of class 1 minus class 0, so
    :func:`linear_boundary_distance` gives every sample's exact minimal adversarial distance.
    """
    import torch

    check_positive("linear_problem", "d", d, integer=True)
    check_positive("linear_problem", "n", n, integer=True)
    check_seed("linear_problem", seed)
    gen = torch.Generator().manual_seed(int(seed))
    net = torch.nn.Linear(d, 2)
    with torch.no_grad():
        net.weight.copy_(torch.randn(2, d, generator=gen))
        net.bias.copy_(torch.randn(2, generator=gen))
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    w = (net.weight[1] - net.weight[0]).detach().double().numpy()
    b = float((net.bias[1] - net.bias[0]).detach())
    y = (x.astype(np.float64) @ w + b > 0).astype(int)
    return net, x, y, w, b


def linear_boundary_distance(x: np.ndarray, w: np.ndarray, b: float, norm: str) -> np.ndarray:
    """Smallest perturbation in ``norm`` that moves ``x`` onto the plane ``w·x + b = 0``.

    The dual-norm formula ``|w·x + b| / ||w||_*`` (linf -> l1, l2 -> l2, l1 -> linf): the exact
    minimal adversarial distance of a binary linear classifier, when no bound binds.
    """
    check_choice("linear_boundary_distance", "norm", norm, ("linf", "l2", "l1"))
    x = check_array(x, "x", ndim=2)
    w = check_array(w, "w", ndim=1)
    if w.shape[0] != x.shape[1]:
        raise InputError(f"w has {w.shape[0]} weights but x has {x.shape[1]} features; pass one weight per feature.")
    check_param("linear_boundary_distance", "b", b, isinstance(b, (int, float, np.integer, np.floating))
                and not isinstance(b, bool) and np.isfinite(b), "a finite number")
    dual = {"linf": np.abs(w).sum(), "l2": np.linalg.norm(w), "l1": np.abs(w).max()}[norm]
    if dual == 0:
        raise InputError("w is all zero, so the classifier is constant and no boundary exists; pass the weight "
                         "difference of a real linear model (linear_problem returns one).")
    return np.abs(x @ w + b) / dual


def check_linear_closed_form(attack: Any, model: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float,
                             margin: float = 1.05, min_side: int = 10) -> None:
    """On a binary linear model, the attack flips every sample whose exact distance is below
    ``eps / margin``, none above ``eps * margin``, and never reports a distance below the exact one.

    Samples within the margin of eps are near-ties and not judged; the data must have enough
    samples on both sides for the check to mean something.
    """
    from stalwart.attacks.base import Attack

    _require(attack, "check_linear_closed_form", "attack", Attack, "an Attack instance, e.g. attacks.PGD(threat)")
    check_param("check_linear_closed_form", "margin", margin, isinstance(margin, (int, float, np.integer,
                np.floating)) and not isinstance(margin, bool) and np.isfinite(margin) and margin >= 1,
                "a number >= 1 (the relative band around eps left unjudged)")
    check_positive("check_linear_closed_form", "min_side", min_side, integer=True)
    dist = linear_boundary_distance(x, w, b, attack.threat.norm)
    eps = float(attack.threat.eps)
    below, above = dist < eps / margin, dist > eps * margin
    if below.sum() < min_side or above.sum() < min_side:
        raise _fail(attack, f"the data puts {below.sum()} samples below and {above.sum()} above eps; choose an "
                    f"eps with at least {min_side} on each side")
    res = attack.run(model, x, y)
    if not res.success[below].all():
        raise _fail(attack, f"missed {int((~res.success[below]).sum())} samples within reach of eps")
    if res.success[above].any():
        raise _fail(attack, f"flipped {int(res.success[above].sum())} samples beyond eps")
    if not (res.distance[res.success] >= dist[res.success] * (1 - 1e-4)).all():
        raise _fail(attack, "reported a perturbation smaller than the exact minimal distance")
