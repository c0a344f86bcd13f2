"""ThreatModel, Attack and AttackResult.

The base class owns the fixed steps of every attack: validate inputs, move them to the model's
device, call the subclass's one method, project the result back into the threat model and
**recompute success from the model's own predictions** (an attack's claim is never trusted).
Samples the model already misclassifies count as not robust and are not attacked.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from stalwart._registry import Registry
from stalwart._validation import (
    check_array,
    check_choice,
    check_image_layout,
    check_labels,
    check_lengths,
    check_param,
    check_seed,
    labels_to_index,
    param_error,
)
from stalwart.errors import ConfigError, InputError, ModelError

Norm = Literal["linf", "l2", "l1", "l0"]
NORMS: tuple[str, ...] = ("linf", "l2", "l1", "l0")
#: what a threat model's eps is measured in, and how reports say it
EPS_UNITS: dict[str, str] = {"raw": "input units", "range": "fraction of each feature's range"}


@dataclass(frozen=True, eq=False)
class ThreatModel:
    """What the adversary may do.

    Parameters
    ----------
    norm : "linf", "l2", "l1" or "l0" — the distance the perturbation is measured in
    eps : the largest allowed perturbation in that norm (for l0: the number of features)
    bounds : valid input range ``(lower, upper)``; scalars or arrays broadcastable to one sample
    mutable : boolean mask broadcastable to one sample; False marks features that may not change
    unit : "raw" (default) or "range" — what eps is measured in. ``"raw"``: the input's own
        units. ``"range"``: a fraction of each feature's range ``upper - lower`` (needs finite
        bounds), the unit stalwart's checks and command line use, so that eps means the same on
        every feature and every data set: an attack then runs with every range mapped to [0, 1]
        and reports distances in that unit. On [0, 1] images the two are the same.

    Examples
    --------
    >>> import numpy as np
    >>> threat = ThreatModel("linf", 0.05, (np.array([0.0, 0.0]), np.array([1.0, 1000.0])), unit="range")
    >>> threat.to_dict()["eps_unit"]
    "fraction of each feature's range"
    """

    norm: Norm = "linf"
    eps: float = 0.1
    bounds: tuple[Any, Any] | None = (0.0, 1.0)
    mutable: Any = None
    unit: str = "raw"

    def __post_init__(self) -> None:
        check_param(self, "norm", self.norm, self.norm in NORMS, f"one of {list(NORMS)}")
        check_param(self, "unit", self.unit, self.unit in EPS_UNITS, f"one of {list(EPS_UNITS)}")
        eps_ok = isinstance(self.eps, (int, float, np.integer, np.floating)) and not isinstance(self.eps, bool) \
            and np.isfinite(self.eps) and self.eps >= 0
        check_param(self, "eps", self.eps, bool(eps_ok), "a finite number >= 0")
        if self.norm == "l0":  # eps counts features: 1.5 would silently mean 1
            check_param(self, "eps", self.eps, float(self.eps).is_integer(),
                        "a whole number of features for norm 'l0'")
        shapes: list[tuple[str, tuple[int, ...]]] = []
        if self.bounds is not None:
            if not isinstance(self.bounds, (tuple, list)) or len(self.bounds) != 2:
                raise param_error(self, "bounds", "a pair (lower, upper)", self.bounds)
            try:
                lo, hi = (np.asarray(b, dtype=float) for b in self.bounds)
            except (TypeError, ValueError):  # non-numeric, or ragged
                raise param_error(self, "bounds", "a pair of numbers or per-feature arrays of numbers",
                                  self.bounds) from None
            if np.isnan(lo).any() or np.isnan(hi).any():
                raise param_error(self, "bounds", "a pair without NaN (use -inf or inf for no bound)", self.bounds)
            shapes += [("lower bound", lo.shape), ("upper bound", hi.shape)]
            _check_broadcast(self, "bounds", shapes, self.bounds)
            if np.any(lo > hi):
                raise param_error(self, "bounds", "a pair with lower <= upper", self.bounds)
        if self.mutable is not None:
            m = np.asarray(self.mutable)
            if m.dtype != bool:
                raise param_error(self, "mutable", "a boolean mask", self.mutable)
            _check_broadcast(self, "mutable", [*shapes, ("mutable mask", m.shape)], self.mutable)

    @classmethod
    def from_schema(cls, schema: Any, norm: Norm = "linf", eps: float = 0.03, *, unit: str = "range") -> ThreatModel:
        """Bounds and mutable mask from a tabular or image :class:`~stalwart.data.Schema`.

        ``eps`` is a fraction of each feature's range by default (``unit="range"``), as in
        ``stalwart scan`` and ``stalwart attack``; ``unit="raw"`` takes it in the data's units.
        Tabular categorical columns are held fixed (they have no numeric range).
        """
        from stalwart.data.schema import Schema

        if not isinstance(schema, Schema):
            raise param_error("ThreatModel.from_schema", "schema", "a stalwart Schema (e.g. dataset.schema)", schema)
        if schema.modality == "image":
            return cls(norm, eps, schema.value_range, unit=unit)
        if schema.modality == "tabular":
            lo, hi = schema.numeric_bounds()
            kinds = np.array([c.kind for c in schema.columns])
            return cls(norm, eps, (lo, hi), schema.mutable_mask & (kinds != "categorical"), unit=unit)
        raise ConfigError("a ThreatModel for text data is not defined; use the text attack's word budget")

    @property
    def needs_rescaling(self) -> bool:
        """Whether attacks must run in the range-normalised space (``unit="range"``)."""
        return self.unit == "range"

    def range_space(self, x: np.ndarray):  # noqa: ANN201 - RangeSpace, imported lazily
        """The problem with every feature's range mapped to [0, 1] (see :mod:`stalwart.attacks._range`)."""
        from stalwart.attacks._range import range_space

        return range_space(self, x)

    @property
    def eps_unit_text(self) -> str:
        """What eps is measured in, for people."""
        return EPS_UNITS[self.unit]

    # -- torch helpers used by every attack ---------------------------------------------------
    def _tensor(self, value: Any, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value, dtype=np.float32), device=like.device)

    def mask_tensor(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.mutable is None:
            return None
        return torch.as_tensor(np.asarray(self.mutable), device=like.device).to(like.dtype)

    def clip_bounds(self, x: torch.Tensor) -> torch.Tensor:
        if self.bounds is None:
            return x
        lo, hi = (self._tensor(b, x) for b in self.bounds)
        return torch.maximum(torch.minimum(x, hi), lo)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Nearest point (per sample) of the threat model's feasible set, applied as:
        restrict to mutable features, project onto the eps-ball, clip to bounds.

        Clipping to bounds after the ball projection never increases the norm, because every
        coordinate moves towards ``x``, which lies within bounds.
        """
        delta = x_adv - x
        mask = self.mask_tensor(x)
        if mask is not None:
            delta = delta * mask
        delta = project_ball(delta, self.norm, float(self.eps))
        return self.clip_bounds(x + delta)

    def distance(self, x_adv: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Per-sample perturbation size in the unit of eps (with ``unit="range"``: each feature's
        change as a fraction of its range)."""
        d = torch.as_tensor(np.asarray(x_adv) if not torch.is_tensor(x_adv) else x_adv) - \
            torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        if self.needs_rescaling and self.bounds is not None:
            lo, hi = (np.broadcast_to(np.asarray(b, dtype=np.float64), tuple(d.shape[1:])) for b in self.bounds)
            width = np.where(np.isfinite(hi - lo) & (hi - lo > 0), hi - lo, 1.0)  # fixed features do not move
            d = d.to(torch.float64) / torch.as_tensor(width, device=d.device)
        return norm_of(d, self.norm).detach().cpu().numpy()

    def to_dict(self) -> dict[str, Any]:
        def plain(b: Any) -> Any:
            arr = np.asarray(b, dtype=float)
            return float(arr) if arr.ndim == 0 else ("per-feature", int(arr.size))
        return {"norm": self.norm, "eps": float(self.eps), "eps_unit": self.eps_unit_text,
                "bounds": None if self.bounds is None else [plain(b) for b in self.bounds],
                "immutable_features": 0 if self.mutable is None else int((~np.asarray(self.mutable)).sum())}


def _check_broadcast(owner: ThreatModel, name: str, shapes: list[tuple[str, tuple[int, ...]]], value: Any) -> None:
    """Per-feature bounds and masks must describe the same features (e.g. 4 lower bounds, 4 upper)."""
    try:
        np.broadcast_shapes(*(shape for _, shape in shapes))
    except ValueError:
        described = ", ".join(f"{what} of shape {shape}" for what, shape in shapes)
        raise param_error(owner, name, f"per-feature arrays of one length (one entry per feature, or scalars); "
                          f"they have {described}", value) from None


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


class RobustnessRates:
    """Rates shared by every attack result; needs ``y``, ``pred_clean`` and ``success`` arrays."""

    y: np.ndarray
    pred_clean: np.ndarray
    success: np.ndarray

    @property
    def clean_correct(self) -> np.ndarray:
        return self.pred_clean == self.y

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean())

    @property
    def robust_accuracy(self) -> float:
        """Share of samples classified correctly both clean and under attack."""
        return float((~self.success).mean())

    @property
    def attack_success_rate(self) -> float:
        """Share of initially correct samples the attack fooled."""
        correct = self.clean_correct
        return float(self.success[correct].mean()) if correct.any() else 0.0


