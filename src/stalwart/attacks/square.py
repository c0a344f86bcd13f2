"""Square attack: score-based black-box random search (Andriushchenko et al., ECCV 2020).

Each iteration proposes one random change of the current perturbation inside a window and keeps
it only if the model's margin loss decreases; the window's area is a fraction ``p`` of the input
that halves on a fixed schedule. Only ``predict_proba`` is used, so it runs on any model.

- ``linf``: the perturbation always sits on a vertex of the eps-cube. It starts from vertical
  stripes (one random sign per column and channel) and each update sets a square window to
  ``+eps`` or ``-eps`` per channel.
- ``l2``: the perturbation lives on the eps-sphere. It starts from a grid of "meta-patterns"
  (concentric squares, two halves of opposite sign) and each update draws two windows: the mass
  of both, plus any unused budget, is redistributed into the first as a fresh meta-pattern added
  to its old content; the second window is zeroed.

Inputs shaped ``N x C x H x W`` (with ``H, W >= 2``) get square windows. Any other shape (tabular
``N x D``, sequences) is treated as a flat vector of features whose order carries no meaning:
a "window" is then a random subset of ``round(p * n_mutable)`` features, and each updated feature
gets its own random sign (linf) or random-sign pattern entry (l2).

Queries are counted per sample; a sample stops as soon as it is fooled, and later iterations
query only the samples still standing.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from stalwart._validation import check_choice, check_param, check_positive, param_error
from stalwart.attacks.base import Attack, ThreatModel, register
from stalwart.errors import InputError

__all__ = ["Square", "margin_loss", "p_schedule"]

Loss = Literal["margin", "ce"]

#: initial window fraction per norm: the paper's MNIST linf value (also AutoAttack's) and its l2
#: value. Its ImageNet linf runs use 0.05: lower p_init for large images.
_DEFAULT_P_INIT = {"linf": 0.8, "l2": 0.1}
#: iterations (on a 10,000-iteration scale) after which ``p`` halves
_P_HALVINGS = np.array([10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000])
_RESAMPLES = 10  # redraws of a proposal that would leave the input unchanged


def p_schedule(p_init: float, iteration: int, n_iters: int) -> float:
    """Window fraction at ``iteration``: ``p_init`` halved at iterations 10, 50, 200, 500, 1000,
    2000, 4000, 6000 and 8000 of a 10,000-iteration run, rescaled to ``n_iters``."""
    scaled = int(iteration / max(n_iters, 1) * 10000)
    return p_init / 2.0 ** int(np.searchsorted(_P_HALVINGS, scaled, side="left"))


def margin_loss(proba: np.ndarray, y: np.ndarray, target: np.ndarray | None,
                loss: str = "margin") -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss to *minimise* and whether the sample is fooled, from probabilities.

    ``margin``: ``log p_y - max_{j != y} log p_j`` (untargeted) or ``max_{j != t} log p_j -
    log p_t`` (targeted); negative exactly when the attack succeeds. ``ce``: ``log p_y``
    (untargeted) or ``-log p_t`` (targeted).
    """
    logp = np.log(np.clip(proba, 1e-30, None))
    rows = np.arange(len(logp))
    cls = y if target is None else target
    own = logp[rows, cls]
    others = logp.copy()
    others[rows, cls] = -np.inf
    margin = own - others.max(axis=1)
    pred = proba.argmax(axis=1)
    fooled = pred != y if target is None else pred == target
    if loss == "margin":
        value = margin if target is None else -margin
    else:
        value = own if target is None else -own
    return value, fooled


class _Constraints:
    """The threat model's mask and bounds as numpy arrays in an attack's internal layout."""

    def __init__(self, threat: ThreatModel, sample_shape: tuple[int, ...], layout: tuple[int, ...]) -> None:
        def fit(value: Any, name: str, dtype: Any) -> np.ndarray:
            try:
                return np.broadcast_to(np.asarray(value, dtype=dtype), sample_shape).reshape(layout)
            except ValueError:
                raise InputError(
                    f"the threat model's {name} has shape {np.shape(value)}, which does not broadcast "
                    f"to one sample of x (shape {sample_shape}); give one value per feature.") from None

        self.mask = None if threat.mutable is None else fit(threat.mutable, "mutable mask", bool)
        if threat.bounds is None:
            self.lo = self.hi = None
        else:
            self.lo, self.hi = (fit(b, "bounds", np.float32) for b in threat.bounds)

    def masked(self, d: np.ndarray) -> np.ndarray:
        return d if self.mask is None else np.where(self.mask, d, 0)

    def clip(self, z: np.ndarray) -> np.ndarray:
        return z if self.lo is None else np.clip(z, self.lo, self.hi)


