"""ThreatModel, Attack and AttackResult.

The base class owns the fixed steps of every attack: validate inputs, move them to the model's
device, call the subclass's one method, project the result back into the threat model and
**recompute success from the model's own predictions** (an attack's claim is never trusted).
Samples the model already misclassifies count as not robust and are not attacked.

Every verdict (is this input classified correctly?) comes from :func:`predicted_index`: one
prediction for a deterministic model; for a randomized one (``model.verdict_draws > 1``) the class
most often predicted over that many fresh draws, so one unlucky draw neither breaks a sample nor
saves it.

A configured attack is immutable: ``run`` writes nothing to it, so one object may run on several
models at once (threads) or be shipped to another process. What a run measures travels back in
its return value (:class:`Candidates`), never through ``self``.
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
    check_labels,
    check_lengths,
    check_param,
    check_seed,
    labels_to_index,
    param_error,
)
from stalwart.attacks._common import (
    NORMS,
    Feasible,
    check_threat_shape,
    classifier,
    norm_of,
    numeric_batch,
    project_ball,
)
from stalwart.errors import ConfigError, InputError

__all__ = ["ThreatModel", "Attack", "AttackResult", "Candidates", "RobustnessRates", "norm_of", "project_ball",
           "check_threat_shape", "EPS_UNITS", "NORMS", "ATTACKS", "register", "predicted_index"]

Norm = Literal["linf", "l2", "l1", "l0"]
#: what a threat model's eps is measured in, and how reports say it
EPS_UNITS: dict[str, str] = {"raw": "input units", "range": "fraction of each feature's range"}


_FEASIBLE_MEMO = 8  # sample shapes, devices and layouts one threat model keeps its tensors for


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

    # -- the constraints as tensors (one implementation: attacks._common.Feasible) -------------
    def constraints(self, like: torch.Tensor, layout: tuple[int, ...] | None = None) -> Feasible:
        """Mask, bounds and eps-ball as tensors on ``like``'s device, for samples shaped like
        ``like[0]`` (optionally reshaped to an attack's internal ``layout``).

        Built once per sample shape, device and layout and kept on this (frozen) object: an attack
        asks for them at every step, and building the tensors costs more than a small model's
        step. :class:`Feasible` is read-only, so the memo is safe to share between threads; it is
        not pickled (a copy in another process builds its own).
        """
        key = (tuple(like.shape[1:]), like.device, layout)
        memo = self.__dict__.get("_feasible")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_feasible", memo)
        feas = memo.get(key)
        if feas is None:
            if len(memo) >= _FEASIBLE_MEMO:
                memo.clear()
            feas = memo[key] = Feasible(self, key[0], like.device, layout=layout)
        return feas

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_feasible"}

    def clip_bounds(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped to the bounds."""
        return self.constraints(x).clip(x)

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Nearest point (per sample) of the threat model's feasible set, applied as:
        restrict to mutable features, project onto the eps-ball, clip to bounds
        (see :meth:`~stalwart.attacks._common.Feasible.project`)."""
        return self.constraints(x).project(x_adv, x)

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
    pred_adv: np.ndarray  # the model's prediction on x_adv (where the attack failed, x_adv is x)
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


@dataclass(frozen=True, eq=False)
class Candidates:
    """What ``_attack`` may return instead of a bare tensor: the candidates and what the run
    measured about them. Per-call results travel back here, never through the attack object.

    ``queries``: exact model queries per attacked sample (aligned with the rows of ``x``);
    ``run`` reports them instead of an even split of the queries the run made.
    """

    x: torch.Tensor
    queries: np.ndarray | None = None


class Attack(ABC):
    """Base of every attack. Subclasses set ``name`` and ``white_box`` and write ``_attack``.

    ``_attack(model, x, y, target)`` gets float tensors on the model's device for the samples
    still correctly classified and returns candidate adversarial inputs of the same shape (a
    tensor, or :class:`Candidates` with per-sample query counts); the base projects them into the
    threat model and recomputes success.

    Attacks are immutable once built: ``_attack`` keeps its working state in locals (or a
    per-call object it creates), never on ``self``, and draws randomness from its own generator
    seeded with ``self.seed`` (``run`` leaves torch's global generator alone).
    """

    name: ClassVar[str]
    white_box: ClassVar[bool] = True
    #: the data an attack perturbs (``attacks.names(modalities="text")`` finds the text attacks)
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular")
    #: attacks whose first step is a gradient at the clean input (FGSM) set this: ``run`` then
    #: makes that forward pass itself, with gradients, reads the clean prediction off its logits
    #: and calls :meth:`_attack_at_clean` instead of ``_attack`` (one forward and one backward
    #: pass in all, plus the recheck of the candidates)
    reuses_clean_pass: ClassVar[bool] = False

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
                target: torch.Tensor | None) -> torch.Tensor | Candidates:
        """Candidate adversarial examples for ``x`` (labels ``y`` as class indices)."""

    def _attack_at_clean(self, model: Any, x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                         target: torch.Tensor | None) -> torch.Tensor | Candidates:
        """``_attack`` given the clean forward pass (``reuses_clean_pass``): ``logits`` are
        ``model.torch_logits(x)`` with ``x`` requiring gradients, for every sample; return
        candidates for every row (``run`` keeps those of the samples it attacks)."""
        raise NotImplementedError(f"{type(self).__name__} sets reuses_clean_pass but has no _attack_at_clean")

    def run(self, model: Any, x: Any, y: Any, *, targeted: Any = None) -> AttackResult:
        """Attack ``x`` (labels ``y``) and return an :class:`AttackResult`.

        ``targeted``: optional target labels (one per sample); success then means the model
        predicts the target.
        """
        model = classifier(self.name, model)
        if self.white_box and not model.differentiable:
            model.torch_logits(None)  # raises ModelError with the explanation
        xs, ys = numeric_batch(model, x, y, self.threat)
        self._check_bounds(xs)
        if self.threat.needs_rescaling:
            return self._run_in_range_units(model, xs, ys, targeted)
        y_idx = labels_to_index(ys, model.classes)
        tgt = self._target_index(model, xs, y_idx, targeted)

        start = time.perf_counter()
        device = getattr(model, "device", torch.device("cpu"))
        q0 = model.n_queries
        clean_pass = self.reuses_clean_pass and model.differentiable
        if clean_pass:  # the gradient step's forward pass is the clean prediction
            x_all = torch.as_tensor(xs, device=device).requires_grad_(True)
            with torch.enable_grad():
                logits = model.torch_logits(x_all)
            if not bool(torch.isfinite(logits).all()):
                model.predict_proba(xs)  # raises the adapter's error naming the rows
            pred_clean = logits.detach().argmax(dim=1).cpu().numpy()
            if model.verdict_draws > 1:  # a random model's logits are one (averaged) draw, not its verdict
                pred_clean = predicted_index(model, xs)
        else:
            pred_clean = predicted_index(model, xs)
        queries = np.full(len(xs), (model.n_queries - q0) / len(xs), dtype=float)
        todo = pred_clean == y_idx if tgt is None else (pred_clean == y_idx) & (pred_clean != tgt)
        x_adv = xs
        # the verdict on the returned inputs: in torch on the attack's own tensor where the model
        # runs in torch (no round trip through numpy, and the same memory layout as the attack's
        # passes: a 1-channel batch's strides decide whether torch runs it channels-last)
        x_adv_t = None
        if todo.any():
            rows = np.flatnonzero(todo)
            q1 = model.n_queries
            if clean_pass:  # candidates for every row: the rows not attacked are put back, not gathered out
                out = self._attack_at_clean(model, x_all, logits, torch.as_tensor(y_idx, device=device),
                                            None if tgt is None else torch.as_tensor(tgt, device=device))
                xt = x_all.detach()
            else:
                xt = torch.as_tensor(xs[rows], device=device)
                out = self._attack(model, xt, torch.as_tensor(y_idx[rows], device=device),
                                   None if tgt is None else torch.as_tensor(tgt[rows], device=device))
            cand, per_sample = (out.x, out.queries) if isinstance(out, Candidates) else (out, None)
            cand = self.threat.project(cand.detach(), xt)
            if clean_pass:
                if rows.size < len(xs):
                    keep = torch.as_tensor(todo, device=device).reshape(-1, *([1] * (cand.ndim - 1)))
                    cand = torch.where(keep, cand, xt)
                    if per_sample is not None:
                        per_sample = np.asarray(per_sample, dtype=float)[rows]
                if model.verdict_draws == 1:  # (a TorchModel hands its module standard strides itself)
                    x_adv_t = cand
                x_adv = cand.cpu().numpy()  # a new tensor's memory (project never returns its input)
            else:
                x_adv = xs.copy()
                x_adv[rows] = cand.cpu().numpy()
            if per_sample is None:
                queries[rows] += (model.n_queries - q1) / rows.size
            else:
                queries[rows] += np.asarray(per_sample, dtype=float)
        if x_adv_t is None:
            pred_adv = predicted_index(model, x_adv, in_torch=True)
        else:  # one pass, as the gradient pass on the same rows was
            pred_adv = predicted_index(model, x_adv_t, in_torch=True, rows_per_pass=len(x_adv_t))
        elapsed = time.perf_counter() - start
        success = pred_adv != y_idx if tgt is None else pred_adv == tgt
        success = success | (pred_clean != y_idx)
        # keep the clean input where the attack failed: the result must not claim a change, and its
        # prediction is the clean one (a failed targeted attack may have moved the model elsewhere)
        if np.may_share_memory(x_adv, xs):
            x_adv = x_adv.copy()  # the caller's array is never handed back
        x_adv[~success] = xs[~success]
        pred_adv = np.where(success, pred_adv, pred_clean)
        classes = np.asarray(model.classes)
        return AttackResult(
            attack=self.name, threat=self.threat, x_adv=x_adv, y=ys,
            pred_clean=classes[pred_clean], pred_adv=classes[pred_adv], success=success,
            distance=self.threat.distance(x_adv, xs), queries=queries, time_s=elapsed,
            targeted=tgt is not None, params=self.params())

    @staticmethod
    def _target_index(model: Any, xs: np.ndarray, y_idx: np.ndarray, targeted: Any) -> np.ndarray | None:
        if targeted is None:
            return None
        tgt_labels = check_labels(targeted, model.classes, "targeted")
        check_lengths("x", xs, "targeted", tgt_labels)
        tgt = labels_to_index(tgt_labels, model.classes)
        same = np.flatnonzero(tgt == y_idx)
        if same.size:  # reaching the true class is no attack; it would count as a success
            raise InputError(
                f"targeted equals y for {same.size} sample(s) (first: {same[:5].tolist()}); "
                "pick target labels that differ from the true labels.")
        return tgt

    def _run_in_range_units(self, model: Any, xs: np.ndarray, y: Any, targeted: Any) -> AttackResult:
        """Run on the range-normalised inputs (eps a fraction of each range); results in raw units."""
        space = self.threat.range_space(xs)
        inner = copy.copy(self)  # a copy that works in the inner space; this object stays as it is
        inner.threat = space.threat
        res = inner.run(space.wrap(model), space.z, y, targeted=targeted)
        return replace(res, threat=self.threat, x_adv=space.to_raw(res.x_adv, xs))

    def _check_bounds(self, xs: np.ndarray) -> None:
        if self.threat.bounds is None:
            return
        lo, hi = (np.asarray(b, dtype=np.float32) for b in self.threat.bounds)
        if lo.ndim == 0 and hi.ndim == 0:  # one range for every feature: two reductions suffice
            outside = xs.size and (xs.min() < lo - 1e-5 or xs.max() > hi + 1e-5)
        else:
            outside = np.any(xs < lo - 1e-5) or np.any(xs > hi + 1e-5)
        if outside:
            raise InputError(
                f"x lies outside the threat model's bounds (x spans [{xs.min():.4g}, {xs.max():.4g}]); "
                "declare the data's real range in ThreatModel(bounds=...) or rescale x."
            )


def predicted_index(model: Any, x: np.ndarray | torch.Tensor, *, in_torch: bool = False,
                    rows_per_pass: int | None = None) -> np.ndarray:
    """The class index ``model`` is judged to predict for each row of ``x``: the one verdict that
    attacks (clean and adversarial inputs), :func:`~stalwart.attacks.evaluate` and the checks use.

    A deterministic model is judged on one prediction; ``in_torch=True`` reads a differentiable
    one's class off ``torch_logits`` without leaving torch (the same class, one forward pass on its
    device). A randomized model (``model.verdict_draws = k > 1``: each call is a fresh draw) is
    judged by majority vote over ``k`` calls (ties go to the higher mean probability), so a sample
    counts as misclassified when the answer the defence gives most often is wrong, not when one
    draw is. A vote, not the mean probabilities: a few confidently wrong draws cannot outweigh a
    majority of right ones. A non-finite output raises the adapter's error. ``rows_per_pass``
    (in torch only) overrides the model's ``batch_size``: an attack whose gradient pass just took
    the whole batch checks it in one pass without gradients, which needs less memory than that.

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart.models import FunctionModel
    >>> model = FunctionModel(lambda x: np.c_[x[:, 0], 1 - x[:, 0]], classes=[0, 1])
    >>> predicted_index(model, np.array([[0.9], [0.2]])).tolist()
    [0, 1]
    """
    draws = int(getattr(model, "verdict_draws", 1))
    if draws > 1:
        votes, mean = None, None
        for _ in range(draws):
            p = model.predict_proba(x)
            if votes is None:
                votes, mean = np.zeros(p.shape), np.zeros(p.shape)
            votes[np.arange(len(p)), p.argmax(axis=1)] += 1
            mean += p / draws
        return (votes + 0.5 * mean).argmax(axis=1)  # mean <= 1: it breaks ties and nothing else
    if not (in_torch and model.differentiable):
        return model.predict_proba(x).argmax(axis=1)
    device = getattr(model, "device", None) or torch.device("cpu")
    with torch.no_grad():
        parts = [model.torch_logits(b) for b in torch.as_tensor(x, device=device).split(rows_per_pass or model.batch_size)]
        logits = parts[0] if len(parts) == 1 else torch.cat(parts)
    if not bool(torch.isfinite(logits).all()):
        model.predict_proba(x)  # raises ModelError naming the rows
    return logits.argmax(dim=1).cpu().numpy()


#: every attack: the numeric ones (``Attack`` subclasses, on images and tables) and those on text
#: (``modalities=("text",)``); built-ins are the modules of :mod:`stalwart.attacks`
ATTACKS: Registry[Any] = Registry("attack", "stalwart.attacks", package="stalwart.attacks")
register = ATTACKS.register
