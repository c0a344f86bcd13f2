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

Whole process (what a user waits for): ``stalwart drift REF CUR`` on two Parquet files of 1M and
10M rows (10 numeric + 3 categorical columns, the same kinds of shift in 2 + 2 of them), timed with
``/usr/bin/time -v`` (wall clock, maximum resident set) from start to exit -- imports, reading,
tests, report -- against the same for a plain SciPy loop (pyarrow reads both files, ``ks_2samp`` per
numeric column, ``chi2_contingency`` per categorical one, Bonferroni) and for Evidently
(``pandas.read_parquet`` both, ``DataDriftPreset``; 1M rows only: at 10M it needs tens of GB).

    make bench BENCHMARKS=drift       # .venv-bench for Evidently, .venv-alibi for alibi-detect
    python benchmarks/bench_drift.py --only-cli     # just the whole-process table, printed
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
        import torch  # noqa: F401 - MMDDrift imports it on first use; load it before the clock, as alibi's

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


# -- whole process: `stalwart drift` on Parquet files vs a SciPy loop and Evidently ------------------
CLI_SIZES = (1_000_000, 10_000_000)
CLI_SHIFTED = ["num_00", "num_01", "cat_0", "cat_1"]
CLI_NUM, CLI_CAT = 10, 3
EVIDENTLY_MAX_ROWS = 1_000_000  # Evidently holds both tables as pandas frames several times over


def write_cli_data(root: Path, n: int, chunk: int = 1_000_000) -> tuple[Path, Path]:
    """Reference and current files of ``n`` rows, written a million rows at a time (row groups of
    1M rows, as pyarrow writes by default), with a mean and a scale shift in num_00 / num_01, a
    changed mix in cat_0 and a new category in 10% of cat_1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = root / f"cli_ref_{n}.parquet", root / f"cli_cur_{n}.parquet"
    for path, shift, seed in ((paths[0], False, 1), (paths[1], True, 2)):
        if path.exists():
            continue
        rng = np.random.default_rng(seed)
        tmp = path.with_suffix(".tmp")
        writer = None
        letters = np.array(list("abcd"), dtype=object)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            cols = {}
            for j in range(CLI_NUM):
                x = (rng.normal(size=m), rng.normal(2.0, 3.0, size=m), rng.exponential(size=m),
                     rng.uniform(-1, 1, size=m))[j % 4]
                if shift and j == 0:
                    x = x + 0.3
                if shift and j == 1:
                    x = 2.0 + (x - 2.0) * 1.5
                cols[f"num_{j:02d}"] = x
            for j in range(CLI_CAT):
                p = [0.2, 0.3, 0.2, 0.3] if shift and j == 0 else [0.4, 0.3, 0.2, 0.1]
                c = letters[rng.choice(4, size=m, p=p)]
                if shift and j == 1:
                    c[rng.random(m) < 0.1] = "new"
                cols[f"cat_{j}"] = c
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        writer.close()
        tmp.rename(path)
    return paths


def scipy_loop(ref_path: str, cur_path: str) -> list[str]:
    """The plain SciPy loop a user would write: both files read whole with pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from scipy import stats

    ref, cur = pq.read_table(ref_path), pq.read_table(cur_path)
    p_values = {}
    for name in ref.column_names:
        a, b = ref[name], cur[name]
        if pa.types.is_floating(a.type) or pa.types.is_integer(a.type):
            p_values[name] = stats.ks_2samp(a.to_numpy(), b.to_numpy()).pvalue
        else:
            counts = [dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
                      for vc in (pc.value_counts(a), pc.value_counts(b))]
            cats = sorted(set(counts[0]) | set(counts[1]))
            table = np.array([[c.get(k, 0) for k in cats] for c in counts])
            p_values[name] = stats.chi2_contingency(table, correction=False).pvalue
    cutoff = ALPHA / len(p_values)
    return [c for c, p in p_values.items() if p <= cutoff]


def evidently_loop(ref_path: str, cur_path: str) -> list[str]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    return _evidently_flagged(Report(metrics=[DataDriftPreset()]).run(reference_data=ref, current_data=cur))


