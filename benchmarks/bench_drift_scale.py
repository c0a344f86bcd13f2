"""Drift on N rows x 25 columns of partitioned Parquet, from mergeable summaries on an executor.

Generates a reference and a current data set on disk (12 float columns, 6 integer columns, 7
text columns; 5 columns of the current data set drift on purpose), runs
``detect_drift_partitioned`` on the process (or Ray, or local) executor and reports the wall
time, the peak resident memory of the driver and of a worker, and whether exactly the planted
columns were flagged. Up to ``--compare-max`` rows (default 2M) it also loads both tables and runs
the exact in-memory test, and reports, per statistic, the largest difference between the sketch
and the exact value next to the error the sketch reported (Wasserstein under ``auto``, and KS).

    .venv/bin/python benchmarks/bench_drift_scale.py                      # 1M rows, process executor
    .venv/bin/python benchmarks/bench_drift_scale.py --rows 10000000
    .venv/bin/python benchmarks/bench_drift_scale.py --rows 100000000 --tests auto     # about 14 GB on disk

Each run is recorded in benchmarks/drift_scale_results.json (by rows and executor) and the
section "Drift at scale: partitioned Parquet from mergeable summaries" of docs/benchmarks.md
lists every recorded run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, versions, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "drift_scale_results.json"
TITLE = "Drift at scale: partitioned Parquet from mergeable summaries"
FLOATS = [f"num_{i:02d}" for i in range(12)]
INTS = [f"int_{i:02d}" for i in range(6)]
TEXTS = [f"cat_{i:02d}" for i in range(7)]
#: the columns that drift in the current data set, and how
PLANTED = {"num_03": "mean + 0.2 sd", "num_07": "sd x 1.3", "int_02": "Poisson mean 4 -> 4.6",
           "cat_01": "category shares change", "cat_05": "a new category takes 20%"}
_LEVELS = np.array(["alpha", "beta", "gamma", "delta"])
_CHUNK = 500_000


def _chunk(rng: np.random.Generator, n: int, current: bool):
    import pyarrow as pa

    cols = {}
    for i, name in enumerate(FLOATS):
        mu = 0.2 if current and name == "num_03" else 0.0
        sd = 1.3 if current and name == "num_07" else 1.0
        if i % 3 == 0:
            x = rng.normal(mu, sd, n)
        elif i % 3 == 1:
            x = 50.0 + 10.0 * rng.standard_normal(n) * sd + 10 * mu  # an offset, like a temperature
        else:
            x = rng.lognormal(mu, 0.5 * sd, n)
        cols[name] = pa.array(x.astype(np.float32))
    for name in INTS:
        lam = 4.6 if current and name == "int_02" else 4.0
        cols[name] = pa.array(rng.poisson(lam, n).astype(np.int32))
    for name in TEXTS:
        p = np.array([0.4, 0.3, 0.2, 0.1])
        if current and name == "cat_01":
            p = np.array([0.2, 0.3, 0.2, 0.3])
        idx = rng.choice(4, n, p=p)
        values = _LEVELS[idx].astype(object)
        if current and name == "cat_05":
            values[rng.random(n) < 0.2] = "epsilon"
        cols[name] = pa.array(values, type=pa.string()).dictionary_encode()
    return pa.table(cols)


def generate(root: Path, rows: int, files: int, row_group: int, seed: int = 0) -> dict[str, float]:
    """Write reference/ and current/ (``files`` Parquet files each); returns the sizes in GB."""
    import pyarrow.parquet as pq

    sizes = {}
    for side in ("reference", "current"):
        d = root / side
        d.mkdir(parents=True, exist_ok=True)
        per_file = np.diff(np.linspace(0, rows, files + 1).astype(np.int64))
        for k, n_file in enumerate(per_file):
            rng = np.random.default_rng([seed, side == "current", k])
            writer = None
            for start in range(0, int(n_file), _CHUNK):
                table = _chunk(rng, min(_CHUNK, int(n_file) - start), side == "current")
                if writer is None:
                    writer = pq.ParquetWriter(d / f"part-{k:04d}.parquet", table.schema, compression="zstd")
                writer.write_table(table, row_group_size=row_group)
            writer.close()
        sizes[side] = sum(f.stat().st_size for f in d.iterdir()) / 1e9
    return sizes


def _self_rss_mb() -> float:
    from stalwart.shift.partitioned import peak_rss_mb

    return peak_rss_mb()


def compare_with_memory(root: Path, results: dict) -> list[list]:
    """Exact in-memory statistics vs the sketch's, per test: largest difference and largest reported error."""
    import pandas as pd

    from stalwart.shift import detect_drift

    ref = pd.read_parquet(root / "reference")
    cur = pd.read_parquet(root / "current")
    rows = []
    for label, res in results.items():
        method = res.details["method_arg"]
        want = {f.feature: f for f in detect_drift(ref, cur, method=method).features}
        by_test: dict[str, list] = {}
        for f in res.features:
            a = res.details["approximation"].get(f.feature)
            if a is None:
                continue
            w = want[f.feature]
            diff = abs(f.statistic - w.statistic)
            err = 0.0 if a["statistic"] is None else a["statistic"][1] - a["statistic"][0]
            inside = a["statistic"] is not None and a["statistic"][0] - 1e-12 <= w.statistic <= a["statistic"][1] + 1e-12
            b = by_test.setdefault(f.test, [0.0, 0.0, True, 0, f.drifted == w.drifted])
            b[0], b[1], b[2], b[3] = max(b[0], diff), max(b[1], err), b[2] and inside, b[3] + 1
            b[4] = b[4] and f.drifted == w.drifted
        for test, (diff, err, inside, n, same) in sorted(by_test.items()):
            rows.append([label, test, n, f"{diff:.2e}", f"{err:.2e}", "yes" if inside else "NO",
                         "yes" if same else "NO"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of each data set")
    ap.add_argument("--files", type=int, default=None, help="Parquet files per data set (default: 1 per 2M rows, >= 4)")
    ap.add_argument("--row-group", type=int, default=250_000)
    ap.add_argument("--executor", default="process", choices=["local", "process", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="where the data go (default /tmp/stalwart-drift-<rows>)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data (reused by the next run)")
    ap.add_argument("--compare-max", type=int, default=2_000_000,
                    help="compare with the exact in-memory test up to this many rows")
    ap.add_argument("--tests", default="both", choices=["auto", "ks", "both"],
                    help="auto (Wasserstein / Jensen-Shannon), ks on the numeric columns, or both runs")
    ap.add_argument("--no-doc", action="store_true", help="do not record the run in docs/benchmarks.md")
    args = ap.parse_args()

    from stalwart.execute import get_executor
    from stalwart.shift import detect_drift_partitioned

    files = args.files or max(4, args.rows // 2_000_000)
    root = args.dir or Path(f"/tmp/stalwart-drift-{args.rows}")
    reuse = (root / "current").is_dir()
    t0 = time.perf_counter()
    if reuse:
        sizes = {s: sum(f.stat().st_size for f in (root / s).iterdir()) / 1e9 for s in ("reference", "current")}
    else:
        sizes = generate(root, args.rows, files, args.row_group)
    gen_s = time.perf_counter() - t0
    print(f"data: {args.rows:,} rows x 25 columns per side, {files} files each, "
          f"{sizes['reference'] + sizes['current']:.2f} GB on disk ({'reused' if reuse else f'written in {gen_s:.0f} s'})")

    opts = {"workers": args.workers} if args.executor == "process" else (
        {"num_cpus": args.workers} if args.executor == "ray" else {})
    results = {}
    with get_executor(args.executor, **opts) as ex:
        t0 = time.perf_counter()
        if args.executor == "ray":
            ex.start()
        start_s = time.perf_counter() - t0
        methods = {"auto": "auto", "ks": {c: "ks" for c in FLOATS + INTS}}
        if args.tests != "both":
            methods = {args.tests: methods[args.tests]}
        for label, method in methods.items():
            t0 = time.perf_counter()
            res = detect_drift_partitioned(root / "reference", root / "current", method=method, executor=ex)
            wall = time.perf_counter() - t0
            res.details["method_arg"] = method
            results[label] = res
            flagged = sorted(res.drifted_features)
            exact = flagged == sorted(PLANTED)
            sk = res.details["sketch"]
            print(f"{label}: {wall:.1f} s ({2 * args.rows / wall / 1e6:.2f} M rows/s), {sk['tasks']} tasks, "
                  f"worker peak RSS {sk['worker_peak_rss_mb']:.0f} MB, driver {_self_rss_mb():.0f} MB; flagged "
                  f"{flagged} -> {'exactly the planted columns' if exact else 'NOT the planted columns'}; "
                  f"largest interval {res.details['max_error']['statistic']:.2e}")
            res.details["wall_s"] = wall
    record = {
        "rows": args.rows, "files": files, "gb": round(sizes["reference"] + sizes["current"], 2),
        "executor": args.executor, "workers": args.workers, "start_s": round(start_s, 2),
        "runs": {k: {"wall_s": round(r.details["wall_s"], 2), "tasks": r.details["sketch"]["tasks"],
                     "worker_peak_mb": round(r.details["sketch"]["worker_peak_rss_mb"]),
                     "flagged": sorted(r.drifted_features),
                     "exactly_planted": sorted(r.drifted_features) == sorted(PLANTED),
                     "max_interval": r.details["max_error"]["statistic"]} for k, r in results.items()},
        "driver_peak_mb": round(_self_rss_mb()), "machine": machine(), "date": time.strftime("%Y-%m-%d"),
        "load_avg": round(os.getloadavg()[0], 1),
    }
    if args.rows <= args.compare_max:
        record["comparison"] = compare_with_memory(root, results)
        print(markdown_table(["run", "test", "columns", "max |sketch - exact|", "max reported interval",
                              "exact inside interval", "same decision"], record["comparison"]))
    if not args.keep:
        shutil.rmtree(root / "reference", ignore_errors=True)
        shutil.rmtree(root / "current", ignore_errors=True)
    if not args.no_doc:
        _record(record)


def _record(record: dict) -> None:
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs[f"{record['rows']}-{record['executor']}"] = record
    RESULTS.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    table = []
    for r in sorted(runs.values(), key=lambda r: (r["rows"], r["executor"])):
        for label, run in r["runs"].items():
            table.append([f"{r['rows']:,}", r["files"], r["gb"], f"{r['executor']} x{r['workers']}",
                          r["start_s"] if r["executor"] == "ray" else "in wall s", label,
                          run["wall_s"], f"{2 * r['rows'] / run['wall_s'] / 1e6:.2f}", run["tasks"],
                          run["worker_peak_mb"], r["driver_peak_mb"],
                          "yes" if run["exactly_planted"] else f"NO: {run['flagged']}", f"{run['max_interval']:.1e}",
                          r.get("load_avg", "?")])
    body = [
        "`benchmarks/bench_drift_scale.py --rows N --executor process|ray`: a reference and a current data set of "
        "N rows x 25 columns each (12 float32, 6 int32, 7 dictionary-encoded text; zstd Parquet, row groups of "
        "250k rows), 5 columns planted to drift in the current one "
        f"({'; '.join(f'{k}: {v}' for k, v in PLANTED.items())}). `detect_drift_partitioned` summarises each "
        "group of row groups in a task (bucket sketches of the numbers, counts of the rest) and tests from the "
        "merged summaries. `auto` picks Wasserstein / Jensen-Shannon (reference over 1,000 rows), `ks` tests "
        "the 18 numeric columns with KS. Time excludes generating the data; peak memory is the resident set "
        "(VmHWM) of the driver and of the largest worker; `start s` is starting Ray, not counted in the wall time "
        "(the process pool starts inside each run). Rows/s counts both data sets.",
        "",
        markdown_table(["rows per side", "files per side", "GB on disk", "executor", "start s", "tests", "wall s",
                        "M rows/s", "tasks", "worker peak MB", "driver peak MB", "flags exactly the planted 5",
                        "largest reported interval", "load avg (2 cores)"], table),
    ]
    compared = [r for r in runs.values() if "comparison" in r]
    for r in compared:
        body += ["", f"Against the exact in-memory test at {r['rows']:,} rows, {r['executor']} executor "
                     "(`detect_drift` on both tables "
                     "loaded whole); the interval is the one the sketch reports, which must hold the exact value:",
                 "", markdown_table(["run", "test", "columns", "max abs(sketch - exact)", "max reported interval",
                                     "exact inside interval", "same decision"], r["comparison"])]
    body += ["", f"Machine: {machine()}; {versions('pyarrow')}; {os.cpu_count()} cores shared with other jobs."]
    write_section(TITLE, "\n".join(body))


if __name__ == "__main__":
    main()
