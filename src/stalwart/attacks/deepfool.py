"""DeepFool (Moosavi-Dezfooli et al., CVPR 2016), multi-class, for l2 and linf.

"DeepFool: a simple and accurate method to fool deep neural networks". At each iteration the
classifier is linearised at the current point; for each candidate class ``k`` the boundary
``z_k = z_y`` is the hyperplane ``f_k + w_k . r = 0`` with ``f_k = z_k - z_y`` and
``w_k = grad(z_k - z_y)``, at distance ``|f_k| / ||w_k||_q`` in the attack norm (``q`` its dual:
2 for l2, 1 for linf). The step goes to the closest of these hyperplanes by the smallest
perturbation in the attack norm:

- l2: ``r = (|f_l| + 1e-4) / ||w_l||_2^2 * w_l``;
- linf: ``r = (|f_l| + 1e-4) / ||w_l||_1 * sign(w_l)``.

Steps accumulate into ``r_tot`` and the iterate is ``x + (1 + overshoot) r_tot`` (clipped to the
bounds); a sample stops at the first iterate that fools the model. With bounds, coordinates that
sit on a bound with the gradient pointing outwards are left out of the linearisation and ``r_tot``
keeps only what the clip let through: otherwise the clip eats part of every step and DeepFool
needs many more iterations (on the sklearn digits MLP of the tests: about 2 instead of 10). On an affine classifier one step
lands exactly on the boundary, so DeepFool returns the minimal perturbation times
``1 + overshoot``; on a network it is a fast estimate of it (an upper bound of the minimal one).

Targeted runs (``run(..., targeted=t)``) linearise ``z_t - z_c`` against the currently strongest
other class ``c`` until ``t`` is predicted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from stalwart._validation import check_positive, check_seed, param_error
from stalwart.attacks._common import Feasible, is_fooled, per_sample
from stalwart.attacks.base import Attack, ThreatModel, register

__all__ = ["DeepFool"]

_NORMS = ("linf", "l2")
_SLACK = 1e-4  # the paper's small push past the linearised boundary
_TINY = 1e-12


@register
class DeepFool(Attack):
    """DeepFool: iterate minimal steps to the closest linearised class boundary.

    Parameters
    ----------
    threat : ThreatModel
        Norm ``l2`` or ``linf``; the eps-ball caps the returned perturbation (the base projects
        into it and recomputes success), so use a large eps to read off minimal distances.
    steps : int, default 50
        Most linearisation steps per sample.
    overshoot : float, default 0.02
        The iterate is ``x + (1 + overshoot) * r_tot``, to cross the boundary rather than touch it.
    candidates : int, default 10
        How many of the most likely wrong classes (by clean logits) are considered; capped at
        ``n_classes - 1``. Each costs one backward pass per step.
    seed : int, default 0
        Unused (the attack is deterministic); kept for a uniform signature.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart.attacks import ThreatModel
    >>> from stalwart.attacks.deepfool import DeepFool
    >>> net = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0]])); _ = net.bias.zero_()
    >>> x, y = np.array([[0.6, 0.4]], dtype=np.float32), np.array([0])
    >>> res = DeepFool(ThreatModel("l2", eps=10.0, bounds=None)).run(net, x, y)
    >>> round(float(res.distance[0]), 4)  # exact 0.4 / sqrt(8) = 0.1414, plus slack, times 1.02
    0.1443
    """

    name: ClassVar[str] = "deepfool"

    def __init__(self, threat: ThreatModel, *, steps: int = 50, overshoot: float = 0.02,
                 candidates: int = 10, seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        if threat.norm not in _NORMS:
            raise param_error(self, "threat", f"a ThreatModel with norm in {list(_NORMS)} (for l1 use "
                              "PGD or FGSM, which support l1)", threat)
        check_positive(self, "steps", steps, integer=True)
        check_positive(self, "overshoot", overshoot, strict=False)
        check_positive(self, "candidates", candidates, integer=True)
        check_seed(self, seed)
        self.steps = int(steps)
        self.overshoot = float(overshoot)
        self.candidates = int(candidates)

    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        feas = self.threat.constraints(x)
        out = x.clone()
        idx = torch.arange(len(x), device=x.device)
        cand = None
        if target is None:
            with torch.no_grad():
                logits = model.torch_logits(x)
            k = min(self.candidates, logits.shape[1] - 1)
            cand = logits.scatter(1, y[:, None], float("-inf")).topk(k, dim=1).indices  # (n, k)
        x0, y0, t0, xa = x, y, target, x
        r_tot = torch.zeros_like(x)
        for it in range(self.steps + 1):
            xg = xa.detach().requires_grad_(it < self.steps)
            with torch.set_grad_enabled(it < self.steps):
                logits = model.torch_logits(xg)
                fooled = is_fooled(logits.detach(), y0, t0)
                rows = None  # rows of xg's graph still active, when some were just fooled
                if bool(fooled.any()):  # one host sync per step; it shrinks the batch
                    out[idx[fooled]] = xa[fooled].to(out.dtype)  # a float64 module computes steps in float64
                    rows = ~fooled
                    if not bool(rows.any()):
                        return out
                    idx, x0, y0, xa, r_tot, logits = (v[rows] for v in (idx, x0, y0, xa, r_tot, logits))
                    t0 = None if t0 is None else t0[rows]
                    cand = None if cand is None else cand[rows]
                if it == self.steps:
                    break
                if t0 is None:  # push some candidate class k above y
                    others, ref = cand, y0
                else:  # push the target above the strongest other class
                    others = t0[:, None]
                    ref = logits.detach().scatter(1, t0[:, None], float("-inf")).argmax(dim=1)
                step = self._closest_step(logits, ref, others, xa, xg, rows, feas)
            xa = feas.clip(x0 + (1 + self.overshoot) * (r_tot + step)).detach()
            # keep r_tot where the box let it go, so a later step need not first undo a clipped excess
            r_tot = (xa - x0) / (1 + self.overshoot)
        out[idx] = xa
        return out

    def _closest_step(self, logits: torch.Tensor, ref: torch.Tensor, others: torch.Tensor,
                      xa: torch.Tensor, xg: torch.Tensor, rows: torch.Tensor | None,
                      feas: Feasible) -> torch.Tensor:
        """Minimal step (attack norm) to the nearest linearised boundary ``z_k = z_ref``.

        ``logits`` holds the ``rows`` (all if None) of the graph rooted at ``xg``; gradients are
        taken w.r.t. ``xg`` and cut to the same rows (``xa``: the active iterates). Coordinates
        on a bound whose gradient points out of the box cannot move, so they are left out of the
        linearisation; otherwise the clip would eat part of every step near a bound.
        """
        n_active = logits.shape[0]
        z_ref = logits.gather(1, ref[:, None]).squeeze(1)
        best_dist = best_f = best_w = None
        n_cand = others.shape[1]
        for j in range(n_cand):
            f = logits.gather(1, others[:, j:j + 1]).squeeze(1) - z_ref
            (g,) = torch.autograd.grad(f.sum(), xg, retain_graph=j < n_cand - 1)
            w = feas.masked(g if rows is None else g[rows])
            if feas.lo is not None:
                w = torch.where(feas.headroom(xa, w) > 0, w, torch.zeros_like(w))
            flat = w.reshape(n_active, -1)
            dual = flat.norm(p=2, dim=1) if feas.norm == "l2" else flat.abs().sum(dim=1)
            f = f.detach().abs()
            dist = f / (dual + _TINY)
            if best_dist is None:
                best_dist, best_f, best_w = dist, f, w
            else:
                closer = dist < best_dist
                best_dist = torch.where(closer, dist, best_dist)
                best_f = torch.where(closer, f, best_f)
                best_w = torch.where(per_sample(closer, w), w, best_w)
        flat = best_w.reshape(n_active, -1)
        if feas.norm == "l2":
            scale = (best_f + _SLACK) / (flat.pow(2).sum(dim=1) + _TINY)
            return per_sample(scale, best_w) * best_w
        scale = (best_f + _SLACK) / (flat.abs().sum(dim=1) + _TINY)
        return per_sample(scale, best_w) * best_w.sign()
