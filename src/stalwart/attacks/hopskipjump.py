"""HopSkipJump: decision-based black-box attack (Chen, Jordan & Wainwright, IEEE S&P 2020).

Uses only the predicted label. From an adversarial starting point it repeats three steps:

1. **binary search** along the segment to the clean input (l2) or over the radius of an
   linf-ball around it (linf), landing just on the adversarial side of the decision boundary;
2. **gradient-direction estimate** at that boundary point by Monte Carlo: ``B`` random unit
   directions ``u_b``, scaled by ``delta``, each labelled +1 (adversarial) or -1, averaged with
   the mean label subtracted as a baseline (variance reduction);
3. **geometric step search**: move along the estimate (its sign for linf) by
   ``xi = distance / sqrt(t)``, halving ``xi`` until the point is adversarial again.

The paper's constants: ``theta = gamma / d^(3/2)`` (l2) or ``gamma / d^2`` (linf), with ``d``
the number of mutable features, sets the probe radius ``delta = d^(1/2) theta dist`` (l2) or
``d theta dist`` (linf) and the binary-search tolerance (here ``min(theta, 1e-3)`` as a fraction
of the searched segment: the paper's value is coarse for the few features of tabular data);
``B_t = init_evals * sqrt(t)``, capped at ``max_evals``.

The attack *minimises* the distance: it returns the closest adversarial point it found, and
:meth:`Attack.run` projects that onto the eps-ball, so a sample counts as fooled only when the
distance is at most eps. With an eps that covers the whole input range it is a
minimal-perturbation attack and ``AttackResult.distance`` is the distance it reached.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from stalwart._validation import check_array, check_param, check_positive, check_seed, param_error
from stalwart.attacks._common import Feasible
from stalwart.attacks.base import Attack, Candidates, ThreatModel, register
from stalwart.errors import InputError

__all__ = ["HopSkipJump"]

_MAX_HALVINGS = 30  # geometric step search: xi shrinks by at most 2^30
_CHUNK_ELEMENTS = 1 << 22  # cap on probe-array size (samples x evals x features) per model call
_MAX_TOLERANCE = 1e-3  # binary searches stop at min(theta, this) in the blending fraction


@register
class HopSkipJump(Attack):
    """HopSkipJump (Chen, Jordan & Wainwright, 2020): a decision-based attack for l2 and linf.

    Parameters
    ----------
    threat : ThreatModel
        Norm ``l2`` or ``linf``; eps; bounds; mutable mask (immutable features never move).
    queries : int, default 5000
        Query budget per sample (starting point, binary searches, gradient estimates and step
        searches together). A sample stops once too few queries remain for a full iteration.
    steps : int, default 40
        Most iterations (binary search + gradient estimate + step search) per sample.
    init_evals : int, default 100
        Monte Carlo probes for the first gradient estimate; iteration ``t`` uses
        ``init_evals * sqrt(t)``.
    max_evals : int, default 10000
        Cap on the probes per gradient estimate.
    gamma : float, default 1.0
        The paper's constant for the binary-search tolerance and probe radius.
    init_tries : int, default 100
        Uniform random points tried per sample to find an adversarial start.
    starting_points : array-like, optional
        A pool of inputs (for example training samples of every class), shaped like one batch
        of ``x``. The pool is predicted once (its queries are shared evenly by the attacked
        samples); each sample starts from the nearest pool point the model labels adversarially
        (immutable features copied from the sample). Samples with none fall back to noise.
    stop_within_eps : bool, default False
        Stop a sample once its distance is at most eps (saves queries when only robust accuracy
        is wanted); by default the distance keeps shrinking until the budget is spent.
    seed : int, default 0

    Notes
    -----
    Random starts are uniform within the bounds; where the threat model has no (finite) bound,
    within the batch's per-feature range widened by that range on each side.

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart.attacks import ThreatModel
    >>> from stalwart.attacks.hopskipjump import HopSkipJump
    >>> from stalwart.models.function import FunctionModel
    >>> model = FunctionModel(lambda x: (np.asarray(x).sum(axis=1) > 1.0).astype(int), classes=[0, 1])
    >>> x = np.array([[0.2, 0.3]], dtype=np.float32)  # l2 distance to the boundary: 0.5 / sqrt(2)
    >>> res = HopSkipJump(ThreatModel("l2", eps=2.0), queries=800).run(model, x, [0])
    >>> bool(res.success[0]), round(float(res.distance[0]), 2)
    (True, 0.35)
    """

    name: ClassVar[str] = "hopskipjump"
    white_box: ClassVar[bool] = False

    def __init__(self, threat: ThreatModel, *, queries: int = 5000, steps: int = 40,
                 init_evals: int = 100, max_evals: int = 10000, gamma: float = 1.0,
                 init_tries: int = 100, starting_points: Any = None, stop_within_eps: bool = False,
                 seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        if threat.norm not in ("l2", "linf"):
            raise param_error(self, "threat", "a ThreatModel with norm 'l2' or 'linf'", threat)
        for name, value in (("queries", queries), ("steps", steps), ("init_evals", init_evals),
                            ("max_evals", max_evals), ("init_tries", init_tries)):
            check_positive(self, name, value, integer=True)
        check_param(self, "init_evals", init_evals, init_evals >= 2,
                    "an integer >= 2 (the baseline needs two probes)")
        check_param(self, "max_evals", max_evals, max_evals >= init_evals, f"at least init_evals={init_evals}")
        check_positive(self, "gamma", gamma)
        check_param(self, "stop_within_eps", stop_within_eps, isinstance(stop_within_eps, bool), "True or False")
        check_seed(self, seed)
        self.queries = int(queries)
        self.steps = int(steps)
        self.init_evals = int(init_evals)
        self.max_evals = int(max_evals)
        self.gamma = float(gamma)
        self.init_tries = int(init_tries)
        self.stop_within_eps = stop_within_eps
        # private: an array does not belong in params() / reports
        self._starting_points = None if starting_points is None else check_array(
            starting_points, "starting_points", dtype=np.float32)

    # -- main loop ------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> Candidates:
        xs = x.detach().cpu().numpy().astype(np.float32)
        n, shape = len(xs), xs.shape
        x0 = xs.reshape(n, -1)
        cons = Feasible(self.threat, shape[1:], "cpu", layout=(x0.shape[1],))
        oracle = _Oracle(model, y.cpu().numpy(), None if target is None else target.cpu().numpy(), shape,
                         self.queries)
        best = self._search(x0, cons, oracle)
        return Candidates(torch.as_tensor(best.reshape(shape), device=x.device), oracle.q)

    def _search(self, x0: np.ndarray, cons: Feasible, oracle: _Oracle) -> np.ndarray:
        d = max(cons.n_mutable, 1)
        l2 = self.threat.norm == "l2"
        theta = self.gamma / (d ** 1.5 if l2 else d ** 2)
        # the paper's theta is loose in low dimensions (0.35 for d = 2); tabular inputs need better
        tol = min(theta, _MAX_TOLERANCE)
        bisect_steps = max(math.ceil(math.log2(1.0 / tol)), 1)
        rng = np.random.default_rng(self.seed)

        adv, found = self._start(x0, cons, rng, oracle)
        cur = x0.copy()
        i = np.flatnonzero(found)
        cur[i] = self._bisect(oracle, i, x0[i], adv[i], tol)
        best, dist = cur.copy(), np.where(found, self._dist(cur, x0), np.inf)
        eps = float(self.threat.eps)
        for t in range(1, self.steps + 1):
            evals = min(int(self.init_evals * math.sqrt(t)), self.max_evals)
            left = self.queries - oracle.q
            n_evals = np.minimum(evals, left - bisect_steps - 1).astype(np.int64)
            live = found & (n_evals >= 2)
            if self.stop_within_eps:
                live &= dist > eps
            i = np.flatnonzero(live)
            if i.size == 0:
                break
            xt, xo, dt = cur[i], x0[i], self._dist(cur[i], x0[i])
            probe = (math.sqrt(d) if l2 else d) * theta * dt
            v = self._direction(oracle, i, xt, probe, n_evals[i], cons, rng)
            step = v if l2 else np.sign(v)
            moved, ok = self._step_search(oracle, i, xt, step, dt / math.sqrt(t), cons)
            j = np.flatnonzero(ok)
            if j.size:
                new = self._bisect(oracle, i[j], xo[j], moved[j], tol)
                cur[i[j]] = new
                nd = self._dist(new, xo[j])
                closer = nd < dist[i[j]]
                best[i[j][closer]], dist[i[j][closer]] = new[closer], nd[closer]
        return best

    def _dist(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        diff = a.astype(np.float64) - b
        return np.abs(diff).max(axis=1) if self.threat.norm == "linf" else np.linalg.norm(diff, axis=1)

    # -- pieces ---------------------------------------------------------------------------------
    def _start(self, x0: np.ndarray, cons: Feasible, rng: np.random.Generator, oracle: _Oracle
               ) -> tuple[np.ndarray, np.ndarray]:
        """An adversarial starting point per sample (where one was found) and which were found."""
        n, dim = x0.shape
        adv, found = x0.copy(), np.zeros(n, dtype=bool)
        if self._starting_points is not None:
            self._from_pool(x0, cons, adv, found, oracle)
        lo, hi = self._noise_range(x0, cons)
        mask = None if cons.mask is None else cons.mask.numpy()
        for _ in range(self.init_tries):
            i = np.flatnonzero(~found & oracle.can_query())
            if i.size == 0:
                break
            noise = rng.uniform(lo, hi, size=(i.size, dim))
            noise = np.where(mask, noise, x0[i]) if mask is not None else noise
            noise = noise.astype(np.float32)
            ok = oracle.adversarial(i, noise)
            adv[i[ok]], found[i[ok]] = noise[ok], True
        return adv, found

    def _from_pool(self, x0: np.ndarray, cons: Feasible, adv: np.ndarray, found: np.ndarray,
                   oracle: _Oracle) -> None:
        pool = self._starting_points
        sample = oracle.shape[1:]
        if pool.shape[1:] != sample:
            raise InputError(f"starting_points has samples shaped {pool.shape[1:]} but x has {sample}; "
                             "give starting points shaped like the inputs.")
        pool = pool.reshape(len(pool), -1)
        labels = oracle.model.predict_proba(pool.reshape(len(pool), *sample)).argmax(axis=1)
        oracle.q += len(pool) / len(x0)
        cls = oracle.y if oracle.t is None else oracle.t
        usable = labels[None, :] != cls[:, None] if oracle.t is None else labels[None, :] == cls[:, None]
        mask = np.ones(x0.shape[1], dtype=bool) if cons.mask is None else cons.mask.numpy()
        pick = np.full(len(x0), -1)
        rows = max(1, _CHUNK_ELEMENTS // max(pool.size, 1))
        for s in range(0, len(x0), rows):  # nearest usable pool point, chunked over samples
            diff = (pool[None, :, :] - x0[s:s + rows, None, :]) * mask
            dist = np.abs(diff).max(axis=2) if self.threat.norm == "linf" else np.linalg.norm(diff, axis=2)
            dist = np.where(usable[s:s + rows], dist, np.inf)
            pick[s:s + rows] = np.where(np.isfinite(dist).any(axis=1), dist.argmin(axis=1), -1)
        i = np.flatnonzero((pick >= 0) & oracle.can_query())
        if i.size == 0:
            return
        cand = _clip(cons, np.where(mask, pool[pick[i]], x0[i])).astype(np.float32)
        ok = oracle.adversarial(i, cand)  # immutables and clipping may have changed the label
        adv[i[ok]], found[i[ok]] = cand[ok], True

    @staticmethod
    def _noise_range(x0: np.ndarray, cons: Feasible) -> tuple[np.ndarray, np.ndarray]:
        lo_d, hi_d = x0.min(axis=0).astype(np.float64), x0.max(axis=0).astype(np.float64)
        span = hi_d - lo_d
        span = np.where(span > 0, span, np.maximum(np.abs(hi_d), 1.0))
        lo_d, hi_d = lo_d - span, hi_d + span
        if cons.lo is None:
            return lo_d, hi_d
        lo, hi = cons.lo.numpy(), cons.hi.numpy()
        return np.where(np.isfinite(lo), lo, lo_d), np.where(np.isfinite(hi), hi, hi_d)

    def _blend(self, xo: np.ndarray, xa: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The point at fraction ``alpha`` of the way from ``xo`` to ``xa`` in the attack's norm."""
        a = alpha[:, None]
        if self.threat.norm == "l2":
            return (xo + a * (xa.astype(np.float64) - xo)).astype(np.float32)
        r = np.abs(xa.astype(np.float64) - xo).max(axis=1, keepdims=True)
        return np.clip(xa, xo - a * r, xo + a * r).astype(np.float32)

    def _bisect(self, oracle: _Oracle, idx: np.ndarray, xo: np.ndarray, xa: np.ndarray, tol: float) -> np.ndarray:
        """Binary search from the adversarial ``xa`` towards ``xo`` to the boundary, to a tolerance
        ``tol`` in the blending fraction; returns the closest point verified adversarial."""
        lo, hi = np.zeros(len(idx)), np.ones(len(idx))
        out = xa.copy()
        while True:
            live = np.flatnonzero((hi - lo > tol) & oracle.can_query(idx))
            if live.size == 0:
                return out
            mid = (lo[live] + hi[live]) / 2
            pts = self._blend(xo[live], xa[live], mid)
            ok = oracle.adversarial(idx[live], pts)
            hi[live[ok]], out[live[ok]] = mid[ok], pts[ok]
            lo[live[~ok]] = mid[~ok]

    def _direction(self, oracle: _Oracle, idx: np.ndarray, xt: np.ndarray, probe: np.ndarray,
                   n_evals: np.ndarray, cons: Feasible, rng: np.random.Generator) -> np.ndarray:
        """Monte Carlo estimate of the boundary's normal at ``xt`` (unit l2 norm)."""
        m, dim = xt.shape
        b = int(n_evals.max())
        v = np.zeros((m, dim))
        rows = max(1, _CHUNK_ELEMENTS // (b * dim))
        for s in range(0, m, rows):
            sl = slice(s, s + rows)
            k = len(xt[sl])
            u = rng.standard_normal((k, b, dim)) if self.threat.norm == "l2" else rng.uniform(-1, 1, (k, b, dim))
            u = cons.masked(torch.from_numpy(u)).numpy()
            u /= np.maximum(np.linalg.norm(u, axis=2, keepdims=True), 1e-12)
            pr = probe[sl, None, None]
            pts = _clip(cons, xt[sl, None, :] + pr * u).astype(np.float32)
            u = (pts - xt[sl, None, :].astype(np.float64)) / pr  # the probe actually made, after clipping
            valid = np.arange(b)[None, :] < n_evals[sl, None]
            owners = np.broadcast_to(idx[sl, None], (k, b))[valid]
            sign = np.zeros((k, b))
            sign[valid] = np.where(oracle.adversarial(owners, pts[valid]), 1.0, -1.0)
            count = n_evals[sl].astype(np.float64)
            mean = sign.sum(axis=1) / count
            # baseline: subtract the mean label, unless every probe agreed (then it would be zero)
            w = np.where((np.abs(mean) == 1)[:, None], sign, (sign - mean[:, None]) * valid)
            v[sl] = np.einsum("kb,kbd->kd", w, u) / count[:, None]
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def _step_search(self, oracle: _Oracle, idx: np.ndarray, xt: np.ndarray, step: np.ndarray, xi: np.ndarray,
                     cons: Feasible) -> tuple[np.ndarray, np.ndarray]:
        """Geometric search: halve ``xi`` until ``xt + xi * step`` is adversarial."""
        moved, ok = xt.copy(), np.zeros(len(idx), dtype=bool)
        xi = xi.copy()
        for _ in range(_MAX_HALVINGS):
            live = np.flatnonzero(~ok & oracle.can_query(idx))
            if live.size == 0:
                break
            pts = _clip(cons, xt[live] + xi[live, None] * step[live]).astype(np.float32)
            hit = oracle.adversarial(idx[live], pts)
            moved[live[hit]], ok[live[hit]] = pts[hit], True
            xi[live[~hit]] /= 2
        return moved, ok


def _clip(cons: Feasible, z: np.ndarray) -> np.ndarray:
    """``z`` (numpy) clipped to the threat model's bounds."""
    return cons.clip(torch.from_numpy(z)).numpy()


class _Oracle:
    """One run's decision oracle: the model, the labels and the per-sample query counts.

    Created by each call of ``_attack`` and dropped at its end, so the attack object holds no
    model and no counts between (or during) runs.
    """

    def __init__(self, model: Any, y: np.ndarray, target: np.ndarray | None, shape: tuple[int, ...],
                 budget: int) -> None:
        self.model, self.y, self.t, self.shape, self.budget = model, y, target, shape, budget
        self.q = np.zeros(len(y), dtype=float)

    def can_query(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Whether each sample (all, or ``idx``) has a query left."""
        return (self.q if idx is None else self.q[idx]) + 1 <= self.budget

    def adversarial(self, owners: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """Whether each point fools the model for the sample that owns it (one query each)."""
        pred = self.model.predict_proba(pts.reshape(len(pts), *self.shape[1:])).argmax(axis=1)
        self.q += np.bincount(owners, minlength=len(self.q))
        return pred != self.y[owners] if self.t is None else pred == self.t[owners]
