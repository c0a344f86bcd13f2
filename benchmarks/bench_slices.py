"""Weak-slice discovery on planted data: stalwart beside SliceLine and Deepchecks' weak segments.

    python benchmarks/bench_slices.py             # writes the "Weak-slice discovery" section
    python benchmarks/bench_slices.py --no-write  # prints it
    python benchmarks/bench_slices.py --rows 200000 --no-write

Data: :func:`stalwart.datasets.make_planted_slices` (20 columns: 15 numeric, 5 categorical; 5
planted slices of 0.9-4% support with error rates 15-30% against 5% elsewhere; numeric
boundaries between any quantile cuts). A planted slice counts as recovered when a reported
slice covers it with Jaccard >= 0.5; a reported slice is a false discovery when its Jaccard with
every planted slice is below 0.5. The peers run in .venv-slices (see requirements-slices.txt)
on the same rows, saved to a temporary file; their times cover their own call only. SliceLine
is run up to 200,000 rows (its memory grows ~85 KB per row: 1M rows would need ~85 GB).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stalwart.datasets import make_planted_slices  # noqa: E402
from stalwart.groups import find_slices  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = ROOT / ".venv-slices" / "bin" / "python"
SLICELINE_MAX_ROWS = 200_000


def score(masks: list[np.ndarray], planted) -> tuple[float, int]:
    """(recall of the planted slices, number of false discoveries among the reported slices)."""
    def jac(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    recall = float(np.mean([any(jac(m, t) >= 0.5 for m in masks) for t in planted.masks]))
    false = sum(all(jac(m, t) < 0.5 for t in planted.masks) for m in masks)
    return recall, int(false)


def run_stalwart(p, n_boot: int) -> list:
    start = time.perf_counter()
    res = find_slices(p.x, p.error, n_boot=n_boot, seed=0)
    seconds = time.perf_counter() - start
    masks = [s.mask(p.x) for s in res.slices]
    recall, false = score(masks, p)
    note = f"{res.n_examined:,} slices examined, BH alpha 0.05; min support {res.min_support} rows"
    if n_boot:
        note += f"; stability {min(s.stability for s in res.slices):.2f}-{max(s.stability for s in res.slices):.2f}" \
            if res.slices else ""
    return ["stalwart find_slices", f"{len(p.x):,}", f"defaults, {n_boot} bootstrap resamples", len(masks), recall,
            false, seconds, note]


PEER_NOTES = {
    "sliceline": "a condition is one bin or value (no ranges), so a threshold slice comes back as several bin "
                 "slices; top-k by score, no test or merging (sliceline 0.3.0 with exact candidate ids: its own "
                 "float ids collide on 20 columns)",
    "deepchecks": "searches pairs among its 10 'top' features (without a model's feature importance: the first "
                  "columns) on a 10,000-row sample; one segment per pair, ranked by accuracy, no test",
}


def run_peer(p, peer: str, setting: str, args: list[str], tmp: Path) -> list:
    frame, result = tmp / "frame.npz", tmp / f"{peer}.npz"
    if not frame.exists() or np.load(frame)["errors"].shape[0] != len(p.x):
        num = [c for c in p.x.columns if p.x[c].dtype.kind == "f"]
        cat = [c for c in p.x.columns if c not in num]
        y_true = np.zeros(len(p.x), dtype=np.int64)
        np.savez(frame, num=p.x[num].to_numpy(), num_names=np.array(num), cat=p.x[cat].to_numpy(dtype=str),
                 cat_names=np.array(cat), errors=p.error.astype(float), y_true=y_true, y_pred=p.error.astype(np.int64))
    done = subprocess.run([str(PEERS_PYTHON), str(ROOT / "benchmarks" / "slice_peers.py"), "--frame", str(frame),
                           "--result", str(result), "--peers", peer, *args], capture_output=True, text=True)
    if done.returncode != 0:
        return [peer, f"{len(p.x):,}", setting, "–", "–", "–", "–", f"failed: {done.stderr.strip().splitlines()[-1]}"]
    out = np.load(result)
    masks = list(out["masks"])
    recall, false = score(masks, p)
    return [peer, f"{len(p.x):,}", setting, len(masks), recall, false, float(out["seconds"]), PEER_NOTES[peer]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for n in sorted({min(100_000, args.rows), min(SLICELINE_MAX_ROWS, args.rows), args.rows}):
            p = make_planted_slices(n, 20, seed=0)
            rows.append(run_stalwart(p, 20))
            print(rows[-1], flush=True)
            if n <= SLICELINE_MAX_ROWS and PEERS_PYTHON.exists():
                rows.append(run_peer(p, "sliceline", "top 10, 16 quantile bins, alpha 0.95, min support 0.5%",
                                     ["--min-support", str(n // 200)], tmp))
                print(rows[-1], flush=True)
            if n == args.rows and PEERS_PYTHON.exists():
                rows.append(run_peer(p, "deepchecks", "defaults (10k-row sample, segments >= 5%)", [], tmp))
                print(rows[-1], flush=True)
                rows.append(run_peer(p, "deepchecks", "segments >= 0.5% (matched)", ["--segment-ratio", "0.005"], tmp))
                print(rows[-1], flush=True)
            (tmp / "frame.npz").unlink(missing_ok=True)
    header = ["tool", "rows", "setting", "slices reported", "recall (5 planted)", "false discoveries", "seconds",
              "notes"]
    body = (f"Machine: {machine()}. Command: `python benchmarks/bench_slices.py` (peers from .venv-slices).\n\n"
            "Planted data from `stalwart.datasets.make_planted_slices(n, 20, seed=0)`: 5 weak slices (0.9-4% of "
            "rows, error 15-30% against 5%). Recovered: a reported slice with Jaccard >= 0.5 to the planted "
            "one; a false discovery: a reported slice with Jaccard < 0.5 to every planted one. Target: recall "
            ">= 0.9 and false discoveries <= 5% of reported slices, in <= 60 s at 1M rows on 2 cores.\n\n"
            + markdown_table(header, rows))
    print(body)
    if not args.no_write:
        write_section("Weak-slice discovery", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