_TIME_FIELDS = {"Maximum resident set size (kbytes)": "peak_kib", "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall"}


def run_timed(cmd: list[str], timeout: float) -> dict:
    """Wall time and maximum resident set of a whole process, from ``/usr/bin/time -v``."""
    try:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, timeout=timeout,
                              cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    found = {}
    for line in proc.stderr.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in _TIME_FIELDS:
            found[_TIME_FIELDS[key]] = value
    if "wall" not in found:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    *hm, sec = found["wall"].split(":")
    wall = float(sec) + 60 * float(hm[-1]) + (3600 * float(hm[0]) if len(hm) == 2 else 0)
    return {"time_s": wall, "peak_mib": int(found["peak_kib"]) / 1024, "rc": proc.returncode,
            "stdout": proc.stdout}


def cli_rows(sizes: list[int], root: Path, bench_python: str | None, repeats: int) -> tuple[list[list], list[list]]:
    """The whole-process table and its targets."""
    stalwart = Path(sys.executable).with_name("stalwart")
    rows, results = [], {}
    for n in sizes:
        ref, cur = write_cli_data(root, n)
        tools = {"stalwart": [str(stalwart), "drift", str(ref), str(cur), "--out", str(root / f"out_{n}")],
                 "scipy": [sys.executable, str(Path(__file__).resolve()), "--scipy-loop", str(ref), str(cur)]}
        if n <= 1_000_000:  # the in-memory test holds both tables: about 1.3 GB per million rows here
            tools["stalwart_memory"] = [*tools["stalwart"][:-1], str(root / f"out_mem_{n}"), "--no-stream"]
        if bench_python and n <= EVIDENTLY_MAX_ROWS:
            tools["evidently"] = [bench_python, str(Path(__file__).resolve()), "--evidently-loop", str(ref), str(cur)]
        for tool, cmd in tools.items():
            runs = [run_timed(cmd, 3600) for _ in range(1 if tool == "evidently" else repeats)]
            ok = [r for r in runs if "error" not in r]
            r = min(ok, key=lambda r: r["time_s"]) if ok else runs[0]
            if ok:
                r["peak_mib"] = max(x["peak_mib"] for x in ok)
                if tool.startswith("stalwart"):
                    out = Path(cmd[cmd.index("--out") + 1]) / "report.json"
                    table = json.loads(out.read_text())["results"][0]["tables"]["columns"]
                    r["flagged"] = [row["column"] for row in table if row["drifted"]]
                    r["streamed"] = json.loads(out.read_text())["data"].get("streamed", False)
                else:
                    r["flagged"] = json.loads(r["stdout"].strip().splitlines()[-1])
            results[(n, tool)] = r
            print(n, tool, {k: v for k, v in r.items() if k != "stdout"}, flush=True)
    names = {"stalwart": "`stalwart drift` (streamed from 1M rows)", "stalwart_memory": "`stalwart drift --no-stream`",
             "scipy": "SciPy loop (pyarrow + ks_2samp / chi2)", "evidently": "Evidently `DataDriftPreset`"}
    for n in sizes:
        base = results.get((n, "scipy"), {})
        for tool in ("stalwart", "stalwart_memory", "scipy", "evidently"):
            r = results.get((n, tool))
            if r is None:
                continue
            if "error" in r:
                rows.append([f"{n:,}", names[tool], "–", "–", "–", "–", r["error"]])
                continue
            ratio = f"{r['time_s'] / base['time_s']:.2f}x" if "time_s" in base else "–"
            fp = sorted(set(r["flagged"]) - set(CLI_SHIFTED))
            fn = sorted(set(CLI_SHIFTED) - set(r["flagged"]))
            rows.append([f"{n:,}", names[tool], round(r["time_s"], 2), round(r["peak_mib"]), ratio, len(r["flagged"]),
                         "exact" if not fp and not fn else f"FP {fp} FN {fn}"])
    targets = []
    small, big = min(sizes), max(sizes)
    st, sc = results.get((small, "stalwart"), {}), results.get((small, "scipy"), {})
    if "error" not in st and "time_s" in st:
        targets.append([f"{small:,} rows: whole-process peak <= 600 MB", f"{st['peak_mib']:.0f} MiB",
                        "met" if st["peak_mib"] * 2 ** 20 <= 600e6 else "**not met**"])
        if "time_s" in sc:
            targets.append([f"{small:,} rows: faster than the SciPy loop (whole process)",
                            f"{st['time_s']:.2f} s vs {sc['time_s']:.2f} s",
                            "met" if st["time_s"] < sc["time_s"] else "**not met**"])
    sb = results.get((big, "stalwart"), {})
    if big != small and "peak_mib" in sb and "peak_mib" in st:
        targets.append([f"{big:,} rows: peak bounded (flat)", f"{sb['peak_mib']:.0f} MiB ({sb['peak_mib'] / st['peak_mib']:.2f}x "
                        f"the {small:,}-row peak for {big // small}x the rows)",
                        "met" if sb["peak_mib"] <= 1.5 * st["peak_mib"] else "**not met**"])
    return rows, targets