def _rectangle(h: int, w: int) -> np.ndarray:
    """Concentric-square pattern on an ``h x w`` rectangle: the entry at Chebyshev distance ``d``
    from the centre is ``sum_{k >= d} 1 / (k + 1)^2`` (largest at the centre)."""
    if h == 0:
        return np.zeros((0, w))
    dist = np.maximum(np.abs(np.arange(h) - h // 2)[:, None], np.abs(np.arange(w) - w // 2)[None, :])
    weights = 1.0 / np.arange(1, dist.max() + 2) ** 2
    tail = np.cumsum(weights[::-1])[::-1]
    return tail[dist]


def _meta_pattern(s: int) -> np.ndarray:
    """The paper's l2 update pattern: two concentric-square halves of opposite sign, unit norm."""
    p = np.concatenate([_rectangle(s // 2, s), -_rectangle(s - s // 2, s)])
    return p / np.linalg.norm(p)


@register
class Square(Attack):
    """Square attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), linf and l2.

    A score-based black-box attack: it needs only ``predict_proba``, so it runs on trees, ONNX
    sessions and plain callables as well as on networks, and it is the standard check that a
    white-box evaluation was not fooled by masked gradients.

    Parameters
    ----------
    threat : ThreatModel
        Norm ``linf`` or ``l2``; eps; bounds; mutable mask (immutable features never move).
    queries : int, default 5000
        Query budget per sample, over all restarts (each restart gets an equal share; its first
        query evaluates the starting point).
    p_init : float in (0, 1], optional
        Initial window area as a fraction of the input; halves on the paper's schedule
        (:func:`p_schedule`). Default 0.8 for linf (the paper's MNIST setting; use ~0.05 for
        ImageNet-sized images) and 0.1 for l2 (the paper's value).
    loss : {"margin", "ce"}, default "margin"
        Log-probability margin (the paper's untargeted loss) or cross-entropy.
    restarts : int, default 1
        Independent runs from fresh random starts, each only on the samples still not fooled.
    seed : int, default 0
        Seeds the starts and every proposal.

    Notes
    -----
    Input shapes: ``N x C x H x W`` gets square windows; anything else is a flat feature vector
    where a window is a random subset of the mutable features (see the module docstring).
    ``AttackResult.queries`` holds the exact per-sample count (plus the clean prediction).

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart.attacks import ThreatModel
    >>> from stalwart.attacks.square import Square
    >>> from stalwart.models.function import FunctionModel
    >>> w = np.array([1.0, -2.0, 0.5])
    >>> def predict_proba(x):
    ...     p = 1 / (1 + np.exp(-(np.asarray(x) @ w - 0.2)))
    ...     return np.stack([1 - p, p], axis=1)
    >>> x = np.array([[0.6, 0.1, 0.2], [0.1, 0.5, 0.5]], dtype=np.float32)
    >>> model = FunctionModel(predict_proba, classes=[0, 1])
    >>> res = Square(ThreatModel("linf", eps=0.3), queries=200).run(model, x, [1, 0])
    >>> res.success.tolist(), bool((res.distance <= 0.3 + 1e-6).all())
    ([True, True], True)
    """

    name: ClassVar[str] = "square"
    white_box: ClassVar[bool] = False

    def __init__(self, threat: ThreatModel, *, queries: int = 5000, p_init: float | None = None,
                 loss: Loss = "margin", restarts: int = 1, seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        if threat.norm not in ("linf", "l2"):
            raise param_error(self, "threat", "a ThreatModel with norm 'linf' or 'l2'", threat)
        check_positive(self, "queries", queries, integer=True)
        if p_init is not None:
            ok = isinstance(p_init, (int, float)) and not isinstance(p_init, bool) and 0 < p_init <= 1
            check_param(self, "p_init", p_init, ok, "a number in (0, 1]")
        check_choice(self, "loss", loss, ("margin", "ce"))
        check_positive(self, "restarts", restarts, integer=True)
        check_param(self, "restarts", restarts, restarts <= queries,
                    f"at most queries={queries} (every restart needs at least one query)")
        check_param(self, "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool),
                    "an integer")
        self.queries = int(queries)
        self.p_init = float(_DEFAULT_P_INIT[threat.norm] if p_init is None else p_init)
        self.loss = loss
        self.restarts = int(restarts)

    # -- main loop ------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        xs = x.detach().cpu().numpy().astype(np.float32)
        n, shape = len(xs), xs.shape
        image = xs.ndim == 4 and min(shape[2], shape[3]) >= 2
        layout = (shape[1], shape[2] * shape[3]) if image else (1, int(np.prod(shape[1:])))
        hw = (shape[2], shape[3]) if image else None
        cons = _Constraints(self.threat, shape[1:], layout)
        x0 = xs.reshape(n, *layout)
        yn = y.cpu().numpy()
        tn = None if target is None else target.cpu().numpy()
        rng = np.random.default_rng(self.seed)
        queries = np.zeros(n, dtype=np.int64)

        def evaluate(idx: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            proba = model.predict_proba(pts.reshape(len(idx), *shape[1:]))
            queries[idx] += 1
            return margin_loss(proba, yn[idx], None if tn is None else tn[idx], self.loss)

        best, best_loss = x0.copy(), np.full(n, np.inf)
        fooled = np.zeros(n, dtype=bool)
        share = self.queries // self.restarts
        budgets = [share] * (self.restarts - 1) + [self.queries - share * (self.restarts - 1)]
        for budget in budgets:
            idx = np.flatnonzero(~fooled)
            if idx.size == 0:
                break
            xr = x0[idx]
            cur = self._init(xr, cons, rng, hw)
            cur_loss, cur_fooled = evaluate(idx, cur)
            for it in range(1, budget):
                a = np.flatnonzero(~cur_fooled)
                if a.size == 0:
                    break
                p = p_schedule(self.p_init, it, budget - 1)
                prop = self._propose(xr[a], cur[a], p, cons, rng, hw)
                loss, hit = evaluate(idx[a], prop)
                keep = hit | (loss < cur_loss[a])  # a fooling point is kept whatever its loss
                k = a[keep]
                cur[k], cur_loss[k], cur_fooled[k] = prop[keep], loss[keep], hit[keep]
            take = cur_fooled | (cur_loss < best_loss[idx])
            best[idx[take]], best_loss[idx[take]] = cur[take], cur_loss[take]
            fooled[idx] |= cur_fooled
        self._queries_per_sample = queries
        return torch.as_tensor(best.reshape(shape), device=x.device)

    # -- pieces ---------------------------------------------------------------------------------
    def _init(self, x: np.ndarray, cons: _Constraints, rng: np.random.Generator,
              hw: tuple[int, int] | None) -> np.ndarray:
        m, c, size = x.shape
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            if hw is None:
                signs = rng.choice([-1.0, 1.0], size=(m, c, size))
            else:  # vertical stripes: one sign per column and channel
                signs = np.broadcast_to(rng.choice([-1.0, 1.0], size=(m, c, 1, hw[1])),
                                        (m, c, *hw)).reshape(m, c, size)
            return cons.clip(x + cons.masked(eps * signs)).astype(np.float32)
        if hw is None:
            delta = rng.choice([-1.0, 1.0], size=(m, c, size))
        else:  # a grid of meta-patterns, one random sign per tile and channel
            h, w = hw
            t = max(min(h, w) // 5, 1)
            nh, nw = h // t, w // t
            oh, ow = (h - nh * t) // 2, (w - nw * t) // 2
            signs = rng.choice([-1.0, 1.0], size=(m, c, nh, nw))
            tiles = np.repeat(np.repeat(signs, t, axis=2), t, axis=3) * np.tile(_meta_pattern(t), (nh, nw))
            full = np.zeros((m, c, h, w))
            full[:, :, oh:oh + nh * t, ow:ow + nw * t] = tiles
            delta = full.reshape(m, c, size)
        delta = cons.masked(delta)
        delta *= eps / np.maximum(np.sqrt((delta ** 2).sum(axis=(1, 2), keepdims=True)), 1e-12)
        return cons.clip(x + delta).astype(np.float32)

    def _windows(self, m: int, size: int, p: float, cons: _Constraints, rng: np.random.Generator,
                 hw: tuple[int, int] | None, min_side: int = 1) -> tuple[np.ndarray, Any]:
        """Per-sample update regions, shape (m, 1, size), and the squares' geometry (images)."""
        if hw is None:
            mut = np.ones(size, dtype=bool) if cons.mask is None else cons.mask.reshape(-1)
            n_mut = max(int(mut.sum()), 1)
            k = min(max(round(p * n_mut), 1), n_mut)
            u = rng.random((m, size))
            u[:, ~mut] = 2.0  # never chosen
            kth = np.partition(u, k - 1, axis=1)[:, k - 1:k]
            return (u <= kth)[:, None, :], None
        h, w = hw
        s = min(max(round(math.sqrt(p * h * w)), min_side), min(h, w) - 1)
        s = max(s, 1)
        rh = np.arange(h)[None, :] - rng.integers(0, h - s + 1, m)[:, None]
        rw = np.arange(w)[None, :] - rng.integers(0, w - s + 1, m)[:, None]
        inside = ((rh >= 0) & (rh < s))[:, :, None] & ((rw >= 0) & (rw < s))[:, None, :]
        return inside.reshape(m, 1, size), (rh, rw, s, inside)

    def _propose(self, x: np.ndarray, cur: np.ndarray, p: float, cons: _Constraints,
                 rng: np.random.Generator, hw: tuple[int, int] | None) -> np.ndarray:
        prop = self._draw(x, cur, p, cons, rng, hw)
        for _ in range(_RESAMPLES):  # a proposal equal to the current point would waste a query
            same = np.flatnonzero(np.all(np.abs(prop - cur) < 1e-7, axis=(1, 2)))
            if same.size == 0:
                break
            prop[same] = self._draw(x[same], cur[same], p, cons, rng, hw)
        return prop

    def _draw(self, x: np.ndarray, cur: np.ndarray, p: float, cons: _Constraints,
              rng: np.random.Generator, hw: tuple[int, int] | None) -> np.ndarray:
        m, c, size = x.shape
        eps = float(self.threat.eps)
        delta = cur.astype(np.float64) - x
        if self.threat.norm == "linf":
            win, _ = self._windows(m, size, p, cons, rng, hw)
            # images: one sign per channel over the square; flat features: one sign each
            signs = rng.choice([-eps, eps], size=(m, c, 1) if hw is not None else (m, c, size))
            new = cons.masked(np.where(win, signs, delta))
            return cons.clip(x + new).astype(np.float32)

        win1, geo = self._windows(m, size, p, cons, rng, hw, min_side=3)
        win2, _ = self._windows(m, size, p, cons, rng, hw, min_side=3)
        if hw is None:
            eta = rng.choice([-1.0, 1.0], size=(m, 1, size)) * win1
        else:
            rh, rw, s, inside = geo
            pat = _meta_pattern(s)
            pats = np.stack([pat, pat.T])  # random orientation per sample
            flip = rng.integers(0, 2, m)[:, None, None]
            placed = pats[flip, np.clip(rh, 0, s - 1)[:, :, None], np.clip(rw, 0, s - 1)[:, None, :]]
            eta = (placed * inside).reshape(m, 1, size) * rng.choice([-1.0, 1.0], size=(m, c, 1))
        eta = cons.masked(np.broadcast_to(eta, (m, c, size)))

        def norm(a: np.ndarray) -> np.ndarray:  # per sample and channel
            return np.sqrt((a ** 2).sum(axis=2, keepdims=True))

        in1 = delta * win1
        n_union = norm(delta * (win1 | win2))
        unused = np.maximum(eps ** 2 - (delta ** 2).sum(axis=(1, 2), keepdims=True), 0.0)
        # fresh pattern plus the window's old content, carrying window 1 and 2's mass and an
        # equal share of the unused budget per channel
        fresh = eta / (norm(eta) + 1e-12) + in1 / (norm(in1) + 1e-12)
        fresh *= np.sqrt(unused / c + n_union ** 2) / (norm(fresh) + 1e-12)
        new = np.where(win1, fresh, np.where(win2, 0.0, delta))
        new = cons.masked(new)
        new *= eps / np.maximum(np.sqrt((new ** 2).sum(axis=(1, 2), keepdims=True)), 1e-12)
        return cons.clip(x + new).astype(np.float32)
