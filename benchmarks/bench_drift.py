"""Per-column drift against Evidently and a plain SciPy loop; MMD against alibi-detect.

Tables: 20 numeric + 5 categorical columns, reference and current of the same size (10k, 100k,
1M rows), with a known shift in 5 columns -- three numeric (a mean shift of 0.3 sd, a scale
change x1.5, a mean shift of 0.3 sd on an exponential column) and two categorical (a changed mix
and a new category in 10% of rows). Every tool gets the same DataFrames (read from Parquet before
the clock starts) and its default settings:

- stalwart ``shift.detect_drift(ref, cur)`` (Evidently's test choice, Bonferroni correction);
  and ``shift.detect_drift_parquet`` on the files (streamed; includes reading them);
- Evidently ``Report(metrics=[DataDriftPreset()]).run(ref, cur)``;
- a SciPy loop: ``ks_2samp`` / ``chi2_contingency`` per column, Bonferroni over the 25.

MMD: 2,000 x 20 reference vs current (mean shift 0.2 in 5 dimensions), RBF kernel with the
median bandwidth, 100 permutations: stalwart ``MMDDrift`` vs alibi-detect ``MMDDrift``
(PyTorch backend, CPU). alibi-detect pins an older numpy, so it runs from its own environment
(``--alibi-python``); it is BSL-licensed and used here only as a peer to time.

Each tool runs in its own subprocess; wall time covers the call only, and peak memory is the
rise of the process's resident set during the call (the kernel's high-water mark, reset just
before the call through ``/proc/self/clear_refs``).

    make bench BENCHMARKS=drift       # .venv-bench for Evidently, .venv-alibi for alibi-detect
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHIFTED = ["num_00", "num_01", "num_02", "cat_0", "cat_1"]
N_NUM, N_CAT = 20, 5
SIZES = (10_000, 100_000, 1_000_000)
ALPHA = 0.05


# -- data ------------------------------------------------------------------------------------------
def make_table(n: int, shift: bool, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {}
    for j in range(N_NUM):
        kind = j % 4
        if kind == 0:
            x = rng.normal(size=n)
        elif kind == 1:
            x = rng.normal(2.0, 3.0, size=n)
        elif kind == 2:
            x = rng.exponential(size=n)
        else:
            x = rng.uniform(-1, 1, size=n)
        cols[f"num_{j:02d}"] = x
    if shift:
        cols["num_00"] = cols["num_00"] + 0.3  # sd 1
        cols["num_01"] = 2.0 + (cols["num_01"] - 2.0) * 1.5
        cols["num_02"] = cols["num_02"] + 0.3  # exponential(1): sd 1
    letters = np.array(list("abcd"))
    for j in range(N_CAT):
        p = [0.4, 0.3, 0.2, 0.1]
        if shift and j == 0:
            p = [0.2, 0.3, 0.2, 0.3]
        c = letters[rng.choice(4, size=n, p=p)].astype(object)
        if shift and j == 1:
            c[rng.random(n) < 0.1] = "new"
        cols[f"cat_{j}"] = c
    return pd.DataFrame(cols)


def write_data(root: Path, n: int) -> tuple[Path, Path]:
    ref, cur = root / f"ref_{n}.parquet", root / f"cur_{n}.parquet"
    if not ref.exists():
        make_table(n, False, 1).to_parquet(ref, index=False)
        make_table(n, True, 2).to_parquet(cur, index=False)
    return ref, cur


# -- workers (each in its own process) -------------------------------------------------------------
def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(fn):
    """(result, seconds, peak RSS rise in MiB) of one call."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    except OSError:
        pass
    before = _rss_mib("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, max(_rss_mib("VmHWM") - before, 0.0)


def _evidently_flagged(snapshot) -> list[str]:
    flagged = []
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        if not cfg["type"].endswith("ValueDrift"):
            continue
        uses_p = "p_value" in cfg["method"]
        value = m["value"]
        if (value < cfg["threshold"]) if uses_p else (value >= cfg["threshold"]):
            flagged.append(cfg["column"])
    return flagged


def _scipy_loop(ref, cur) -> list[str]:
    from scipy import stats  # imported by the worker before the clock starts

    p_values = {}
    for col in ref.columns:
        if ref[col].dtype.kind in "fi":
            p_values[col] = stats.ks_2samp(ref[col].to_numpy(), cur[col].to_numpy()).pvalue
        else:
            cats = sorted(set(ref[col].unique()) | set(cur[col].unique()))
            table = np.array([ref[col].value_counts().reindex(cats, fill_value=0).to_numpy(),
                              cur[col].value_counts().reindex(cats, fill_value=0).to_numpy()])
            p_values[col] = stats.chi2_contingency(table, correction=False).pvalue
    cutoff = ALPHA / len(p_values)
    return [c for c, p in p_values.items() if p <= cutoff]


def worker(tool: str, ref_path: str, cur_path: str) -> dict:
    if tool in ("stalwart_mmd", "alibi_mmd"):
        return mmd_worker(tool, ref_path, cur_path)
    import pandas as pd

    if tool == "stalwart_parquet":
        from stalwart.shift import detect_drift_parquet

        res, sec, mib = _measure(lambda: detect_drift_parquet(ref_path, cur_path))
        return {"time_s": sec, "peak_mib": mib, "flagged": res.drifted_features}
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    if tool == "stalwart":
        from stalwart.shift import detect_drift

        res, sec, mib = _measure(lambda: detect_drift(ref, cur))
        return {"time_s": sec, "peak_mib": mib, "flagged": res.drifted_features}
    if tool == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        snap, sec, mib = _measure(lambda: Report(metrics=[DataDriftPreset()]).run(reference_data=ref,
                                                                                   current_data=cur))
        return {"time_s": sec, "peak_mib": mib, "flagged": _evidently_flagged(snap)}
    if tool == "scipy":
        import scipy.stats  # noqa: F401 - import outside the timed call, as for the other tools

        flagged, sec, mib = _measure(lambda: _scipy_loop(ref, cur))
        return {"time_s": sec, "peak_mib": mib, "flagged": flagged}
    raise SystemExit(f"unknown tool {tool!r}")


def mmd_worker(tool: str, ref_path: str, cur_path: str, repeats: int = 3) -> dict:
    x, y = np.load(ref_path), np.load(cur_path)
    if tool == "stalwart_mmd":
        from stalwart.shift import MMDDrift

        def run():
            r = MMDDrift(n_permutations=100, seed=0).fit(x).test(y)
            return r.p_value
    else:
        import logging

        logging.disable(logging.WARNING)
        from alibi_detect.cd import MMDDrift as AlibiMMD

        def run():
            det = AlibiMMD(x, backend="pytorch", p_val=ALPHA, n_permutations=100, device="cpu")
            return float(det.predict(y)["data"]["p_val"])
    times, mibs, p = [], [], None
    for _ in range(repeats):
        p, sec, mib = _measure(run)
        times.append(sec)
        mibs.append(mib)
    return {"time_s": min(times), "peak_mib": max(mibs), "p_value": p, "times": times}


# -- orchestration ---------------------------------------------------------------------------------
def run_tool(python: str, tool: str, ref: Path, cur: Path, timeout: float) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", tool, str(ref), str(cur)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _verdict(flagged: list[str]) -> tuple[int, int, str]:
    fp = sorted(set(flagged) - set(SHIFTED))
    fn = sorted(set(SHIFTED) - set(flagged))
    ok = "exact" if not fp and not fn else f"FP {fp} FN {fn}"
    return len(fp), len(fn), ok


def _versions(python: str, modules: list[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; out = {}\n"
            "for d in sys.argv[1:]:\n"
            "    try: out[d] = m.version(d)\n"
            "    except Exception: out[d] = 'n/a'\n"
            "print(json.dumps(out))")
    proc = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=3, metavar=("TOOL", "REF", "CUR"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    alibi = Path(__file__).resolve().parents[1] / ".venv-alibi" / "bin" / "python"
    ap.add_argument("--alibi-python", default=str(alibi) if alibi.exists() else None,
                    help="Python of an environment with alibi-detect (default: .venv-alibi, made by make bench).")
    ap.add_argument("--evidently-timeout", type=float, default=1800.0)
    ap.add_argument("--data-dir", default=None, help="Where to keep the generated Parquet files.")
    ap.add_argument("--no-write", action="store_true", help="Print the section instead of writing it.")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0

    sys.path.insert(0, str(HERE))
    from _common import machine, markdown_table, write_section

    load_start = os.getloadavg()
    root = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-drift-"))
    root.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    rows, results = [], {}
    for n in args.sizes:
        ref, cur = write_data(root, n)
        for tool in ("stalwart", "stalwart_parquet", "scipy", "evidently"):
            timeout = args.evidently_timeout if tool == "evidently" else 1800.0
            r = run_tool(py, tool, ref, cur, timeout)
            results[(n, tool)] = r
            print(n, tool, r, flush=True)

    tool_names = {"stalwart": "stalwart `detect_drift`", "stalwart_parquet": "stalwart `detect_drift_parquet`",
                  "scipy": "SciPy loop", "evidently": "Evidently `DataDriftPreset`"}
    for n in args.sizes:
        base = results[(n, "stalwart")]
        for tool in ("stalwart", "stalwart_parquet", "scipy", "evidently"):
            r = results[(n, tool)]
            if "error" in r:
                rows.append([f"{n:,}", tool_names[tool], "–", "–", "–", "–", r["error"]])
                continue
            speed = r["time_s"] / base["time_s"] if tool != "stalwart" else 1.0
            rows.append([f"{n:,}", tool_names[tool], round(r["time_s"], 3), round(r["peak_mib"], 1),
                         f"{speed:.1f}x" if tool != "stalwart" else "1x",
                         len(r["flagged"]), _verdict(r["flagged"])[2]])

    # Evidently at 1M rows: measured, or extrapolated linearly from 100k when it did not finish
    notes = []
    big = max(args.sizes)
    ev_big = results.get((big, "evidently"), {})
    if "error" in ev_big and (big // 10, "evidently") in results and "error" not in results[(big // 10, "evidently")]:
        ev_small = results[(big // 10, "evidently")]
        ev_big = {"time_s": ev_small["time_s"] * 10, "peak_mib": ev_small["peak_mib"] * 10, "extrapolated": True}
        notes.append(f"Evidently at {big:,} rows {results[(big, 'evidently')]['error']}; its figures in the "
                     f"targets below are **extrapolated** linearly (x10) from {big // 10:,} rows.")

    # MMD
    mmd_rows = []
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20)).astype(np.float32)
    y = rng.normal(size=(2000, 20)).astype(np.float32)
    y[:, :5] += 0.2
    np.save(root / "mmd_x.npy", x)
    np.save(root / "mmd_y.npy", y)
    ours = run_tool(py, "stalwart_mmd", root / "mmd_x.npy", root / "mmd_y.npy", 1800)
    print("mmd stalwart", ours, flush=True)
    peer = {"error": "alibi-detect environment not given (--alibi-python)"}
    if args.alibi_python:
        peer = run_tool(args.alibi_python, "alibi_mmd", root / "mmd_x.npy", root / "mmd_y.npy", 1800)
    print("mmd alibi", peer, flush=True)
    for name, r in (("stalwart `MMDDrift`", ours), ("alibi-detect `MMDDrift` (pytorch, CPU)", peer)):
        if "error" in r:
            mmd_rows.append([name, "–", "–", "–", "–", r["error"]])
        else:
            mmd_rows.append([name, round(r["time_s"], 3), round(r["peak_mib"], 1), f"{r['p_value']:.4f}",
                             f"{r['time_s'] / ours['time_s']:.1f}x", "best of 3"])

    # targets
    st = results.get((big, "stalwart"), {})
    sc = results.get((big, "scipy"), {})
    targets = []
    if "error" not in st and "error" not in ev_big:
        ratio = ev_big["time_s"] / st["time_s"]
        targets.append([f"{big:,} rows: >= 20x faster than Evidently", f"{ratio:.1f}x", "met" if ratio >= 20 else
                        "**not met**"])
        mem = st["peak_mib"] / ev_big["peak_mib"] if ev_big["peak_mib"] else float("nan")
        targets.append([f"{big:,} rows: <= 1/3 of Evidently's peak memory", f"{mem:.2f} of it",
                        "met" if mem <= 1 / 3 else "**not met**"])
    if "error" not in st and "error" not in sc:
        ratio = sc["time_s"] / st["time_s"]
        targets.append([f"{big:,} rows: faster than the SciPy loop", f"{ratio:.1f}x", "met" if ratio > 1 else
                        "**not met**"])
    exact = all("error" not in results[(n, "stalwart")] and _verdict(results[(n, "stalwart")]["flagged"])[2] == "exact"
                for n in args.sizes)
    targets.append(["exactly the shifted columns, no false positives (every size)", "yes" if exact else "no",
                    "met" if exact else "**not met**"])
    if "error" not in ours and "error" not in peer:
        ratio = peer["time_s"] / ours["time_s"]
        targets.append(["MMD >= 2x faster than alibi-detect", f"{ratio:.1f}x", "met" if ratio >= 2 else "**not met**"])

    load_end = os.getloadavg()
    vers = _versions(py, ["numpy", "pandas", "scipy", "pyarrow", "evidently", "torch"])
    alibi_vers = _versions(args.alibi_python, ["alibi-detect", "torch", "numpy"]) if args.alibi_python else {}
    body = "\n\n".join([
        "`make bench BENCHMARKS=drift` on "
        f"{machine()}; load average {load_start[0]:.1f} at the start and {load_end[0]:.1f} at the end (the "
        "machine was shared with other test runs, so times are noisy). Versions: "
        + ", ".join(f"{k} {v}" for k, v in vers.items())
        + (("; alibi-detect env: " + ", ".join(f"{k} {v}" for k, v in alibi_vers.items())) if alibi_vers else "")
        + ".",
        "Reference and current tables of 20 numeric + 5 categorical columns with a known shift in 5 of them "
        f"({', '.join(SHIFTED)}: mean +0.3 sd, scale x1.5, mean +0.3 sd on an exponential, a changed category "
        "mix, a new category in 10% of rows). Each tool ran once in its own process on DataFrames read before "
        "the clock started (`detect_drift_parquet` reads the files inside its time); memory is the rise of the "
        "resident set during the call. Above 1,000 rows Evidently and stalwart both use normalised Wasserstein "
        "(>= 0.1) and Jensen-Shannon (>= 0.1); the SciPy loop uses KS / chi-square p-values with Bonferroni.",
        markdown_table(["rows", "tool", "time (s)", "peak MiB", "time vs stalwart", "flagged", "columns"], rows),
        *notes,
        "MMD two-sample test, 2,000 x 20 per sample, mean shift 0.2 in 5 dimensions, RBF kernel with the "
        "median bandwidth, 100 permutations:",
        markdown_table(["tool", "time (s)", "peak MiB", "p-value", "time vs stalwart", "note"], mmd_rows),
        "Targets:",
        markdown_table(["target", "measured", "status"], targets),
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Distribution shift", body)
        print("wrote the 'Distribution shift' section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
