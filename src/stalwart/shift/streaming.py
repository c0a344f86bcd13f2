"""Streaming change detectors: ADWIN, Page-Hinkley, DDM and KSWIN.

Each detector consumes one value at a time through :meth:`StreamDetector.update` (a metric, a
0/1 error indicator, one feature) and returns True at the value where it signals a change; the
indices are kept in ``detected_at``. A stream is sequential by nature, so ``update`` is a small
constant- or logarithmic-time step in plain Python; :meth:`StreamDetector.run` feeds an array.

After a detection each detector restarts as its paper (or river) prescribes: Page-Hinkley and DDM
forget everything, KSWIN keeps only its last ``stat_size`` values, and ADWIN starts a new window
with the next value (``on_change="shrink"`` keeps the part of the window after the cut, as MOA's
estimator does). ``update_many(values)`` feeds a batch; ADWIN processes it in numpy, the others
one value at a time, and the alarms are those of one ``update`` per value.

Examples
--------
>>> import numpy as np
>>> from stalwart.shift.streaming import ADWIN
>>> rng = np.random.default_rng(0)
>>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1, 1, 500)])
>>> hits = ADWIN().run(stream)
>>> len(hits) >= 1 and 1000 <= hits[0] < 1200
True
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import chain
from typing import Any, ClassVar, Literal

import numpy as np

from stalwart._validation import check_choice, check_param, check_positive
from stalwart.errors import InputError
from stalwart.shift.base import StreamDetector, register

__all__ = ["ADWIN", "PageHinkley", "DDM", "KSWIN", "ks_two_sample_pvalue"]

Direction = Literal["up", "down", "both"]


def _check_unit(owner: object, name: str, value: Any, *, closed_right: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and 0 < value and (value <= 1 if closed_right else value < 1)
    return float(check_param(owner, name, value, bool(ok),
                             "a number in (0, 1]" if closed_right else "a number in (0, 1)"))


def _check_finite(owner: object, value: float) -> None:
    if not math.isfinite(value):
        from stalwart.errors import InputError

        raise InputError(f"{type(owner).__name__}.update got {value!r}; stream values must be finite "
                         "(drop or impute missing values first).")


def _check_int(owner: object, name: str, value: Any, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    return int(check_param(owner, name, value, bool(ok), f"an integer >= {minimum}"))


# -- ADWIN ---------------------------------------------------------------------------------------
OnChange = Literal["restart", "shrink"]


@register
class ADWIN(StreamDetector):
    """ADaptive WINdowing (ADWIN2; Bifet & Gavaldà, 2007), with MOA's cut test.

    Keeps a window of recent values, compressed into an exponential histogram: at most
    ``max_buckets`` buckets per level, a level-``i`` bucket summarising ``2**i`` consecutive
    values (their total and sum of squared deviations), so memory and the cut test cost
    O(log W) for a window of W values. Every ``clock`` values, once the window holds more than
    ``grace_period`` values, it tests each bucket boundary, splitting the window into an older
    part W0 (``n0`` values) and a newer part W1 (``n1`` values), both longer than
    ``min_window + 1``; a split with

    ``|mean(W0) - mean(W1)| > eps = sqrt(2 m var dd) + 2 m dd / 3``,

    ``m = 1 / (n0 - min_window + 1) + 1 / (n1 - min_window + 1)``, ``var`` the variance of the
    whole window and ``dd = ln(2 ln(W) / delta)``, is a cut: the oldest bucket is dropped and the
    test repeated until no split is a cut. This is the bound of MOA's ``ADWIN.java`` (and
    river's): the ``- min_window + 1`` shrinks both part sizes, which makes the bound wider
    for short parts than the paper's ``1 / n0 + 1 / n1``.

    A change is signalled at a clock tick where the window shrank. What follows it is
    ``on_change``:

    - ``"restart"`` (default; river's ``drift.ADWIN``): the detector starts afresh with the
      next value (empty window, clock restarted), so one change gives one alarm. Until that
      value arrives, ``width`` and ``estimation`` describe the window left after the cut.
    - ``"shrink"`` (MOA's ``ADWIN`` estimator): it keeps the shrunk window and the global
      clock. The first cut often leaves part of the old
      regime in the window, and later ticks cut the rest, each signalled again (2.6 alarms
      on average for a one-sd mean shift, 1 to 5), while ``estimation`` tracks the current
      mean without a cold start. Count changes with ``"restart"``; use ``"shrink"`` for the
      window as an estimator.

    :meth:`update_many` feeds a batch several times faster than one :meth:`update` per value
    and gives the same alarms, bit for bit: values wait in a buffer until a tick; a batch's
    buckets at up to ``batch_ticks`` ticks are computed at once (which buckets merge
    depends only on the order of the values) and their cut tests run as one array
    operation.

    Parameters
    ----------
    delta : float, default 0.002
        Confidence: a smaller value gives fewer false alarms and slower detection.
    clock : int, default 32
        Test for a cut every ``clock`` values (the cut test is the costly part).
    max_buckets : int, default 5
        Buckets kept per level before the two oldest merge (``M`` in the paper).
    min_window : int, default 5
        Sub-window length of the bound's small-window correction; a part of a split must hold
        more than ``min_window + 1`` values.
    grace_period : int, default 10
        No cut test until the window holds more than this many values.
    on_change : {"restart", "shrink"}, default "restart"
        What a detection does to the window (see above).

    Attributes
    ----------
    width : int
        Values in the window.
    estimation : float
        Mean of the window.
    variance : float
        Variance of the window.
    n_buckets : int
        Buckets held (at most ``max_buckets * (log2(width) + 1)``).

    Examples
    --------
    A stream whose mean jumps from 0.5 to 5.5 at index 1000 (values drawn as river's ADWIN
    example draws them) is cut at the first clock tick after the jump, index 1023:

    >>> import random
    >>> rng = random.Random(12345)
    >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    >>> ADWIN().run(stream)
    [1023]
    """

    name: ClassVar[str] = "adwin"
    #: clock ticks whose cut tests :meth:`update_many` evaluates together
    batch_ticks: ClassVar[int] = 64

    def __init__(self, delta: float = 0.002, *, clock: int = 32, max_buckets: int = 5,
                 min_window: int = 5, grace_period: int = 10, on_change: OnChange = "restart") -> None:
        super().__init__()
        self.delta = _check_unit(self, "delta", delta)
        self.clock = _check_int(self, "clock", clock, 1)
        self.max_buckets = _check_int(self, "max_buckets", max_buckets, 2)
        self.min_window = _check_int(self, "min_window", min_window, 1)
        self.grace_period = _check_int(self, "grace_period", grace_period, 1)
        self.on_change = check_choice(self, "on_change", on_change, ("restart", "shrink"))
        self._clear()

    def _clear(self) -> None:
        # _totals[i] / _m2s[i]: the level-i buckets (2**i values each), oldest first
        self._totals: list[list[float]] = [[]]
        self._m2s: list[list[float]] = [[]]
        self._width = 0  # values in the buckets (the pending ones not counted)
        self._pending: list[float] = []  # values since the last tick, not yet in a bucket
        self._tick = 0  # values since the window (re)started; a cut test when it hits the clock
        self._restart_due = False

    # -- state, read from the buckets (pending values are put in first) --
    @property
    def width(self) -> int:
        self._flush()
        return self._width

    @property
    def estimation(self) -> float:
        self._flush()
        return self._moments()[1] / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        self._flush()
        return self._moments()[3] if self._width else 0.0

    @property
    def n_buckets(self) -> int:
        self._flush()
        return sum(len(level) for level in self._totals)

    # -- feeding --
    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        if self._restart_due:
            self._clear()
        self._pending.append(value)
        self._tick += 1
        if self._tick % self.clock:
            return False
        self._flush()
        if not self._cut_found(at_tick=True):
            return False
        self._after_cut()
        return True

    def _feed(self, arr: np.ndarray) -> list[int]:
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise InputError(f"ADWIN.update_many got {float(arr[bad[0]])!r} at position {bad[0]}; stream values must be "
                             "finite (drop or impute missing values first). Nothing was fed.")
        values, start, fired = arr.tolist(), self.n_seen, []
        pos, n, clock = 0, len(values), self.clock
        while pos < n:
            if self._restart_due:
                self._clear()
            need = clock - self._tick % clock
            if n - pos < need:  # no tick in what is left: it waits for the next one
                self._pending.extend(values[pos:])
                self._tick += n - pos
                break
            ticks = min(self.batch_ticks, 1 + (n - pos - need) // clock)
            end = pos + need + clock * (ticks - 1)
            first = self._advance(values[pos:end], need, ticks)
            used = end - pos if first < 0 else need + clock * first
            pos += used
            self._tick += used
            if first >= 0:
                self._after_cut()
                fired.append(start + pos - 1)
        self.n_seen += n
        self.detected_at.extend(fired)
        return fired

    def _advance(self, values: list[float], need: int, ticks: int) -> int:
        """Feed ``values``, which hold ``ticks`` clock ticks, the first after ``need`` of them.

        Computes the buckets at every tick at once, tests them all for a cut, and leaves the
        buckets as they were at the first tick with a cut (whose index it returns; the values
        after it are not consumed) or at the last tick (returning -1). One value at a time, a
        level merges its two oldest buckets whenever it reaches ``max_buckets + 1`` of them,
        so after ``r`` arrivals at a level holding ``c`` it has made
        ``max(0, (c + r - max_buckets + 1) // 2)`` merges, of its buckets taken pairwise in
        order: each level is a queue, and a tick's buckets are a slice of it.
        """
        # one merge and one row at a time in Python costs less than numpy's call overhead for a
        # few ticks; whole levels as arrays cost less for many. Both do the same float operations
        # in the same order, so they leave the same buckets and find the same cuts.
        if ticks >= 8:
            return self._advance_arrays(values, need, ticks)
        return self._advance_lists(values, need, ticks)

    def _advance_lists(self, values: list[float], need: int, ticks: int) -> int:
        """:meth:`_advance` for a few ticks: merges and rows built from Python lists."""
        most, clock = self.max_buckets, self.clock
        new_t = self._pending + values
        new_v = [0.0] * len(new_t)
        arrived = [len(self._pending) + need + clock * j for j in range(ticks)]  # at level 0, by each tick
        self._pending = []
        queues = []  # (totals, m2s, heads, tails) of the levels that receive buckets in this batch
        level = 0
        while arrived[-1]:
            old_t = self._totals[level] if level < len(self._totals) else []
            old_v = self._m2s[level] if level < len(self._m2s) else []
            held = len(old_t)
            queue_t, queue_v = old_t + new_t, old_v + new_v
            merged = [max(0, (held + r - most + 1) // 2) for r in arrived]
            queues.append((queue_t, queue_v, [2 * k for k in merged], [held + r for r in arrived]))
            k = 2 * merged[-1]
            a, b = queue_t[0:k:2], queue_t[1:k:2]
            twice = 2.0 * (1 << level)
            new_v = [va + vb + (x - y) * (x - y) / twice
                     for va, vb, x, y in zip(queue_v[0:k:2], queue_v[1:k:2], a, b)]
            new_t = [x + y for x, y in zip(a, b)]
            arrived = merged
            level += 1
        # the levels above receive nothing: every tick starts with the same (oldest) buckets
        still = range(len(self._totals) - 1, level - 1, -1)
        base_n = [1 << lv for lv in still for _ in self._totals[lv]]
        base_t = list(chain.from_iterable(self._totals[lv] for lv in still))
        base_v = list(chain.from_iterable(self._m2s[lv] for lv in still))
        flat_n, flat_t, flat_v, lengths = [], [], [], []
        for j in range(ticks):
            flat_n += base_n
            flat_t += base_t
            flat_v += base_v
            count = len(base_n)
            for lv in range(level - 1, -1, -1):
                queue_t, queue_v, heads, tails = queues[lv]
                h, t = heads[j], tails[j]
                flat_n += [1 << lv] * (t - h)
                flat_t += queue_t[h:t]
                flat_v += queue_v[h:t]
                count += t - h
            lengths.append(count)
        lengths_a = np.array(lengths)
        mask = np.arange(lengths_a.max()) < lengths_a[:, None]
        sizes = np.zeros(mask.shape, dtype=np.int64)
        totals = np.zeros(mask.shape)
        m2s = np.zeros(mask.shape)
        sizes[mask] = flat_n
        totals[mask] = flat_t
        m2s[mask] = flat_v
        cuts = self._cut_rows(sizes, totals, m2s, mask)
        first = int(np.argmax(cuts)) if cuts.any() else -1
        at = first if first >= 0 else ticks - 1
        for lv, (queue_t, queue_v, heads, tails) in enumerate(queues):
            if lv == len(self._totals):
                self._totals.append([])
                self._m2s.append([])
            self._totals[lv] = queue_t[heads[at]:tails[at]]
            self._m2s[lv] = queue_v[heads[at]:tails[at]]
        while len(self._totals) > 1 and not self._totals[-1]:
            self._totals.pop()
            self._m2s.pop()
        self._width = int(sizes[at].sum())
        return first

    def _advance_arrays(self, values: list[float], need: int, ticks: int) -> int:
        """:meth:`_advance` for many ticks: each level's merges as array operations."""
        most, pending = self.max_buckets, self._pending
        self._pending = []
        new_t = np.asarray(pending + values, dtype=float)
        new_v = np.zeros(len(new_t))
        arrived = len(pending) + need + self.clock * np.arange(ticks)  # at level 0, by each tick
        queues, heads, tails = [], [], []
        level = 0
        while level < len(self._totals) or arrived[-1] > 0:
            old_t = self._totals[level] if level < len(self._totals) else []
            old_v = self._m2s[level] if level < len(self._m2s) else []
            held = len(old_t)
            queue_t = np.concatenate([np.asarray(old_t, dtype=float), new_t]) if held else new_t
            queue_v = np.concatenate([np.asarray(old_v, dtype=float), new_v]) if held else new_v
            merged = np.maximum(0, (held + arrived - most + 1) // 2)
            queues.append((queue_t, queue_v))
            heads.append(2 * merged)
            tails.append(held + arrived)
            k = 2 * int(merged[-1])
            a, b = queue_t[0:k:2], queue_t[1:k:2]
            new_v = queue_v[0:k:2] + queue_v[1:k:2] + (a - b) * (a - b) / (2.0 * (1 << level))
            new_t = a + b
            arrived = merged
            level += 1
        head, tail = np.array(heads), np.array(tails)  # (levels, ticks)
        live = tail - head
        # rows: one per tick; columns: max_buckets slots per level, the top level first
        n_levels = len(queues)
        offsets = np.cumsum([0] + [len(q[0]) for q in queues[::-1]])[:-1][::-1]  # of each level's queue
        slots = np.arange(most)
        idx = (offsets[:, None, None] + head[:, :, None] + slots)[::-1].transpose(1, 0, 2)
        mask = (slots < live[:, :, None])[::-1].transpose(1, 0, 2).reshape(ticks, n_levels * most)
        idx = idx.reshape(ticks, n_levels * most)
        all_t = np.concatenate([q[0] for q in queues[::-1]])
        all_v = np.concatenate([q[1] for q in queues[::-1]])
        safe = np.where(mask, idx, 0)
        sizes = np.where(mask, np.repeat(np.left_shift(1, np.arange(n_levels - 1, -1, -1)), most), 0)
        cuts = self._cut_rows(sizes, np.where(mask, all_t[safe], 0.0), np.where(mask, all_v[safe], 0.0), mask)
        first = int(np.argmax(cuts)) if cuts.any() else -1
        at = first if first >= 0 else ticks - 1
        self._totals = [q[0][h:t].tolist() for q, h, t in zip(queues, head[:, at], tail[:, at])]
        self._m2s = [q[1][h:t].tolist() for q, h, t in zip(queues, head[:, at], tail[:, at])]
        while len(self._totals) > 1 and not self._totals[-1]:
            self._totals.pop()
            self._m2s.pop()
        self._width = int((live[:, at] << np.arange(n_levels)).sum())
        return first

    def _after_cut(self) -> None:
        """A cut was found at this tick: drop the oldest bucket while one is."""
        self._drop_oldest()
        while self._cut_found(at_tick=False):
            self._drop_oldest()
        self._restart_due = self.on_change == "restart"

    def _flush(self) -> None:
        """Put the pending values into level 0 and carry the merges up the levels."""
        if not self._pending:
            return
        self._width += len(self._pending)
        new_t, new_v = self._pending, [0.0] * len(self._pending)
        self._pending = []
        most, level = self.max_buckets, 0
        while new_t:
            if level == len(self._totals):
                self._totals.append([])
                self._m2s.append([])
            totals, m2s = self._totals[level], self._m2s[level]
            totals.extend(new_t)
            m2s.extend(new_v)
            if len(totals) <= most:
                break
            # one value at a time, the level would merge its two oldest buckets each time it
            # reached most + 1: k merges in all, of the first 2k buckets, pairwise in order
            k = 2 * ((len(totals) - most + 1) // 2)
            a, b = totals[0:k:2], totals[1:k:2]
            twice = 2.0 * (1 << level)
            new_v = [va + vb + (x - y) * (x - y) / twice
                     for va, vb, x, y in zip(m2s[0:k:2], m2s[1:k:2], a, b)]
            new_t = [x + y for x, y in zip(a, b)]
            del totals[:k], m2s[:k]
            level += 1

    # The cut test has two implementations that give bit-identical answers: a loop over one
    # window (update) and arrays over many (update_many). Both add in the same order (sums
    # run oldest to newest; the arrays' padding adds exact zeros) and use the same correctly
    # rounded operations, so how a stream is batched cannot change which tick finds a cut.
    def _moments(self) -> tuple[list[int], float, list[float], float]:
        """Bucket sizes (oldest first), window total, bucket totals, window variance."""
        top = len(self._totals) - 1
        sizes = [1 << lv for lv in range(top, -1, -1) for _ in self._totals[lv]]
        totals = list(chain.from_iterable(reversed(self._totals)))
        total = 0.0
        for t in totals:
            total += t
        mean = total / self._width
        within = 0.0
        for v in chain.from_iterable(reversed(self._m2s)):
            within += v
        between = 0.0
        for n, t in zip(sizes, totals):
            dev = t / n - mean
            between += n * dev * dev
        return sizes, total, totals, max(within + between, 0.0) / self._width

    def _cut_found(self, *, at_tick: bool) -> bool:
        """Whether some split of the window is a cut (MOA's bound)."""
        width, floor, shift = self._width, self.min_window + 1, self.min_window - 1
        if width <= 2 * floor or (at_tick and width <= self.grace_period):
            return False
        sizes, total, totals, var = self._moments()
        dd = math.log(2.0 * math.log(width) / self.delta)
        k1, k2 = 2.0 * var * dd, 2.0 / 3.0 * dd
        n0, s0 = 0, 0.0
        for n, t in zip(sizes, totals):
            n0 += n
            s0 += t
            if n0 <= floor:
                continue
            n1 = width - n0
            if n1 <= floor:
                return False
            m = 1.0 / (n0 - shift) + 1.0 / (n1 - shift)
            if abs(s0 / n0 - (total - s0) / n1) > math.sqrt(k1 * m) + k2 * m:
                return True
        return False

    def _cut_rows(self, sizes: np.ndarray, totals: np.ndarray, m2s: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:meth:`_cut_found` at a tick for many windows: one a row, buckets oldest first, padded."""
        n0 = np.cumsum(sizes, axis=1)
        s0 = np.cumsum(totals, axis=1)
        width, total = n0[:, -1], s0[:, -1]
        dev = totals / np.where(mask, sizes, 1) - (total / width)[:, None]
        m2 = np.cumsum(m2s, axis=1)[:, -1] + np.cumsum(sizes * dev * dev, axis=1)[:, -1]
        var = np.maximum(m2, 0.0) / width
        floor, shift = self.min_window + 1, self.min_window - 1
        active = (width > 2 * floor) & (width > self.grace_period)
        dd = np.zeros(len(width))
        dd[active] = [math.log(2.0 * math.log(w) / self.delta) for w in width[active].tolist()]
        n1 = width[:, None] - n0
        valid = mask & (n0 > floor) & (n1 > floor) & active[:, None]
        m = 1.0 / np.where(valid, n0 - shift, 1) + 1.0 / np.where(valid, n1 - shift, 1)
        diff = np.abs(s0 / np.where(valid, n0, 1) - (total[:, None] - s0) / np.where(valid, n1, 1))
        eps = np.sqrt((2.0 * var * dd)[:, None] * m) + (2.0 / 3.0 * dd)[:, None] * m
        return (valid & (diff > eps)).any(axis=1)

    def _drop_oldest(self) -> None:
        top = len(self._totals) - 1
        self._totals[top].pop(0)
        self._m2s[top].pop(0)
        self._width -= 1 << top
        while len(self._totals) > 1 and not self._totals[-1]:
            self._totals.pop()
            self._m2s.pop()

    def __repr__(self) -> str:
        return (f"ADWIN(delta={self.delta}, clock={self.clock}, max_buckets={self.max_buckets}, "
                f"min_window={self.min_window}, grace_period={self.grace_period}, on_change={self.on_change!r})")


# -- Page-Hinkley ----------------------------------------------------------------------------------
@register
class PageHinkley(StreamDetector):
    """Page-Hinkley test for a change in the mean (Page, 1954; Hinkley, 1971).

    With ``xbar_t`` the running mean of the values so far (``x_t`` included), the cumulative
    sums

    ``U_t = alpha * U_{t-1} + (x_t - xbar_t - delta)``   (increase),
    ``L_t = alpha * L_{t-1} + (xbar_t - x_t - delta)``   (decrease)

    are compared with their running minima; the statistic ``U_t - min U`` (or ``L_t - min L``)
    above ``threshold`` signals a change, after which every sum and the mean restart.

    Parameters
    ----------
    delta : float, default 0.005
        Magnitude of change tolerated; each value contributes ``-delta``, which keeps the sums
        drifting down on a stationary stream. Half the smallest shift to detect is a good value.
    threshold : float, default 50.0
        ``lambda``: alarm level of the statistic. Larger means fewer false alarms, later alarms.
    alpha : float, default 0.9999
        Forgetting factor of the cumulative sums (1 gives the classic test).
    direction : {"up", "down", "both"}, default "up"
        Which changes of the mean to detect.
    min_instances : int, default 30
        Values seen (since the last restart) before an alarm may fire.
    """

    name: ClassVar[str] = "page_hinkley"

    def __init__(self, delta: float = 0.005, threshold: float = 50.0, alpha: float = 0.9999, *,
                 direction: Direction = "up", min_instances: int = 30) -> None:
        super().__init__()
        self.delta = float(check_positive(self, "delta", delta, strict=False))
        self.threshold = float(check_positive(self, "threshold", threshold))
        self.alpha = _check_unit(self, "alpha", alpha, closed_right=True)
        self.direction = check_choice(self, "direction", direction, ("up", "down", "both"))
        self.min_instances = _check_int(self, "min_instances", min_instances, 1)
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._up = self._up_min = 0.0
        self._down = self._down_min = 0.0

    @property
    def statistic_up(self) -> float:
        return self._up - self._up_min

    @property
    def statistic_down(self) -> float:
        return self._down - self._down_min

    @property
    def statistic(self) -> float:
        """The statistic compared with ``threshold`` (the larger of both for "both")."""
        if self.direction == "up":
            return self.statistic_up
        if self.direction == "down":
            return self.statistic_down
        return max(self.statistic_up, self.statistic_down)

    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        self._n += 1
        self._mean += (value - self._mean) / self._n
        self._up = self.alpha * self._up + (value - self._mean - self.delta)
        self._down = self.alpha * self._down + (self._mean - value - self.delta)
        self._up_min = min(self._up_min, self._up)
        self._down_min = min(self._down_min, self._down)
        if self._n >= self.min_instances and self.statistic > self.threshold:
            self._restart()
            return True
        return False

    def __repr__(self) -> str:
        return (f"PageHinkley(delta={self.delta}, threshold={self.threshold}, alpha={self.alpha}, "
                f"direction={self.direction!r})")


# -- DDM -------------------------------------------------------------------------------------------
@register
class DDM(StreamDetector):
    """Drift Detection Method on a 0/1 error stream (Gama et al., 2004).

    After ``i`` values the error rate is ``p_i`` with binomial standard deviation
    ``s_i = sqrt(p_i (1 - p_i) / i)``. Once ``min_instances`` values are seen it records the
    point where ``p_i + s_i`` was smallest (``p_min``, ``s_min``); ``p_i + s_i > p_min +
    warning_level * s_min`` puts it in the warning state, ``> p_min + drift_level * s_min``
    signals a drift and restarts it (strict comparisons, as MOA and river make them).

    A point with ``s_i = 0`` -- no error yet (or nothing but errors) -- is never recorded as
    the minimum: its band ``p_min + 3 s_min`` would have zero width, so the first error after a
    faultless start would signal a drift. Until the stream holds an error (and a non-error)
    there is nothing to compare with and no alarm: a model that makes no mistakes raises
    none. After a faultless run of ``n`` values, errors are judged against ``p_min`` about
    ``1 / n`` and ``s_min`` about ``1 / n``, so a few errors in quick succession are a drift.

    Parameters
    ----------
    warning_level : float, default 2.0
    drift_level : float, default 3.0
    min_instances : int, default 30

    Attributes
    ----------
    warning : bool
        Whether the last value left the detector in the warning zone.
    warnings_at : list of int
        Indices of values at which the warning zone was entered.
    """

    name: ClassVar[str] = "ddm"

    def __init__(self, warning_level: float = 2.0, drift_level: float = 3.0, *,
                 min_instances: int = 30) -> None:
        super().__init__()
        self.warning_level = float(check_positive(self, "warning_level", warning_level))
        self.drift_level = float(check_param(
            self, "drift_level", drift_level,
            isinstance(drift_level, (int, float)) and not isinstance(drift_level, bool)
            and drift_level > self.warning_level, f"a number > warning_level={self.warning_level}"))
        self.min_instances = _check_int(self, "min_instances", min_instances, 1)
        self.warnings_at: list[int] = []
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._errors = 0.0
        self._p_min = math.inf
        self._s_min = math.inf
        self.warning = False

    @property
    def error_rate(self) -> float:
        return self._errors / self._n if self._n else 0.0

    def _update(self, value: float) -> bool:
        if value not in (0.0, 1.0):
            from stalwart.errors import InputError

            raise InputError(f"DDM expects a 0/1 error stream (1 = the model was wrong); got {value!r}.")
        self._n += 1
        self._errors += value
        p = self._errors / self._n
        s = math.sqrt(p * (1.0 - p) / self._n)
        if self._n < self.min_instances:
            return False
        if s > 0.0 and p + s <= self._p_min + self._s_min:
            self._p_min, self._s_min = p, s
        if self._s_min == math.inf:  # no minimum yet (no error, or no non-error, so far)
            return False
        if p + s > self._p_min + self.drift_level * self._s_min:
            self._restart()
            return True
        was_warning = self.warning
        self.warning = p + s > self._p_min + self.warning_level * self._s_min
        if self.warning and not was_warning:
            self.warnings_at.append(self.n_seen)
        return False

    def __repr__(self) -> str:
        return (f"DDM(warning_level={self.warning_level}, drift_level={self.drift_level}, "
                f"min_instances={self.min_instances})")


# -- KSWIN -----------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _ks_equal_n_table(n: int) -> np.ndarray:
    """``table[k] = P(D >= k / n)`` for the two-sample KS statistic with two samples of size n.

    Closed form of Gnedenko & Korolyuk (1951) for equal sizes (continuous data, no ties):
    ``P(D >= k/n) = 2 / C(2n, n) * sum_{j>=1} (-1)**(j+1) C(2n, n - j k)``. Exact integer
    arithmetic, so no cancellation.
    """
    total = math.comb(2 * n, n)
    table = np.ones(n + 1)
    for k in range(1, n + 1):
        acc = sum((-1) ** (j + 1) * math.comb(2 * n, n - j * k) for j in range(1, n // k + 1))
        table[k] = min(1.0, 2 * acc / total)
    return table


def ks_two_sample_pvalue(statistic: float, n: int) -> float:
    """Exact two-sided p-value of a two-sample KS statistic for two samples of size ``n``.

    Examples
    --------
    >>> round(ks_two_sample_pvalue(0.5, 10), 4)
    0.1678
    """
    n = _check_int("ks_two_sample_pvalue", "n", n, 1)
    k = int(math.ceil(round(float(statistic) * n, 9)))
    return float(_ks_equal_n_table(n)[min(max(k, 0), n)])


@register
class KSWIN(StreamDetector):
    """Kolmogorov-Smirnov WINdowing (Raab, Heusinger & Schleif, 2020).

    Keeps the last ``window_size`` values. When the window is full, the last ``stat_size``
    values R are compared by a two-sample KS test with ``stat_size`` values drawn uniformly
    without replacement from the older part of the window; a p-value below ``alpha`` signals a
    change and the window shrinks to R. The p-value is exact for equal sample sizes (see
    :func:`ks_two_sample_pvalue`), so the per-test false-alarm rate is at most ``alpha``; with a
    test at every value, expect about ``alpha`` false alarms per value on a stationary stream
    (fewer in practice: consecutive tests share data).

    Parameters
    ----------
    alpha : float, default 0.005
        Per-test significance level.
    window_size : int, default 100
    stat_size : int, default 30
        Must be less than half of ``window_size``.
    seed : int or numpy.random.Generator, default 0
        Seed of the sampling of the older window.
    """

    name: ClassVar[str] = "kswin"

    def __init__(self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30, *,
                 seed: int | np.random.Generator = 0) -> None:
        super().__init__()
        self.alpha = _check_unit(self, "alpha", alpha)
        self.window_size = _check_int(self, "window_size", window_size, 4)
        self.stat_size = int(check_param(
            self, "stat_size", stat_size,
            isinstance(stat_size, (int, np.integer)) and not isinstance(stat_size, bool)
            and 1 <= stat_size and 2 * stat_size <= self.window_size,
            f"an integer in [1, window_size / 2 = {self.window_size // 2}]"))
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._window = np.empty(self.window_size)
        self._len = 0
        # smallest KS statistic, in units of 1/stat_size, whose exact p-value is below alpha
        table = _ks_equal_n_table(self.stat_size)
        below = np.flatnonzero(table < self.alpha)
        self._k_crit = int(below[0]) if below.size else self.stat_size + 1
        self.p_value: float | None = None
        self.statistic: float | None = None

    def _update(self, value: float) -> bool:
        _check_finite(self, value)
        if self._len == self.window_size:
            self._window[:-1] = self._window[1:]
            self._window[-1] = value
        else:
            self._window[self._len] = value
            self._len += 1
        if self._len < self.window_size:
            return False
        r = self.stat_size
        recent = np.sort(self._window[-r:])
        older = np.sort(self._rng.choice(self._window[:-r], size=r, replace=False))
        grid = np.concatenate([recent, older])
        cdf_r = np.searchsorted(recent, grid, side="right")
        cdf_o = np.searchsorted(older, grid, side="right")
        k = int(np.abs(cdf_r - cdf_o).max())
        self.statistic = k / r
        self.p_value = float(_ks_equal_n_table(r)[k])
        if k >= self._k_crit:
            self._window[:r] = self._window[-r:].copy()
            self._len = r
            return True
        return False

    def __repr__(self) -> str:
        return (f"KSWIN(alpha={self.alpha}, window_size={self.window_size}, stat_size={self.stat_size}, "
                f"seed={self.seed!r})")
