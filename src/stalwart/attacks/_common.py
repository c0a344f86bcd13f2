"""Pieces every attack module shares, each written once.

- :class:`Feasible`: a threat model's constraints (mutable mask, bounds, eps-ball) as tensors on
  the attack's device, built once per run; ``ThreatModel.project`` and every attack's inner loop
  use it, in the input's own shape or in an attack's internal layout.
- :func:`norm_of`, :func:`project_ball`: per-sample norms and ball projections.
- :func:`is_fooled`, :func:`per_sample`: small tensor helpers of the white-box attacks.
- :func:`classifier`, :func:`numeric_batch`: the checks every entry point (``Attack.run``,
  ``evaluate``, ``minimal_perturbation``, ``WordSubstitution.run``) makes on its inputs.

Nothing here keeps state between calls: a :class:`Feasible` belongs to one run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from stalwart._validation import (
    check_array,
    check_choice,
    check_image_layout,
    check_labels,
    check_lengths,
)
from stalwart.errors import ConfigError, ModelError

__all__ = ["Feasible", "norm_of", "project_ball", "per_sample", "is_fooled", "classifier", "numeric_batch",
           "check_threat_shape", "NORMS"]

NORMS: tuple[str, ...] = ("linf", "l2", "l1", "l0")


# -- norms and balls ----------------------------------------------------------------------------
def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample norm of a batch of perturbations."""
    check_choice("norm_of", "norm", norm, NORMS)
    f = _flat(delta)
    if norm == "linf":
        return f.abs().amax(dim=1)
    if norm == "l2":
        return f.norm(p=2, dim=1)
    if norm == "l1":
        return f.abs().sum(dim=1)
    return (f != 0).sum(dim=1).to(delta.dtype)


def project_ball(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Euclidean projection of each sample's ``delta`` onto the ``norm`` ball of radius eps."""
    check_choice("project_ball", "norm", norm, NORMS)
    if norm == "linf":
        return delta.clamp(-eps, eps)
    f = _flat(delta)
    if norm == "l2":
        n = f.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12)
        return (f * torch.clamp(eps / n, max=1.0)).reshape(delta.shape)
    if norm == "l1":
        return _project_l1(f, eps).reshape(delta.shape)
    k = int(eps)
    if k >= f.shape[1]:
        return delta
    if k <= 0:
        return torch.zeros_like(delta)
    keep = f.abs().topk(k, dim=1).indices
    out = torch.zeros_like(f).scatter(1, keep, f.gather(1, keep))
    return out.reshape(delta.shape)


def _project_l1(f: torch.Tensor, eps: float) -> torch.Tensor:
    """Projection onto the L1 ball (Duchi et al., 2008), vectorised over samples."""
    a = f.abs()
    inside = a.sum(dim=1) <= eps
    if bool(inside.all()):
        return f
    mu, _ = a.sort(dim=1, descending=True)
    cssv = mu.cumsum(dim=1) - eps
    ind = torch.arange(1, f.shape[1] + 1, device=f.device, dtype=f.dtype)
    cond = (mu - cssv / ind) > 0
    rho = (cond.sum(dim=1, keepdim=True) - 1).clamp_min(0)  # cond holds on a prefix
    theta = cssv.gather(1, rho) / (rho + 1).to(f.dtype)
    proj = f.sign() * (a - theta).clamp_min(0)
    return torch.where(inside[:, None], f, proj)