@dataclass(frozen=True, eq=False)
class AttackResult(RobustnessRates):
    """Outcome of one attack run; arrays have one entry per sample."""

    attack: str
    threat: ThreatModel
    x_adv: np.ndarray
    y: np.ndarray
    pred_clean: np.ndarray
    pred_adv: np.ndarray
    success: np.ndarray  # adversarial example found (or the sample was already misclassified)
    distance: np.ndarray  # perturbation size in the threat model's norm
    queries: np.ndarray  # model queries spent per sample
    time_s: float
    targeted: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        fooled = self.success & self.clean_correct
        return {
            "attack": self.attack, "threat": self.threat.to_dict(), "params": self.params,
            "n_samples": int(self.y.size), "targeted": self.targeted,
            "clean_accuracy": self.clean_accuracy, "robust_accuracy": self.robust_accuracy,
            "attack_success_rate": self.attack_success_rate,
            "median_distance": float(np.median(self.distance[fooled])) if fooled.any() else None,
            "queries_mean": float(self.queries.mean()), "time_s": self.time_s,
        }


class Attack(ABC):
    """Base of every attack. Subclasses set ``name`` and ``white_box`` and write ``_attack``.

    ``_attack(model, x, y, target)`` gets float tensors on the model's device for the samples
    still correctly classified and returns candidate adversarial inputs of the same shape; the
    base projects them into the threat model and recomputes success.
    """

    name: ClassVar[str]
    white_box: ClassVar[bool] = True
    #: optional hook: ``_attack`` may set this to its exact query count per attacked sample
    #: (aligned with its ``x``); ``run`` then reports it instead of an even split of the total.
    _queries_per_sample: np.ndarray | None = None

    def __init__(self, threat: ThreatModel, *, seed: int = 0) -> None:
        if not isinstance(threat, ThreatModel):
            raise param_error(self, "threat", "a ThreatModel", threat)
        self.threat = threat
        self.seed = check_seed(self, seed)

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "threat" and not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({self.threat.norm}, eps={self.threat.eps}, {args})"

    @abstractmethod
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        """Candidate adversarial examples for ``x`` (labels ``y`` as class indices)."""

    def run(self, model: Any, x: Any, y: Any, *, targeted: Any = None) -> AttackResult:
        """Attack ``x`` (labels ``y``) and return an :class:`AttackResult`.

        ``targeted``: optional target labels (one per sample); success then means the model
        predicts the target.
        """
        from stalwart.models import wrap

        model = wrap(model)
        if model.task != "classification":
            raise ModelError(f"{self.name} attacks classifiers; {model.name} is a {model.task} model. Wrap a "
                             "classifier (a model with class scores) instead, or use stalwart.checks.NaturalRobustness to "
                             "measure a regression model.")
        if self.white_box and not model.differentiable:
            model.torch_logits(None)  # raises ModelError with the explanation
        xs = check_array(x, "x", dtype=np.float32)
        if getattr(model, "input_shape", None) != tuple(xs.shape[1:]):  # unless the model declares that shape
            check_image_layout(xs.shape)
        if self.threat.needs_rescaling:
            return self._run_in_range_units(model, xs, y, targeted)
        ys = check_labels(y, model.known_classes(xs), "y")
        check_lengths("x", xs, "y", ys)
        self._check_bounds(xs)
        y_idx = labels_to_index(ys, model.classes)
        tgt = None
        if targeted is not None:
            tgt_labels = check_labels(targeted, model.classes, "targeted")
            check_lengths("x", xs, "targeted", tgt_labels)
            tgt = labels_to_index(tgt_labels, model.classes)
            same = np.flatnonzero(tgt == y_idx)
            if same.size:  # reaching the true class is no attack; it would count as a success
                raise InputError(
                    f"targeted equals y for {same.size} sample(s) (first: {same[:5].tolist()}); "
                    "pick target labels that differ from the true labels.")

        torch.manual_seed(self.seed)
        start = time.perf_counter()
        q0 = model.n_queries
        pred_clean = model.predict_proba(xs).argmax(axis=1)
        queries = np.full(len(xs), (model.n_queries - q0) / len(xs), dtype=float)
        todo = pred_clean == y_idx if tgt is None else (pred_clean == y_idx) & (pred_clean != tgt)
        x_adv = xs.copy()
        if todo.any():
            device = getattr(model, "device", torch.device("cpu"))
            xt = torch.as_tensor(xs[todo], device=device)
            yt = torch.as_tensor(y_idx[todo], device=device)
            tt = None if tgt is None else torch.as_tensor(tgt[todo], device=device)
            q1 = model.n_queries
            self._queries_per_sample = None
            cand = self._attack(model, xt, yt, tt).detach()
            cand = self.threat.project(cand, xt)
            x_adv[todo] = cand.cpu().numpy()
            per_sample, self._queries_per_sample = self._queries_per_sample, None
            if per_sample is None:
                queries[todo] += (model.n_queries - q1) / int(todo.sum())
            else:
                queries[todo] += per_sample
        pred_adv = model.predict_proba(x_adv).argmax(axis=1)
        elapsed = time.perf_counter() - start
        if tgt is None:
            success = pred_adv != y_idx
        else:
            success = pred_adv == tgt
        success = success | (pred_clean != y_idx)
        # keep the clean input where the attack failed: the result must not claim a change
        x_adv[~success] = xs[~success]
        classes = np.asarray(model.classes)
        return AttackResult(
            attack=self.name, threat=self.threat, x_adv=x_adv, y=ys,
            pred_clean=classes[pred_clean], pred_adv=classes[pred_adv], success=success,
            distance=self.threat.distance(x_adv, xs), queries=queries, time_s=elapsed,
            targeted=tgt is not None, params=self.params())

    def _run_in_range_units(self, model: Any, xs: np.ndarray, y: Any, targeted: Any) -> AttackResult:
        """Run on the range-normalised inputs (eps a fraction of each range); results in raw units."""
        self._check_bounds(xs)
        space = self.threat.range_space(xs)
        inner = copy.copy(self)
        inner.threat = space.threat
        res = inner.run(space.wrap(model), space.z, y, targeted=targeted)
        return replace(res, threat=self.threat, x_adv=space.to_raw(res.x_adv, xs))

    def _check_bounds(self, xs: np.ndarray) -> None:
        check_threat_shape(self.threat, xs.shape[1:])
        if self.threat.bounds is None:
            return
        lo, hi = (np.asarray(b, dtype=np.float32) for b in self.threat.bounds)
        if np.any(xs < lo - 1e-5) or np.any(xs > hi + 1e-5):
            raise InputError(
                f"x lies outside the threat model's bounds (x spans [{xs.min():.4g}, {xs.max():.4g}]); "
                "declare the data's real range in ThreatModel(bounds=...) or rescale x."
            )


def check_threat_shape(threat: ThreatModel, sample: tuple[int, ...]) -> None:
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
        try:
            np.broadcast_to(arr, sample)
        except ValueError:
            what = f"{sample[0]} features" if len(sample) == 1 else f"samples of shape {sample}"
            expected = f"{sample[0]} values (one per feature)" if len(sample) == 1 else \
                f"an array broadcastable to {sample}"
            raise ConfigError(
                f"ThreatModel({name}=...) has shape {arr.shape} but x has {what}; give {expected} or a scalar."
            ) from None


ATTACKS: Registry[Attack] = Registry("attack", "stalwart.attacks")
register = ATTACKS.register