def cli_section(sizes: list[int], root: Path, bench_python: str | None, repeats: int) -> str:
    sys.path.insert(0, str(HERE))
    from _common import machine, markdown_table

    load_start = os.getloadavg()
    rows, targets = cli_rows(sizes, root, bench_python, repeats)
    load_end = os.getloadavg()
    return "\n\n".join([
        "### Whole process: `stalwart drift` on Parquet files",
        f"`python benchmarks/bench_drift.py --only-cli` on {machine()}; load average {load_start[0]:.1f} at the "
        f"start and {load_end[0]:.1f} at the end. Reference and current files of {CLI_NUM} numeric + {CLI_CAT} categorical "
        f"columns (shifted: {', '.join(CLI_SHIFTED)}), row groups of 1M rows; each command timed from start to exit "
        f"with `/usr/bin/time -v` (best wall time of {repeats}, highest peak), Evidently once. From 1,000,000 rows "
        "`stalwart drift` reads the files column by column and gives the in-memory results (the `--no-stream` row: "
        "same table, metrics and figures); above 1,000,000 + 1,000,000 values a numeric column is sorted in runs "
        "on disk and merged. Above 1,000 rows stalwart and Evidently use normalised Wasserstein and Jensen-Shannon "
        "(>= 0.1); the SciPy loop uses KS / chi-square p-values with Bonferroni.",
        markdown_table(["rows", "command", "wall (s)", "peak RSS (MiB)", "wall vs SciPy loop", "flagged", "columns"],
                       rows),
        markdown_table(["target", "measured", "status"], targets),
    ])


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
    ap.add_argument("--scipy-loop", nargs=2, metavar=("REF", "CUR"), help=argparse.SUPPRESS)
    ap.add_argument("--evidently-loop", nargs=2, metavar=("REF", "CUR"), help=argparse.SUPPRESS)
    ap.add_argument("--cli-sizes", type=int, nargs="+", default=list(CLI_SIZES))
    ap.add_argument("--only-cli", action="store_true", help="Only the whole-process table.")
    ap.add_argument("--skip-cli", action="store_true", help="Leave out the whole-process table.")
    ap.add_argument("--repeats", type=int, default=2, help="Whole-process runs per command (best time).")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    if args.scipy_loop:
        print(json.dumps(scipy_loop(*args.scipy_loop)))
        return 0
    if args.evidently_loop:
        print(json.dumps(evidently_loop(*args.evidently_loop)))
        return 0
    bench = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"
    evidently_python = str(bench) if bench.exists() else None
    if args.only_cli:
        root = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-drift-"))
        root.mkdir(parents=True, exist_ok=True)
        body = cli_section(args.cli_sizes, root, evidently_python, args.repeats)
        print(body)
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
        *([] if args.skip_cli else [cli_section(args.cli_sizes, root, evidently_python, args.repeats)]),
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Distribution shift", body)
        print("wrote the 'Distribution shift' section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