# -- the threat model as tensors ----------------------------------------------------------------
class Feasible:
    """A threat model's constraints as tensors on one device, built once per run.

    Parameters
    ----------
    threat : ThreatModel
    sample_shape : shape of one input sample
    device : where the tensors live (the attack's device)
    layout : optional shape the attack works in (e.g. ``(channels, height * width)``); mask and
        bounds are then broadcast to one sample and reshaped to it. Without a layout they keep
        their own (broadcastable) shape, so a scalar bound stays a scalar.

    ``mask`` (bool) and ``lo``/``hi`` (float32) are ``None`` where the threat model has none;
    ``n_mutable`` counts the features of one sample that may change.
    """

    def __init__(self, threat: Any, sample_shape: tuple[int, ...], device: torch.device | str = "cpu", *,
                 layout: tuple[int, ...] | None = None) -> None:
        self.norm, self.eps = threat.norm, float(threat.eps)
        sample_shape = tuple(int(s) for s in sample_shape)

        def tensor(value: Any, dtype: Any) -> torch.Tensor:
            if layout is None and np.ndim(value) == 0:  # a scalar: no array round trip
                return torch.tensor(value, dtype=torch.bool if dtype is bool else torch.float32, device=device)
            arr = np.asarray(value, dtype=dtype)
            if layout is not None:
                arr = np.broadcast_to(arr, sample_shape).reshape(layout)
            return torch.as_tensor(np.array(arr), device=device)

        self.mask = None if threat.mutable is None else tensor(threat.mutable, bool)
        self._range: tuple[float, float] | None = None  # one (lower, upper) for every feature
        if threat.bounds is None:
            self.lo = self.hi = None
        else:
            self.lo, self.hi = (tensor(b, np.float32) for b in threat.bounds)
            if self.lo.ndim == 0 and self.hi.ndim == 0:
                self._range = (float(self.lo), float(self.hi))
        size = math.prod(sample_shape)
        self.n_mutable = size if threat.mutable is None else \
            int(np.broadcast_to(np.asarray(threat.mutable, dtype=bool), sample_shape).sum())

    def masked(self, d: torch.Tensor) -> torch.Tensor:
        """``d`` with immutable features set to zero."""
        return d if self.mask is None else torch.where(self.mask, d, torch.zeros((), dtype=d.dtype, device=d.device))

    def mutable_in(self, region: torch.Tensor) -> torch.Tensor:
        """A boolean ``region`` restricted to the mutable features."""
        return region if self.mask is None else region & self.mask

    def clip(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` clipped to the bounds."""
        if self._range is not None:  # scalar bounds: one kernel, no broadcasting
            return z.clamp(*self._range)
        return z if self.lo is None else torch.minimum(torch.maximum(z, self.lo), self.hi)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Nearest point (per sample) of the feasible set: restrict the change to the mutable
        features, project it onto the eps-ball, clip to bounds.

        Clipping after the ball projection never increases the norm, because every coordinate
        moves towards ``x``, which lies within bounds.
        """
        return self.clip(x + project_ball(self.masked(x_adv - x), self.norm, self.eps))

    def headroom(self, x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """How far each coordinate may move in the sign of ``direction`` before a bound."""
        if self.lo is None:
            room = torch.full_like(x, float("inf"))
        else:
            room = torch.where(direction > 0, self.hi - x, x - self.lo)
        return torch.where(direction != 0, room.clamp_min(0), torch.zeros_like(x))


# -- small tensor helpers -----------------------------------------------------------------------
def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a (n,) tensor to broadcast against a batch shaped like ``like``."""
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def is_fooled(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Whether each prediction is wrong (untargeted) or the target (targeted)."""
    pred = logits.argmax(dim=1)
    return pred != y if target is None else pred == target


# -- input checks shared by every entry point ---------------------------------------------------
def classifier(owner: str, model: Any) -> Any:
    """``model`` wrapped (:func:`stalwart.wrap`); a regression model is refused, naming ``owner``."""
    from stalwart.models import wrap

    model = wrap(model)
    if model.task != "classification":
        raise ModelError(f"{owner} attacks classifiers; {model.name} is a {model.task} model. Wrap a classifier "
                         "(a model with class scores) instead, or use stalwart.checks.NaturalRobustness to measure "
                         "a regression model.")
    return model


def numeric_batch(model: Any, x: Any, y: Any, threat: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x as float32, y)`` checked against each other, the model and ``threat``.

    In this order, so that the model never sees input that would fail inside it: ``x`` is a
    finite numeric array, not channels-last images (unless the model declares that shape),
    ``threat``'s per-feature bounds and mask fit one sample; then ``y`` holds the model's labels,
    one per sample.
    """
    xs = check_array(x, "x", dtype=np.float32)
    if getattr(model, "input_shape", None) != tuple(xs.shape[1:]):  # unless the model declares that shape
        check_image_layout(xs.shape)
    if threat is not None:
        check_threat_shape(threat, xs.shape[1:])
    ys = check_labels(y, model.known_classes(xs), "y")
    check_lengths("x", xs, "y", ys)
    return xs, ys


def check_threat_shape(threat: Any, sample: tuple[int, ...]) -> None:
    """Per-feature bounds and masks of ``threat`` must fit one sample of shape ``sample``.

    They may broadcast *to* the sample (a scalar, or one value per channel as (C, 1, 1)), never
    the sample to them: 3 bounds for 4 features is refused with a :class:`ConfigError` that
    names the expected length, instead of a numpy broadcasting error (or a silent broadcast).
    """
    parts = [] if threat.bounds is None else [("bounds", b) for b in threat.bounds]
    if threat.mutable is not None:
        parts.append(("mutable", threat.mutable))
    for name, value in parts:
        arr = np.asarray(value)
        if arr.ndim == 0:  # a scalar fits every sample
            continue
        try:
            np.broadcast_to(arr, sample)
        except ValueError:
            what = f"{sample[0]} features" if len(sample) == 1 else f"samples of shape {sample}"
            expected = f"{sample[0]} values (one per feature)" if len(sample) == 1 else \
                f"an array broadcastable to {sample}"
            raise ConfigError(
                f"ThreatModel({name}=...) has shape {arr.shape} but x has {what}; give {expected} or a scalar."
            ) from None
