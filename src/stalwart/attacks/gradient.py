"""First-order white-box attacks: FGSM and PGD under linf, l2 and l1 threat models.

Both follow the steepest-ascent direction of a loss for the chosen norm (the direction that
maximises the first-order gain per unit of that norm):

- ``linf``: the sign of the gradient (Goodfellow et al., 2015; Madry et al., 2018);
- ``l2``: the gradient divided by its l2 norm;
- ``l1``: mass on the coordinates with the largest gradient magnitude. FGSM solves the
  linearised problem exactly inside the box (a fractional knapsack: fill coordinates in order of
  ``|grad|`` up to their headroom until eps is spent); PGD steps on the top ``k`` coordinates, as
  in SLIDE (Tramer & Boneh, 2019) and APGD-L1 (Croce & Hein, 2021), skipping coordinates that sit
  on a bound and would be pushed outside it.

Immutable features (the threat model's ``mutable`` mask) get zero gradient and are restored by
the projection, so they never move. Success is always recomputed by :class:`Attack.run`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from stalwart._validation import check_choice, check_param, check_positive, check_seed, param_error
from stalwart.attacks._common import Feasible, is_fooled, per_sample
from stalwart.attacks.base import Attack, Candidates, ThreatModel, register
from stalwart.attacks.losses import margin as _margin

__all__ = ["FGSM", "PGD"]

Loss = Literal["ce", "margin"]
_NORMS = ("linf", "l2", "l1")


# -- shared pieces ------------------------------------------------------------------------------
def _objective(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               loss: str) -> torch.Tensor:
    """Per-sample quantity the attack *maximises*.

    Untargeted: cross-entropy on the true class, or the CW margin ``max_{j!=y} z_j - z_y``.
    Targeted: minus the cross-entropy on the target, or ``z_t - max_{j!=t} z_j``.
    """
    if target is None:
        if loss == "ce":
            return F.cross_entropy(logits, y, reduction="none")
        return -_margin(logits, y)
    if loss == "ce":
        return -F.cross_entropy(logits, target, reduction="none")
    return _margin(logits, target)


def _check_norm(attack: Attack) -> None:
    if attack.threat.norm not in _NORMS:
        raise param_error(attack, "threat", f"a ThreatModel with norm in {list(_NORMS)} (for l0 use a "
                          "sparse or black-box attack)", attack.threat)


def _check_loss(attack: Attack, loss: Any) -> None:
    check_choice(attack, "loss", loss, ("ce", "margin"))


def _input_grad(model: Any, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and backward pass: (fooled mask, gradient of the objective w.r.t. x)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.torch_logits(x)
    return is_fooled(logits.detach(), y, target), _grad_at(x, logits, y, target, loss)


def _grad_at(x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
             loss: str) -> torch.Tensor:
    """Gradient of the objective w.r.t. ``x``, given ``logits = model.torch_logits(x)``."""
    with torch.enable_grad():
        obj = _objective(logits, y, target, loss)
        # sum, not mean: each sample's gradient must not depend on the batch size
        (grad,) = torch.autograd.grad(obj.sum(), x)
    return grad.detach()


# -- FGSM ---------------------------------------------------------------------------------------
@register
class FGSM(Attack):
    """Fast Gradient (Sign) Method: one step of size eps (Goodfellow et al., 2015).

    linf steps by ``eps * sign(grad)``; l2 by ``eps * grad / ||grad||_2``; l1 puts the eps budget
    on the coordinates with the largest ``|grad|``, filling each up to its bound before the next
    (the exact maximiser of the linearised loss over the l1 ball intersected with the box). On
    a linear model every variant is therefore the optimal attack of its norm (l2 up to clipping).

    Parameters
    ----------
    threat : ThreatModel
        Norm ``linf``, ``l2`` or ``l1``; eps; bounds; mutable mask.
    loss : {"ce", "margin"}, default "ce"
        Cross-entropy or the CW logit margin. Targeted runs descend the loss on the target.
    seed : int, default 0
        Unused (the attack is deterministic); kept for a uniform signature.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart.attacks import FGSM, ThreatModel
    >>> net = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]])); _ = net.bias.zero_()
    >>> x, y = np.array([[0.6, 0.4]], dtype=np.float32), np.array([0])
    >>> FGSM(ThreatModel("linf", eps=0.15, bounds=None)).run(net, x, y).success.tolist()
    [True]
    """

    name: ClassVar[str] = "fgsm"
    #: one forward and one backward pass on the clean input, which also give the clean prediction
    reuses_clean_pass: ClassVar[bool] = True

    def __init__(self, threat: ThreatModel, *, loss: Loss = "ce", seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        _check_norm(self)
        _check_loss(self, loss)
        check_seed(self, seed)
        self.loss = loss

    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor | Candidates:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model.torch_logits(x)
        return self._attack_at_clean(model, x, logits, y, target)

    def _attack_at_clean(self, model: Any, x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                         target: torch.Tensor | None) -> torch.Tensor:
        grad = _grad_at(x, logits, y, target, self.loss)
        x = x.detach()
        feas = self.threat.constraints(x)
        grad = feas.masked(grad)
        eps = feas.eps
        if feas.norm == "linf":
            step = grad.sign().mul_(eps)
        elif feas.norm == "l2":
            norms = grad.reshape(len(x), -1).norm(dim=1).clamp_min(1e-12)
            step = eps * grad / per_sample(norms, grad)
        else:
            step = _l1_knapsack(grad, feas.headroom(x, grad), eps)
        return x + step  # run() projects it into the threat model


def _l1_knapsack(grad: torch.Tensor, room: torch.Tensor, eps: float) -> torch.Tensor:
    """argmax of <grad, d> over ||d||_1 <= eps and |d_i| <= room_i (sign of d = sign of grad).

    Greedy fill in order of |grad|: coordinate i receives min(room_i, eps - mass before it).
    """
    n = grad.shape[0]
    g = grad.reshape(n, -1)
    r = room.reshape(n, -1).clamp_max(eps)  # no coordinate can use more than eps; also tames inf
    order = g.abs().argsort(dim=1, descending=True)
    r_sorted = r.gather(1, order)
    before = r_sorted.cumsum(dim=1) - r_sorted
    alloc_sorted = torch.minimum(r_sorted, (eps - before).clamp_min(0))
    alloc = torch.zeros_like(g).scatter(1, order, alloc_sorted)
    return (alloc * g.sign()).reshape(grad.shape)


# -- PGD ----------------------------------------------------------------------------------------
@register
class PGD(Attack):
    """Projected Gradient Descent (Madry et al., 2018) with restarts and per-sample early stop.

    Each step moves along the norm's steepest-ascent direction of the loss (linf: sign; l2:
    normalised gradient; l1: sign on the top-k coordinates by ``|grad|``, normalised to l1 mass
    ``step_size``) and projects back into the threat model (mutable mask, eps-ball, bounds).

    The forward pass of every step also checks success: a sample is frozen at the first point
    that fools the model and leaves the batch, so later steps and restarts only pay for the
    samples still standing, and an attack never loses a success it found. Restarts after the first
    start at a fresh random point and run only on samples not yet fooled.

    Parameters
    ----------
    threat : ThreatModel
        Norm ``linf``, ``l2`` or ``l1``; eps; bounds; mutable mask.
    steps : int, default 50
        Gradient steps per restart (each costs one forward and one backward pass).
    step_size : float, optional
        Step length in the threat model's norm; default ``2.5 * eps / steps``.
    random_start : bool, default True
        Start the first restart at a uniform random point of the eps-ball (linf: the cube; l2 and
        l1: uniform in the ball); otherwise at ``x``. Later restarts always start at random.
    restarts : int, default 1
        Number of runs; each further one attacks only the samples still not fooled.
    loss : {"ce", "margin"}, default "ce"
        Cross-entropy or the CW logit margin (``max_{j!=y} z_j - z_y``). Targeted runs descend the
        loss on the target class.
    l1_sparsity : float in (0, 1], default 0.05
        For l1 only: share of the mutable coordinates an l1 step moves, ``k = max(1,
        ceil(l1_sparsity * n_mutable))``. 5% follows APGD-L1's starting sparsity and sits between
        SLIDE's top-1% on images and a single coordinate on small tabular inputs.
    seed : int, default 0
        Seeds the random starts.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart.attacks import PGD, ThreatModel
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> x = np.random.default_rng(0).uniform(size=(16, 4)).astype(np.float32)
    >>> y = net(torch.as_tensor(x)).argmax(1).numpy()
    >>> res = PGD(ThreatModel("linf", eps=1.0), steps=20).run(net, x, y)
    >>> res.robust_accuracy
    0.0
    """

    name: ClassVar[str] = "pgd"

    def __init__(self, threat: ThreatModel, *, steps: int = 50, step_size: float | None = None,
                 random_start: bool = True, restarts: int = 1, loss: Loss = "ce",
                 l1_sparsity: float = 0.05, seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        _check_norm(self)
        check_positive(self, "steps", steps, integer=True)
        if step_size is not None:
            check_positive(self, "step_size", step_size)
        check_param(self, "random_start", random_start, isinstance(random_start, bool), "True or False")
        check_positive(self, "restarts", restarts, integer=True)
        _check_loss(self, loss)
        ok = isinstance(l1_sparsity, (int, float)) and not isinstance(l1_sparsity, bool) \
            and 0 < l1_sparsity <= 1
        check_param(self, "l1_sparsity", l1_sparsity, ok, "a number in (0, 1]")
        check_seed(self, seed)
        self.steps = int(steps)
        self.step_size = None if step_size is None else float(step_size)
        self.random_start = random_start
        self.restarts = int(restarts)
        self.loss = loss
        self.l1_sparsity = float(l1_sparsity)

    # -- pieces ---------------------------------------------------------------------------------
    def _random_delta(self, x: torch.Tensor, feas: Feasible, gen: torch.Generator) -> torch.Tensor:
        """A uniform random point of the eps-ball (restricted to the mutable features)."""
        n, eps = x.shape[0], feas.eps
        if feas.norm == "linf":
            return feas.masked((2 * torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) - 1) * eps)
        d = max(feas.n_mutable, 1)
        u = torch.rand(n, generator=gen, device=x.device, dtype=x.dtype)
        if feas.norm == "l2":
            # isotropic direction, radius eps * U^(1/d): uniform in the d-ball
            v = feas.masked(torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype))
            v = v / per_sample(v.reshape(n, -1).norm(dim=1).clamp_min(1e-12), v)
            return v * per_sample(eps * u ** (1.0 / d), v)
        # l1: |coordinates| ~ Exp(1) normalised to the unit simplex, random signs, radius eps * U^(1/d)
        e = -torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype).clamp_min(1e-12).log()
        e = feas.masked(e)
        e = e / per_sample(e.reshape(n, -1).sum(dim=1).clamp_min(1e-12), e)
        signs = torch.randint(0, 2, x.shape, generator=gen, device=x.device).to(x.dtype) * 2 - 1
        return e * signs * per_sample(eps * u ** (1.0 / d), e)

    def _step(self, xa: torch.Tensor, grad: torch.Tensor, feas: Feasible, step_size: float) -> torch.Tensor:
        """Steepest-ascent step of length ``step_size`` in the threat model's norm."""
        n = xa.shape[0]
        grad = feas.masked(grad)
        if feas.norm == "linf":
            return xa + step_size * grad.sign()
        if feas.norm == "l2":
            norms = grad.reshape(n, -1).norm(dim=1).clamp_min(1e-12)
            return xa + step_size * grad / per_sample(norms, grad)
        # l1: coordinates pinned at a bound in the gradient's direction cannot move; skip them
        g = torch.where(feas.headroom(xa, grad) > 0, grad, torch.zeros_like(grad)).reshape(n, -1)
        k = max(1, math.ceil(self.l1_sparsity * max(feas.n_mutable, 1)))
        top = g.abs().topk(min(k, g.shape[1]), dim=1).indices
        e = torch.zeros_like(g).scatter(1, top, g.gather(1, top).sign())
        e = e / e.abs().sum(dim=1, keepdim=True).clamp_min(1)
        return xa + step_size * e.reshape(xa.shape)

    # -- main loop ------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        feas = self.threat.constraints(x)
        step_size = self.step_size if self.step_size is not None else 2.5 * feas.eps / self.steps
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        best = x.clone()
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)

        for restart in range(self.restarts):
            # noise for every sample, then select: a sample's start does not depend on the others
            start = self._random_delta(x, feas, gen) if (restart > 0 or self.random_start) else None
            idx = (~done).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            x0, y0 = x[idx], y[idx]
            t0 = None if target is None else target[idx]
            xa = x0 if start is None else feas.project(x0 + start[idx], x0)
            for t in range(self.steps + 1):
                if t < self.steps:
                    fooled, grad = _input_grad(model, xa, y0, t0, self.loss)
                else:  # the last iterate only needs checking
                    with torch.no_grad():
                        fooled = is_fooled(model.torch_logits(xa), y0, t0)
                if bool(fooled.any()):  # the one host sync per step; shrinks the batch
                    # positions found once, then gathered by index: a boolean mask would be turned
                    # into positions again by every tensor indexed with it
                    hit_rows, keep = fooled.nonzero().squeeze(1), (~fooled).nonzero().squeeze(1)
                    hit = idx.index_select(0, hit_rows)
                    best[hit] = xa.index_select(0, hit_rows)
                    done[hit] = True
                    idx, x0, y0, xa = (v.index_select(0, keep) for v in (idx, x0, y0, xa))
                    t0 = None if t0 is None else t0.index_select(0, keep)
                    if idx.numel() == 0:
                        break
                    if t < self.steps:
                        grad = grad.index_select(0, keep)
                if t < self.steps:
                    xa = feas.project(self._step(xa, grad, feas, step_size), x0).detach()
            best[idx] = xa  # samples never fooled keep this restart's last iterate
        return best
