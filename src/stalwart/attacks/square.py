"""Square attack: score-based black-box random search (Andriushchenko et al., ECCV 2020).

Each iteration proposes one random change of the current perturbation inside a window and keeps
it only if the model's margin loss decreases; the window's area is a fraction ``p`` of the input
that halves on a fixed schedule. Only class scores are used (``Model.scores_tensor``, which
falls back to ``predict_proba``), so it runs on any model.

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

Everything runs in torch on the model's device (a torch model is queried without leaving it),
driven by one ``torch.Generator`` on that device seeded with ``seed``: a run is reproducible on
a given device type, and CPU and CUDA runs draw different (equally valid) random streams.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from stalwart._validation import check_choice, check_param, check_positive, check_seed, param_error
from stalwart.attacks._common import Feasible
from stalwart.attacks.base import Attack, Candidates, ThreatModel, register

__all__ = ["Square", "margin_loss", "p_schedule"]

Loss = Literal["margin", "ce"]

#: initial window fraction per norm: the paper's MNIST linf value (also AutoAttack's) and its l2
#: value. Its ImageNet linf runs use 0.05: lower p_init for large images.
_DEFAULT_P_INIT = {"linf": 0.8, "l2": 0.1}
#: iterations (on a 10,000-iteration scale) after which ``p`` halves
_P_HALVINGS = np.array([10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000])
_RESAMPLES = 10  # redraws of a proposal that would leave the input unchanged
#: cap on the values of one batch of redrawn candidates (bounds memory on large inputs)
_MAX_CANDIDATE_VALUES = 1 << 22


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


def _margin_loss_t(proba: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`margin_loss` on tensors (the attack's inner loop)."""
    logp = proba.clamp_min(1e-30).log()
    cls = (y if target is None else target)[:, None]
    own = logp.gather(1, cls).squeeze(1)
    pred = proba.argmax(dim=1)
    fooled = pred != y if target is None else pred == target
    if loss == "margin":
        margin = own - logp.scatter(1, cls, -math.inf).amax(dim=1)
        return (margin if target is None else -margin), fooled
    return (own if target is None else -own), fooled


def _signs(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Uniform random signs (float32 +-1)."""
    return torch.randint(0, 2, shape, generator=gen, device=device, dtype=torch.float32).mul_(2).sub_(1)


@lru_cache(maxsize=64)
def _grid_index(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of an ``h x w`` image, shaped (1, h) and (1, w)."""
    return torch.arange(h, device=device)[None, :], torch.arange(w, device=device)[None, :]


def _subsets(rows: int, k: int, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``rows`` independent uniform random ``k``-subsets of ``range(n)``, shape (rows, k).

    Few of many (``k * k <= n``): ``k`` uniform draws per row, rows that drew a duplicate drawn
    again (a uniform ordered tuple of distinct values is a uniform subset); otherwise the ``k``
    largest of ``n`` uniform keys. Either way ``rows * k`` (or ``rows * n``) random numbers in a
    few kernel calls, instead of a full key vector and a selection per proposal.
    """
    if k * k > n:
        return torch.rand((rows, n), generator=gen, device=device).topk(k, dim=1).indices
    out = torch.randint(0, n, (rows, k), generator=gen, device=device)
    if k == 1:
        return out
    redo = torch.arange(rows, device=device)
    while True:
        srt = out[redo].sort(dim=1).values
        redo = redo[(srt[:, 1:] == srt[:, :-1]).any(dim=1)]
        if redo.numel() == 0:  # one host sync per round; a duplicate is rare (k * k <= n)
            return out
        out[redo] = torch.randint(0, n, (redo.numel(), k), generator=gen, device=device)


def _rectangle(h: int, w: int) -> np.ndarray:
    """Concentric-square pattern on an ``h x w`` rectangle: the entry at Chebyshev distance ``d``
    from the centre is ``sum_{k >= d} 1 / (k + 1)^2`` (largest at the centre)."""
    if h == 0:
        return np.zeros((0, w))
    dist = np.maximum(np.abs(np.arange(h) - h // 2)[:, None], np.abs(np.arange(w) - w // 2)[None, :])
    weights = 1.0 / np.arange(1, dist.max() + 2) ** 2
    tail = np.cumsum(weights[::-1])[::-1]
    return tail[dist]


@lru_cache(maxsize=64)
def _pattern_pair(s: int, device: torch.device) -> torch.Tensor:
    """The meta-pattern of side ``s`` and its transpose, shape (2, s, s), float32 on ``device``."""
    pat = _meta_pattern(s)
    return torch.as_tensor(np.stack([pat, pat.T]), dtype=torch.float32, device=device)


@lru_cache(maxsize=256)
def _square_grid(s: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Every position of an ``s x s`` square in an ``h x w`` image.

    Returns its top row and left column, the flat indices of its four corners in the padded
    ``(h + 1) x (w + 1)`` integral image with their signs (inclusion-exclusion), and its pixel
    masks ``(positions, h * w)`` when that table is small (else None).
    """
    nh, nw = h - s + 1, w - s + 1
    rows = torch.arange(nh, device=device).repeat_interleave(nw)
    cols = torch.arange(nw, device=device).repeat(nh)
    tl = rows * (w + 1) + cols
    corners = torch.stack([tl + s * (w + 2), tl + s, tl + s * (w + 1), tl], dim=1)
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0], device=device)
    wins = None
    if nh * nw * h * w <= 1 << 22:
        rh = torch.arange(h, device=device)[None, :] - rows[:, None]
        rw = torch.arange(w, device=device)[None, :] - cols[:, None]
        wins = (((rh >= 0) & (rh < s))[:, :, None] & ((rw >= 0) & (rw < s))[:, None, :]).reshape(nh * nw, h * w)
    return rows, cols, corners, signs, wins


