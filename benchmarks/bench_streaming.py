"""Streaming detectors: stalwart's ADWIN and DDM beside river's (cost per value, alarms, delays).

    python benchmarks/bench_streaming.py             # writes the "Streaming detectors" section
    python benchmarks/bench_streaming.py --no-write  # prints it
    python benchmarks/bench_streaming.py --n 50000 --seeds 10 --no-write   # a quick look

- ADWIN cost: one stream of ``--n`` values, N(0, 1) with a one-sd mean shift every 50,000 values
  (so cuts, restarts and a window of up to 50,000 values are all paid for). Microseconds per
  value for stalwart ``update`` once a value, ``update_many`` on the whole array and on batches
  of 100 and of 1,000 (the monitoring service feeds each window's rows in one call; 1,000 rows is
  its default window), and river's ``drift.ADWIN().update`` once a value. Best of three runs each.
- ADWIN alarms: ``--seeds`` streams of 1,000 N(0, 1) values then 1,000 N(1, 1): streams whose
  detection indices are identical to river's, mean alarms per stream (one change), and the
  first alarm's delay after the change.
- DDM: alarms on 1,000 zeros (a model that makes no mistakes), and on ``--seeds`` error streams
  whose rate jumps from 0.05 to 0.4 at index 1,000: false alarms before the jump and the delay.

river is a peer in ``.venv-bench`` (benchmarks/requirements.txt); without it the river columns
read "n/a".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stalwart.shift.streaming import ADWIN, DDM  # noqa: E402

try:
    from river import drift as river_drift
except ImportError:  # river is a benchmark peer only
    river_drift = None


def best_of(fn: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def river_hits(detector: Any, values: list[float]) -> list[int]:
    hits = []
    for i, v in enumerate(values):
        detector.update(v)
        if detector.drift_detected:
            hits.append(i)
    return hits


def adwin_cost(n: int) -> list[list[Any]]:
    rng = np.random.default_rng(0)
    stream = rng.normal(0.0, 1.0, n) + (np.arange(n) // 50_000) % 2
    values = stream.tolist()

    def per_value() -> None:
        det = ADWIN()
        for v in values:
            det.update(v)

    def batches(size: int) -> Any:
        def run() -> None:
            det = ADWIN()
            for i in range(0, n, size):
                det.update_many(stream[i:i + size])
        return run

    rows = [["stalwart ADWIN.update, one value a call", best_of(per_value)],
            ["stalwart ADWIN.update_many, whole stream", best_of(lambda: ADWIN().update_many(stream))],
            ["stalwart ADWIN.update_many, batches of 100", best_of(batches(100))],
            ["stalwart ADWIN.update_many, batches of 1,000 (a service window at its default size)",
             best_of(batches(1000))]]
    if river_drift is not None:
        def river() -> None:
            det = river_drift.ADWIN()
            for v in values:
                det.update(v)
        rows.append(["river drift.ADWIN.update, one value a call", best_of(river)])
    else:
        rows.append(["river drift.ADWIN.update, one value a call", float("nan")])
    return [[name, seconds / n * 1e6] for name, seconds in rows]


def adwin_alarms(seeds: int) -> list[list[Any]]:
    same, ours, theirs, d_ours, d_theirs = 0, [], [], [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1, 1, 1000)])
        hits = ADWIN().run(stream)
        ours.append(len(hits))
        d_ours.append(next((h - 1000 for h in hits if h >= 1000), np.nan))
        if river_drift is not None:
            peer = river_hits(river_drift.ADWIN(), stream.tolist())
            same += hits == peer
            theirs.append(len(peer))
            d_theirs.append(next((h - 1000 for h in peer if h >= 1000), np.nan))
    na = "n/a"
    return [["alarms per stream (one change)", float(np.mean(ours)), float(np.mean(theirs)) if theirs else na],
            ["median delay of the first alarm", float(np.nanmedian(d_ours)),
             float(np.nanmedian(d_theirs)) if d_theirs else na],
            ["streams with identical detection indices", f"{same} of {seeds}" if theirs else na, ""]]


def ddm_rows(seeds: int) -> list[list[Any]]:
    zeros = np.zeros(1000)
    ours_zero = len(DDM().run(zeros))
    theirs_zero = len(river_hits(river_drift.binary.DDM(), zeros.tolist())) if river_drift is not None else "n/a"
    false_ours, false_theirs, d_ours, d_theirs = [], [], [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        stream = np.concatenate([rng.random(1000) < 0.05, rng.random(1000) < 0.4]).astype(float)
        for hits, false, delay in [(DDM().run(stream), false_ours, d_ours)] + (
                [(river_hits(river_drift.binary.DDM(), stream.tolist()), false_theirs, d_theirs)]
                if river_drift is not None else []):
            false.append(sum(h < 1000 for h in hits))
            delay.append(next((h - 1000 for h in hits if h >= 1000), np.nan))
    na = "n/a"
    return [["alarms on 1,000 zeros", ours_zero, theirs_zero],
            ["false alarms per stream before the jump", float(np.mean(false_ours)),
             float(np.mean(false_theirs)) if false_theirs else na],
            ["median delay after the jump", float(np.nanmedian(d_ours)),
             float(np.nanmedian(d_theirs)) if d_theirs else na]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="values in the ADWIN cost stream")
    ap.add_argument("--seeds", type=int, default=30, help="seeded streams for alarms and delays")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import stalwart

    peer = f"river {__import__('river').__version__}" if river_drift is not None else "river not installed"
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=streaming` (= `.venv-bench/bin/python benchmarks/bench_streaming.py`; "
        f"machine: {machine()}; stalwart {stalwart.__version__}, {peer}).",
        f"ADWIN, microseconds per value on {args.n:,} values (a one-sd mean shift every 50,000; best of 3):",
        markdown_table(["how", "us / value"], adwin_cost(args.n)),
        f"ADWIN alarms, {args.seeds} streams of 1,000 N(0, 1) then 1,000 N(1, 1) values, default settings:",
        markdown_table(["", "stalwart", "river"], adwin_alarms(args.seeds)),
        f"DDM, default settings; {args.seeds} error streams whose rate jumps from 0.05 to 0.4 at index 1,000:",
        markdown_table(["", "stalwart", "river"], ddm_rows(args.seeds)),
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Streaming detectors", body)


if __name__ == "__main__":
    main()
