"""Auto-PGD (APGD): step-size-free PGD with momentum (Croce & Hein, ICML 2020).

"Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks". APGD removes PGD's step-size choice, the usual reason PGD over-reports robustness:

- the step size starts at ``2 * eps`` and is halved at checkpoints ``w_j = ceil(p_j * steps)``
  with ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``;
- at checkpoint ``w_j`` the step size of a sample is halved when (1) fewer than
  ``rho * (w_j - w_{j-1})`` of the steps since ``w_{j-1}`` increased its loss, or (2) neither its
  step size nor its best loss changed since ``w_{j-1}``; a halved sample restarts from the best
  point it has found;
- steps use momentum ``alpha = 0.75``: ``z = P(x_k + eta * s(grad))``,
  ``x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))`` (the first step has none).

The loss is cross-entropy or the Difference of Logits Ratio (DLR), which is invariant to the
scale of the logits and so does not fail on models whose softmax saturates. APGD-T runs the
targeted DLR loss against each of the ``k`` most likely wrong classes in turn (AutoAttack uses
k = 9), and counts any misclassification as success.

Per-sample early stop: a sample leaves the batch at the first iterate that fools the model, and
that iterate is what is returned for it; later restarts and targets run only on the samples
still standing. Each iteration costs one forward and one backward pass on the active samples.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

import torch

from stalwart._validation import check_choice, check_param, check_positive, check_seed, param_error
from stalwart.attacks._common import Feasible, is_fooled, per_sample
from stalwart.attacks.base import Attack, ThreatModel, register
from stalwart.attacks.losses import cross_entropy, dlr, margin, targeted_dlr

__all__ = ["APGD", "APGDCE", "APGDDLR", "APGDT", "apgd_checkpoints"]

ApgdLoss = Literal["ce", "dlr"]
_NORMS = ("linf", "l2")
_ALPHA = 0.75  # momentum, fixed in the paper


def apgd_checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step size, ``[w_0 = 0, w_1, ...]``.

    ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` while ``p_j <= 1``; repeated values (few
    steps) are dropped. Computed in integer hundredths, so no float rounding moves a ceiling.

    >>> apgd_checkpoints(100)
    [0, 22, 41, 57, 70, 80, 87, 93, 99]
    """
    points = [0]
    p_prev, p = 0, 22
    while p <= 100:
        w = -(-p * steps // 100)
        if w > points[-1]:
            points.append(w)
        p_prev, p = p, p + max(p - p_prev - 3, 6)
    return points


@register
class APGD(Attack):
    """Auto-PGD under linf or l2 (Croce & Hein, 2020), with restarts and per-sample early stop.

    Parameters
    ----------
    threat : ThreatModel
        Norm ``linf`` or ``l2``; eps; bounds; mutable mask. (l1 needs APGD-L1's adaptive
        sparsity, not implemented here; PGD and FGSM support l1.)
    loss : {"ce", "dlr"}, default "ce"
        Cross-entropy or the DLR loss. DLR needs at least 3 classes and targeted DLR at least 4;
        with fewer classes the CW logit margin takes their place (on two classes the DLR ratio
        is undefined, and the margin is what its numerator measures).
    steps : int, default 100
        Iterations per run; each costs one forward and one backward pass on the active samples.
    restarts : int, default 1
        Runs from fresh random starts (uniform in the linf cube; on the l2 sphere of radius eps);
        each further one attacks only the samples not yet fooled.
    rho : float in (0, 1], default 0.75
        Halve the step size when fewer than this share of the steps since the last checkpoint
        increased the loss.
    targeted_classes : int, optional
        APGD-T: run against each of the ``k`` most likely wrong classes in turn (clean logits),
        with the targeted loss (targeted DLR, or minus the cross-entropy on the target), on the
        samples still standing; any misclassification counts as success. Capped at
        ``n_classes - 1``. Ignored when ``run`` is given explicit targets.
    seed : int, default 0
        Seeds the random starts.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart.attacks import ThreatModel
    >>> from stalwart.attacks.apgd import APGD
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> x = np.random.default_rng(0).uniform(size=(16, 4)).astype(np.float32)
    >>> y = net(torch.as_tensor(x)).argmax(1).numpy()
    >>> APGD(ThreatModel("linf", eps=1.0), loss="dlr", steps=20).run(net, x, y).robust_accuracy
    0.0
    """

    name: ClassVar[str] = "apgd"

    def __init__(self, threat: ThreatModel, *, loss: ApgdLoss = "ce", steps: int = 100,
                 restarts: int = 1, rho: float = 0.75, targeted_classes: int | None = None,
                 seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        if threat.norm not in _NORMS:
            raise param_error(self, "threat", f"a ThreatModel with norm in {list(_NORMS)} (for l1 use "
                              "PGD or FGSM, which support l1; for l0 a sparse or black-box attack)",
                              threat)
        check_choice(self, "loss", loss, ("ce", "dlr"))
        check_positive(self, "steps", steps, integer=True)
        check_positive(self, "restarts", restarts, integer=True)
        ok = isinstance(rho, (int, float)) and not isinstance(rho, bool) and 0 < rho <= 1
        check_param(self, "rho", rho, ok, "a number in (0, 1]")
        if targeted_classes is not None:
            check_positive(self, "targeted_classes", targeted_classes, integer=True)
        check_seed(self, seed)
        self.loss = loss
        self.steps = int(steps)
        self.restarts = int(restarts)
        self.rho = float(rho)
        self.targeted_classes = None if targeted_classes is None else int(targeted_classes)

    def params(self) -> dict[str, Any]:
        # the fixed-loss subclasses take fewer arguments; keep cls(threat, **params()) valid
        accepted = inspect.signature(type(self).__init__).parameters
        return {k: v for k, v in super().params().items() if k in accepted}

    # -- pieces ---------------------------------------------------------------------------------
    def _objective(self, logits: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None) -> torch.Tensor:
        """Per-sample loss to maximise; ``tgt`` is the class the loss pulls towards, if any."""
        k = logits.shape[1]
        if tgt is None:
            if self.loss == "ce":
                return cross_entropy(logits, y)
            return dlr(logits, y) if k >= 3 else -margin(logits, y)
        if self.loss == "ce":
            return -cross_entropy(logits, tgt)
        return targeted_dlr(logits, y, tgt) if k >= 4 else margin(logits, tgt)

    def _evaluate(self, model: Any, xa: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
                  goal: torch.Tensor | None, need_grad: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One forward (and backward) pass: (loss, gradient or None, fooled mask)."""
        xa = xa.detach().requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            logits = model.torch_logits(xa)
            loss = self._objective(logits, y, tgt)
            # sum, not mean: each sample's gradient must not depend on the batch size
            grad = torch.autograd.grad(loss.sum(), xa)[0].detach() if need_grad else None
        return loss.detach(), grad, is_fooled(logits.detach(), y, goal)

    def _random_start(self, x: torch.Tensor, feas: Feasible, gen: torch.Generator) -> torch.Tensor:
        """Uniform in the linf cube, or on the l2 sphere of radius eps (as in the paper's code)."""
        if feas.norm == "linf":
            u = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            return feas.masked((2 * u - 1) * feas.eps)
        v = feas.masked(torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype))
        return feas.eps * v / per_sample(v.reshape(len(v), -1).norm(dim=1).clamp_min(1e-12), v)

    def _direction(self, grad: torch.Tensor, feas: Feasible) -> torch.Tensor:
        grad = feas.masked(grad)
        if feas.norm == "linf":
            return grad.sign()
        return grad / per_sample(grad.reshape(len(grad), -1).norm(dim=1).clamp_min(1e-12), grad)

    def _targets(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                 target: torch.Tensor | None) -> list[torch.Tensor | None]:
        """The loss targets of each pass: explicit ones, the top-k wrong classes, or none."""
        if target is not None:
            return [target]
        if self.targeted_classes is None:
            return [None]
        with torch.no_grad():
            logits = model.torch_logits(x)
        k = min(self.targeted_classes, logits.shape[1] - 1)
        ranked = logits.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices
        return list(ranked.T)

    # -- main loop ------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        feas = self.threat.constraints(x)
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        best = x.clone()
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for tgt in self._targets(model, x, y, target):
            for _ in range(self.restarts):
                # noise for every sample, then select: a sample's start does not depend on the others
                start = self._random_start(x, feas, gen)
                idx = (~done).nonzero().squeeze(1)
                if idx.numel() == 0:
                    return best
                self._run(model, x, y, tgt, target, idx, start, feas, best, done)
        return best

    def _run(self, model: Any, x: torch.Tensor, y: torch.Tensor, tgt: torch.Tensor | None,
             goal: torch.Tensor | None, idx: torch.Tensor, start: torch.Tensor, feas: Feasible,
             best: torch.Tensor, done: torch.Tensor) -> None:
        """One APGD run on the samples ``idx``; writes fooled samples' first adversarial iterate
        (and, for the rest, their highest-loss point) into ``best`` and marks ``done``."""
        points = apgd_checkpoints(self.steps)
        windows = {b: b - a for a, b in zip(points, points[1:])}  # checkpoint -> steps since the last
        x0 = x[idx]
        xa = feas.project(x0 + start[idx], x0)
        s: dict[str, Any] = {"idx": idx, "x0": x0, "y": y[idx], "tgt": None if tgt is None else tgt[idx],
                             "goal": None if goal is None else goal[idx], "xa": xa}
        loss, grad, fooled = self._evaluate(model, xa, s["y"], s["tgt"], s["goal"], need_grad=True)
        n = len(idx)
        s.update(grad=grad, loss=loss, x_prev=xa, x_best=xa, g_best=grad, loss_best=loss,
                 eta=torch.full((n,), 2 * feas.eps, device=x.device, dtype=x.dtype),
                 n_up=torch.zeros(n, device=x.device, dtype=x.dtype),
                 best_at_check=loss, halved_last=torch.zeros(n, dtype=torch.bool, device=x.device))
        s = self._retire(s, fooled, best, done)

        for i in range(1, self.steps + 1):  # i: index of the iterate this pass produces
            if s is None:
                return
            xa, x0 = s["xa"], s["x0"]
            z = feas.project(xa + per_sample(s["eta"], xa) * self._direction(s["grad"], feas), x0)
            if i > 1:
                z = feas.project(xa + _ALPHA * (z - xa) + (1 - _ALPHA) * (xa - s["x_prev"]), x0)
            loss, grad, fooled = self._evaluate(model, z, s["y"], s["tgt"], s["goal"],
                                                need_grad=i < self.steps)
            up = loss > s["loss"]
            better = loss > s["loss_best"]
            s.update(x_prev=xa, xa=z, grad=grad, loss=loss, n_up=s["n_up"] + up.to(xa.dtype),
                     x_best=torch.where(per_sample(better, z), z, s["x_best"]),
                     loss_best=torch.where(better, loss, s["loss_best"]))
            if grad is not None:
                s["g_best"] = torch.where(per_sample(better, grad), grad, s["g_best"])
            s = self._retire(s, fooled, best, done)
            if s is not None and i in windows and i < self.steps:
                self._checkpoint(s, windows[i])
        if s is not None:
            best[s["idx"]] = s["x_best"]

    def _checkpoint(self, s: dict[str, Any], window: int) -> None:
        """Halve the step size where progress stalled, and restart those samples from their best."""
        oscillating = s["n_up"] < self.rho * window
        stalled = ~s["halved_last"] & (s["loss_best"] <= s["best_at_check"])
        halve = oscillating | stalled
        h = per_sample(halve, s["xa"])
        s.update(eta=torch.where(halve, s["eta"] / 2, s["eta"]),
                 xa=torch.where(h, s["x_best"], s["xa"]),
                 grad=torch.where(h, s["g_best"], s["grad"]),
                 loss=torch.where(halve, s["loss_best"], s["loss"]),
                 halved_last=halve, best_at_check=s["loss_best"], n_up=torch.zeros_like(s["n_up"]))

    @staticmethod
    def _retire(s: dict[str, Any], fooled: torch.Tensor, best: torch.Tensor,
                done: torch.Tensor) -> dict[str, Any] | None:
        """Freeze fooled samples at the iterate that fooled them and drop them from the batch."""
        if not bool(fooled.any()):  # the one host sync per iteration; it shrinks the batch
            return s
        hit = s["idx"][fooled]
        best[hit] = s["xa"][fooled]
        done[hit] = True
        keep = ~fooled
        if not bool(keep.any()):
            return None
        return {k: (v[keep] if isinstance(v, torch.Tensor) else v) for k, v in s.items()}


@register
class APGDCE(APGD):
    """APGD with the cross-entropy loss (AutoAttack's first attack). See :class:`APGD`."""

    name: ClassVar[str] = "apgd-ce"

    def __init__(self, threat: ThreatModel, *, steps: int = 100, restarts: int = 1, rho: float = 0.75,
                 seed: int = 0) -> None:
        super().__init__(threat, loss="ce", steps=steps, restarts=restarts, rho=rho, seed=seed)


@register
class APGDDLR(APGD):
    """APGD with the DLR loss (margin on two classes). See :class:`APGD`."""

    name: ClassVar[str] = "apgd-dlr"

    def __init__(self, threat: ThreatModel, *, steps: int = 100, restarts: int = 1, rho: float = 0.75,
                 seed: int = 0) -> None:
        super().__init__(threat, loss="dlr", steps=steps, restarts=restarts, rho=rho, seed=seed)


@register
class APGDT(APGD):
    """APGD-T: targeted DLR against each of the top ``targeted_classes`` wrong classes (default 9,
    as in AutoAttack); any misclassification counts. See :class:`APGD`."""

    name: ClassVar[str] = "apgd-t"

    def __init__(self, threat: ThreatModel, *, steps: int = 100, restarts: int = 1, rho: float = 0.75,
                 targeted_classes: int = 9, seed: int = 0) -> None:
        super().__init__(threat, loss="dlr", steps=steps, restarts=restarts, rho=rho,
                         targeted_classes=targeted_classes, seed=seed)