def _meta_pattern(s: int) -> np.ndarray:
    """The paper's l2 update pattern: two concentric-square halves of opposite sign, unit norm."""
    p = np.concatenate([_rectangle(s // 2, s), -_rectangle(s - s // 2, s)])
    return p / np.linalg.norm(p)


@register
class Square(Attack):
    """Square attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), linf and l2.

    A score-based black-box attack: it needs only class scores, so it runs on trees, ONNX
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
        check_seed(self, seed)
        self.queries = int(queries)
        self.p_init = float(_DEFAULT_P_INIT[threat.norm] if p_init is None else p_init)
        self.loss = loss
        self.restarts = int(restarts)

    # -- main loop ------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> Candidates:
        with torch.inference_mode():  # scores only: no autograd bookkeeping in the hot loop
            return self._search(model, x.float(), y, target)

    def _search(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> Candidates:
        n, shape, dev = x.shape[0], tuple(x.shape), x.device
        image = x.ndim == 4 and min(shape[2], shape[3]) >= 2
        layout = (shape[1], shape[2] * shape[3]) if image else (1, math.prod(shape[1:]))
        hw = (shape[2], shape[3]) if image else None
        cons = Feasible(self.threat, shape[1:], dev, layout=layout)
        # flat inputs: the features a window may pick (all mutable ones)
        mutable = None if hw is not None else (
            torch.arange(layout[1], device=dev) if cons.mask is None else cons.mask.reshape(-1).nonzero().squeeze(1))
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(self.seed))
        x0 = x.reshape(n, *layout)
        queries = np.zeros(n, dtype=np.int64)  # host-side: updated only when samples drop out

        def evaluate(pts: torch.Tensor, yy: torch.Tensor, tt: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
            return _margin_loss_t(model.scores_tensor(pts.reshape(len(pts), *shape[1:])), yy, tt, self.loss)

        best, best_loss = x0.clone(), torch.full((n,), math.inf, device=dev)
        fooled = np.zeros(n, dtype=bool)
        share = self.queries // self.restarts
        budgets = [share] * (self.restarts - 1) + [self.queries - share * (self.restarts - 1)]
        for budget in budgets:
            idx = np.flatnonzero(~fooled)
            if idx.size == 0:
                break
            idx_t = torch.as_tensor(idx, device=dev)
            xr, yr = x0[idx_t], y[idx_t]
            tr = None if target is None else target[idx_t]
            cur = self._init(xr, cons, gen, hw)
            cur_loss, cur_fooled = evaluate(cur, yr, tr)
            queries[idx] += 1
            # compacted state of the samples still standing; written back when they drop out
            keep = ~cur_fooled
            pos = keep.nonzero().squeeze(1)
            pos_np = pos.cpu().numpy()
            xa, ca, la, ya = xr[keep], cur[keep], cur_loss[keep], yr[keep]
            ta = None if tr is None else tr[keep]
            # linf: the two vertices clip(x -+ eps) every mutable feature takes, kept per sample
            va = self._vertices(xa, cons) if self.threat.norm == "linf" else None
            for it in range(1, budget):
                if pos_np.size == 0:
                    break
                p = p_schedule(self.p_init, it, budget - 1)
                if va is None:
                    prop = self._propose(xa, ca, p, cons, gen, hw)
                elif hw is None:
                    prop = self._propose_flat_linf(ca, va, p, mutable, gen)
                else:
                    prop = self._propose_squares_linf(ca, va, p, cons, gen, hw)
                loss, hit = evaluate(prop, ya, ta)
                better = hit | (loss < la)  # a fooling point is kept whatever its loss
                ca = torch.where(better[:, None, None], prop, ca)
                la = torch.where(better, loss, la)
                if bool(hit.any()):  # the one host sync per iteration (besides resampling)
                    h = hit.cpu().numpy()
                    queries[idx[pos_np[h]]] += it  # iterations 1..it, one query each
                    cur[pos[hit]], cur_loss[pos[hit]], cur_fooled[pos[hit]] = ca[hit], la[hit], True
                    keep = ~hit
                    pos, pos_np, xa, ca, la, ya = pos[keep], pos_np[~h], xa[keep], ca[keep], la[keep], ya[keep]
                    ta = None if ta is None else ta[keep]
                    va = None if va is None else va[:, keep]
            queries[idx[pos_np]] += budget - 1  # still standing: spent every iteration
            cur[pos], cur_loss[pos] = ca, la
            take = cur_fooled | (cur_loss < best_loss[idx_t])
            best[idx_t[take]], best_loss[idx_t[take]] = cur[take], cur_loss[take]
            fooled[idx] |= cur_fooled.cpu().numpy()
        return Candidates(best.reshape(shape), queries)

    # -- pieces ---------------------------------------------------------------------------------
    def _init(self, x: torch.Tensor, cons: Feasible, gen: torch.Generator,
              hw: tuple[int, int] | None) -> torch.Tensor:
        m, c, size = x.shape
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            if hw is None:
                signs = _signs((m, c, size), gen, x.device)
            else:  # vertical stripes: one sign per column and channel
                signs = _signs((m, c, 1, hw[1]), gen, x.device).expand(m, c, *hw).reshape(m, c, size)
            return cons.clip(x + cons.masked(eps * signs))
        if hw is None:
            delta = _signs((m, c, size), gen, x.device)
        else:  # a grid of meta-patterns, one random sign per tile and channel
            h, w = hw
            t = max(min(h, w) // 5, 1)
            nh, nw = h // t, w // t
            oh, ow = (h - nh * t) // 2, (w - nw * t) // 2
            signs = _signs((m, c, nh, nw), gen, x.device)
            tiles = signs.repeat_interleave(t, 2).repeat_interleave(t, 3) * \
                _pattern_pair(t, x.device)[0].repeat(nh, nw)
            full = torch.zeros((m, c, h, w), device=x.device)
            full[:, :, oh:oh + nh * t, ow:ow + nw * t] = tiles
            delta = full.reshape(m, c, size)
        delta = cons.masked(delta)
        delta = delta * (eps / delta.square().sum(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-12))
        return cons.clip(x + delta)

    def _vertices(self, x: torch.Tensor, cons: Feasible) -> torch.Tensor:
        """``(clip(x - eps), clip(x + eps))`` stacked, shape (2, m, c, size)."""
        eps = float(self.threat.eps)
        return torch.stack([cons.clip(x - eps), cons.clip(x + eps)])

    def _propose_flat_linf(self, cur: torch.Tensor, vert: torch.Tensor, p: float, mutable: torch.Tensor,
                           gen: torch.Generator) -> torch.Tensor:
        """linf on flat inputs: ``k = round(p * n_mutable)`` random mutable features (at least
        one), each set to a random vertex.

        The same distribution as :meth:`_propose` (a uniform ``k``-subset of the mutable
        features, a uniform sign each, redrawn up to ``_RESAMPLES`` times while it would leave
        the point unchanged), drawn as ``k`` indices and signs per candidate instead of a key and
        a sign for every feature: when few features move (the late iterations, most of a run)
        all ``1 + _RESAMPLES`` candidates are drawn at once and the first that changes the point
        is applied, without building the rejected ones; when many move, a candidate that changes
        nothing is rare (every sign must match), so one is drawn and only those rows are redrawn.
        """
        n = mutable.numel()
        if n == 0:
            return cur.clone()
        k = min(max(round(p * n), 1), n)
        few = k * k <= n
        prop, changed = self._flat_candidates(cur, vert, k, mutable, gen, 1 + _RESAMPLES if few else 1)
        if not few:
            rows = (~changed).nonzero().squeeze(1)
            if rows.numel():
                prop[rows], _ = self._flat_candidates(cur[rows], vert[:, rows], k, mutable, gen, _RESAMPLES)
        return prop

    @staticmethod
    def _flat_candidates(cur: torch.Tensor, vert: torch.Tensor, k: int, mutable: torch.Tensor,
                         gen: torch.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first of ``count`` candidates per sample that changes ``cur`` (the first candidate
        if none does), and whether one did."""
        m, dev = cur.shape[0], cur.device
        pos = mutable[_subsets(m * count, k, mutable.numel(), gen, dev)].view(m, count * k)
        up = torch.randint(0, 2, (m, count * k), generator=gen, device=dev).bool()
        c0 = cur.view(m, -1)
        new = torch.where(up, vert[1].view(m, -1).gather(1, pos), vert[0].view(m, -1).gather(1, pos))
        changes = (new != c0.gather(1, pos)).view(m, count, k).any(dim=2)
        first = changes.to(torch.uint8).argmax(dim=1)  # first changing candidate (0 if none changes)
        pick = (first[:, None] * k + torch.arange(k, device=dev)[None, :])
        prop = c0.scatter(1, pos.gather(1, pick), new.gather(1, pick))
        return prop.view(cur.shape), changes.any(dim=1)

    def _propose_squares_linf(self, cur: torch.Tensor, vert: torch.Tensor, p: float,
                              cons: Feasible, gen: torch.Generator,
                              hw: tuple[int, int]) -> torch.Tensor:
        """linf on images: :meth:`_propose` without building rejected proposals.

        Every mutable pixel of the current point sits on one of the two vertices (``vert``).
        ``1 + _RESAMPLES`` candidates (square, one sign per channel) are drawn per sample at once;
        how many pixels each would change is read off integral images of "pixel differs from
        vertex" in O(1) per candidate, and the first candidate that changes the point is applied
        (the first one if none does): the distribution of drawing and redrawing one at a time,
        with no second pass and no host sync.
        """
        m, c, size = cur.shape
        (h, w), dev, k = hw, cur.device, _RESAMPLES + 1
        s = self._side(p, hw, 1)
        rows, cols, corners, signs4, wins = _square_grid(s, h, w, dev)
        pos = torch.randint(0, len(corners), (m, k), generator=gen, device=dev)
        sign = torch.randint(0, 2, (m, c, k), generator=gen, device=dev)  # 0: -eps, 1: +eps
        # integral images of "this pixel is not on that vertex" (per vertex, sample, channel)
        differ = cons.mutable_in(vert != cur).view(2, m, c, h, w)
        # (float32 counts are exact up to 2^24 pixels and avoid integer-promotion copies)
        integ = torch.nn.functional.pad(differ.float().cumsum(3).cumsum(4), (1, 0, 1, 0))
        got = integ.view(2, m, c, -1).gather(3, corners[pos].view(1, m, 1, 4 * k).expand(2, m, c, 4 * k))
        box = (got.view(2, m, c, k, 4) * signs4).sum(dim=4)  # pixels each sign would change
        changed = torch.where(sign.bool(), box[1], box[0]).sum(dim=1)  # (m, k)
        first = (changed > 0).to(torch.uint8).argmax(dim=1, keepdim=True)
        pos = pos.gather(1, first).squeeze(1)
        sign = sign.gather(2, first[:, None, :].expand(m, c, 1))
        if wins is not None:
            win = wins[pos].view(m, 1, size)
        else:
            grid_r, grid_c = _grid_index(h, w, dev)
            rh, rw = grid_r - rows[pos, None], grid_c - cols[pos, None]
            win = (((rh >= 0) & (rh < s))[:, :, None] & ((rw >= 0) & (rw < s))[:, None, :]).view(m, 1, size)
        return torch.where(cons.mutable_in(win), torch.where(sign.bool(), vert[1], vert[0]), cur)

    @staticmethod
    def _side(p: float, hw: tuple[int, int], min_side: int) -> int:
        """Side of a square window covering a fraction ``p`` of an ``h x w`` image."""
        h, w = hw
        return max(min(max(round(math.sqrt(p * h * w)), min_side), min(h, w) - 1), 1)

    def _windows(self, m: int, size: int, p: float, cons: Feasible, gen: torch.Generator,
                 hw: tuple[int, int] | None, dev: torch.device, min_side: int = 1) -> tuple[torch.Tensor, Any]:
        """Per-sample update regions, bool of shape (m, 1, size), and the squares' geometry (images)."""
        if hw is None:
            n_mutable = max(cons.n_mutable, 1)
            k = min(max(round(p * n_mutable), 1), n_mutable)
            u = torch.rand((m, size), generator=gen, device=dev)
            if cons.mask is not None:
                u = u.masked_fill(~cons.mask.reshape(1, -1), 2.0)  # never chosen
            kth = u.kthvalue(k, dim=1, keepdim=True).values
            return (u <= kth)[:, None, :], None
        h, w = hw
        s = self._side(p, hw, min_side)
        grid_r, grid_c = _grid_index(h, w, dev)
        rh = grid_r - torch.randint(0, h - s + 1, (m, 1), generator=gen, device=dev)
        rw = grid_c - torch.randint(0, w - s + 1, (m, 1), generator=gen, device=dev)
        inside = ((rh >= 0) & (rh < s))[:, :, None] & ((rw >= 0) & (rw < s))[:, None, :]
        return inside.reshape(m, 1, size), (rh, rw, s, inside)

    def _propose(self, x: torch.Tensor, cur: torch.Tensor, p: float, cons: Feasible,
                 gen: torch.Generator, hw: tuple[int, int] | None) -> torch.Tensor:
        """One proposal per sample, redrawn (up to ``_RESAMPLES`` times) where it would leave the
        point unchanged and waste a query. The redraws of all such samples are drawn as one batch
        of candidates, the first that changes the point is used: the same distribution as
        redrawing one at a time, in one pass instead of up to ``_RESAMPLES``."""
        prop = self._draw(x, cur, p, cons, gen, hw)
        rows = ((prop - cur).abs().flatten(1).amax(dim=1) < 1e-7).nonzero().squeeze(1)
        left, per_sample = _RESAMPLES, cur[0].numel()
        while rows.numel() and left:
            k = max(1, min(left, _MAX_CANDIDATE_VALUES // (rows.numel() * per_sample)))
            xs, cs = x[rows], cur[rows]
            cand = self._draw(xs.repeat_interleave(k, 0), cs.repeat_interleave(k, 0), p, cons, gen, hw)
            cand = cand.reshape(len(rows), k, *cur.shape[1:])
            differ = (cand - cs[:, None]).abs().flatten(2).amax(dim=2) >= 1e-7
            first = differ.float().argmax(dim=1)  # first changing candidate (0 if none changes)
            prop[rows] = cand[torch.arange(len(rows), device=x.device), first]
            rows, left = rows[~differ.any(dim=1)], left - k
        return prop

    def _draw(self, x: torch.Tensor, cur: torch.Tensor, p: float, cons: Feasible,
              gen: torch.Generator, hw: tuple[int, int] | None) -> torch.Tensor:
        m, c, size = x.shape
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            win, _ = self._windows(m, size, p, cons, gen, hw, x.device)
            # images: one sign per channel over the square; flat features: one sign each
            signs = eps * _signs((m, c, 1) if hw is not None else (m, c, size), gen, x.device)
            # outside the window (and on frozen features) the point is kept bit for bit
            return torch.where(cons.mutable_in(win), cons.clip(x + signs), cur)

        delta = cur - x
        win1, geo = self._windows(m, size, p, cons, gen, hw, x.device, min_side=3)
        win2, _ = self._windows(m, size, p, cons, gen, hw, x.device, min_side=3)
        if hw is None:
            eta = _signs((m, 1, size), gen, x.device) * win1
        else:
            rh, rw, s, inside = geo
            flip = torch.randint(0, 2, (m, 1, 1), generator=gen, device=x.device)  # random orientation
            placed = _pattern_pair(s, x.device)[flip, rh.clamp(0, s - 1)[:, :, None], rw.clamp(0, s - 1)[:, None, :]]
            eta = (placed * inside).reshape(m, 1, size) * _signs((m, c, 1), gen, x.device)
        eta = cons.masked(eta.expand(m, c, size))

        def norm(a: torch.Tensor) -> torch.Tensor:  # per sample and channel
            return a.square().sum(dim=2, keepdim=True).sqrt()

        in1 = delta * win1
        n_union = norm(delta * (win1 | win2))
        unused = (eps ** 2 - delta.square().sum(dim=(1, 2), keepdim=True)).clamp_min(0.0)
        # fresh pattern plus the window's old content, carrying window 1 and 2's mass and an
        # equal share of the unused budget per channel
        fresh = eta / (norm(eta) + 1e-12) + in1 / (norm(in1) + 1e-12)
        fresh = fresh * ((unused / c + n_union ** 2).sqrt() / (norm(fresh) + 1e-12))
        new = cons.masked(torch.where(win1, fresh, torch.where(win2, 0.0, delta)))
        new = new * (eps / new.square().sum(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-12))
        return cons.clip(x + new)
