"""The monitoring service under load: ingest throughput and latency, window analysis, memory, and
Evidently's collector on the same rows.

    python benchmarks/bench_monitor.py                       # writes the "Monitoring service" section
    python benchmarks/bench_monitor.py --seconds 5 --no-write   # a quick look
    STALWART_BENCH_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        python benchmarks/bench_monitor.py                   # PostgreSQL as well (its tables are dropped)
    pip install --target /tmp/accel orjson httptools uvloop
    python benchmarks/bench_monitor.py --accelerated /tmp/accel   # also with the optional accelerators

Everything runs on 127.0.0.1 and is bounded: each configuration ingests for ``--seconds`` (after
``--warmup`` seconds not counted) and stops at ``--max-batches``.

- Ingest: ``stalwart serve`` (a SQLite file in a temporary directory; PostgreSQL when
  STALWART_BENCH_POSTGRES names an empty database) with ``--workers`` 1 and 2, its analysis worker
  running as in production (model windows of ``--window-rows`` rows). ``--clients`` threads each
  POST batches of ``--rows`` rows x 25 columns (20 numeric, 3 categorical, 1 integer, 1 boolean,
  plus the prediction) with httpx over keep-alive connections, as JSON rows (what
  ``stalwart.monitor.Client`` sends). Bodies are encoded before the clock starts; every batch has its
  own id, and each answer is checked (201). Batches/s counts acknowledged (committed) batches in the
  measured span; latencies are per request, client side. Server RSS is the sum over the server's
  processes, sampled every second: first and last sample of the measured span and the maximum.
- Window analysis: one window of ``--analysis-rows`` rows (the same kind of rows, stored through the
  same path) analysed by :func:`stalwart.monitor.analyze` against a 5,000-row reference: drift of all
  25 columns and the prediction, confidence metrics. Median of three.
- Evidently: its collector service (``evidently.legacy.collector``, Evidently 0.7.x, a Litestar
  app under uvicorn, which finds httptools and uvloop in ``.venv-bench``), fed the same rows in the format its ``CollectorClient``
  sends (``DataFrame.to_dict()``) by the same load generator. Its collector appends each batch to an
  in-memory buffer and answers; it writes nothing to disk until a snapshot (its trigger is set so none
  runs during the measurement), has no idempotency key, and loses its buffer on a crash, so it
  does less per batch than stalwart, which answers only after the batch is committed. Its snapshot
  path (a drift Report over ``--analysis-rows`` rows, stored in a local Workspace) is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, markdown_table, versions, write_section  # noqa: E402

POSTGRES_ENV = "STALWART_BENCH_POSTGRES"
EVIDENTLY_PYTHON = HERE.parent / ".venv-bench" / "bin" / "python"
COLUMNS = {**{f"x{i}": "numeric" for i in range(20)}, **{f"c{i}": "categorical" for i in range(3)},
           "n0": "integer", "b0": "boolean"}
CATEGORIES = np.array(["red", "green", "blue", "amber", "violet"])


def rows_of(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, Any]]:
    """``n`` rows of the benchmark model (JSON-ready values)."""
    x = rng.normal(shift, 1.0, size=(n, 20))
    c = rng.integers(0, len(CATEGORIES), size=(n, 3))
    k, b = rng.integers(0, 50, n), rng.random(n) < 0.3
    out = []
    for i in range(n):
        row: dict[str, Any] = {f"x{j}": float(x[i, j]) for j in range(20)}
        row.update({f"c{j}": str(CATEGORIES[c[i, j]]) for j in range(3)})
        row["n0"], row["b0"], row["prediction"] = int(k[i]), bool(b[i]), int(x[i, 0] + x[i, 1] > 0)
        out.append(row)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"no answer from {url} within {seconds:.0f} s")


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (Linux /proc), MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total / 1024


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants (Linux /proc)."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def load(url: str, bodies: list[bytes], *, headers: dict[str, str], clients: int, seconds: float, warmup: float,
         max_batches: int, server_pid: int, query: bool = True) -> dict[str, Any]:
    """``clients`` threads POST ``bodies`` (cycled, each with a new ``?batch_id=``) for ``warmup +
    seconds``; what was acknowledged in the last ``seconds``, latencies, server RSS samples."""
    import httpx

    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    lock, counter = threading.Lock(), [0]
    done: list[tuple[float, float]] = []  # (finish time, latency) of acknowledged batches
    errors: list[str] = []
    rss: list[float] = []

    def client(index: int) -> None:
        with httpx.Client(headers=headers, timeout=60) as http:
            while True:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                now = time.perf_counter()
                if now >= stop_at or i >= max_batches or errors:
                    return
                params = {"batch_id": f"bench-{index}-{i}"} if query else None
                t0 = time.perf_counter()
                try:
                    r = http.post(url, content=bodies[i % len(bodies)], params=params)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                t1 = time.perf_counter()
                if r.status_code not in (200, 201):
                    errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
                    return
                done.append((t1, t1 - t0))

    cpu: list[float] = []

    def sample() -> None:
        while time.perf_counter() < stop_at and not errors:
            if time.perf_counter() >= measure_from:
                if not cpu:
                    cpu.append(tree_cpu_s(server_pid))
                rss.append(tree_rss_mib(server_pid))
            time.sleep(min(1.0, max(0.0, stop_at - time.perf_counter())))
        cpu.append(tree_cpu_s(server_pid))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    sampler = threading.Thread(target=sample)
    cpu0 = time.process_time()
    for t in [*threads, sampler]:
        t.start()
    for t in [*threads, sampler]:
        t.join()
    client_cpu = time.process_time() - cpu0
    if errors:
        raise RuntimeError(f"a batch was refused: {errors[0]}")
    measured = [lat for t, lat in done if measure_from <= t <= stop_at]
    span = min(stop_at, max(t for t, _ in done)) - measure_from if measured else float("nan")
    lat = np.array(measured) * 1e3
    return {"batches": len(measured), "per_s": len(measured) / span if measured else 0.0,
            "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)), "rss": rss, "acked": len(done),
            "server_cpu_ms": 1e3 * (cpu[-1] - cpu[0]) / max(1, len(measured)),
            "client_cpu_ms": 1e3 * client_cpu / max(1, len(done))}


def reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def run_stalwart(db: str, workers: int, args: argparse.Namespace, bodies: list[bytes],
                 reference: list[dict[str, Any]] | None, extra_path: str | None = None) -> dict[str, Any]:
    """Ingest through ``stalwart serve``; without ``reference`` the worker has nothing to compare
    windows with, so it analyses nothing (the ingest path alone)."""
    import httpx

    from stalwart.monitor import Store

    store = Store(db)
    key = store.create_key("bench", "admin")
    store.close()
    port = free_port()
    cmd = [sys.executable, "-m", "stalwart.cli", "serve", "--db", db, "--port", str(port), "--workers", str(workers)]
    log = open(Path(tempfile.gettempdir()) / f"stalwart-bench-serve-{port}.log", "w")  # the access log, unread
    env = dict(os.environ)
    if extra_path:  # optional accelerators the server picks up (orjson, uvicorn's httptools and uvloop)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/health", proc)
        headers = {"Authorization": f"Bearer {key}"}
        httpx.post(f"{base}/v1/projects/bench/models", headers=headers, timeout=120, json={
            "name": "m", "columns": COLUMNS, "classes": [0, 1], "window_rows": args.window_rows,
            **({"reference": reference} if reference is not None else {})}).raise_for_status()
        out = load(f"{base}/v1/projects/bench/models/m/batches", bodies,
                   headers={**headers, "Content-Type": "application/json"}, clients=args.clients,
                   seconds=args.seconds, warmup=args.warmup, max_batches=args.max_batches, server_pid=proc.pid)
        got = httpx.get(f"{base}/v1/projects/bench/models/m", headers=headers, timeout=60).json()
        if got["batches"] != out["acked"]:
            raise RuntimeError(f"{out['acked']} batches acknowledged but {got['batches']} stored")
        out["windows"] = len(httpx.get(f"{base}/v1/projects/bench/models/m/windows", headers=headers, timeout=60,
                                       params={"limit": 10_000, "drift": False}).json()["windows"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)
    return out


def analysis_seconds(db: str, bodies: list[bytes], reference: list[dict[str, Any]], n_rows: int,
                     repeats: int = 3) -> float:
    """Median seconds of :func:`analyze` over one window of ``n_rows`` rows stored as batches."""
    import hashlib

    from stalwart.monitor import Store, analyze
    from stalwart.monitor.ingest import batch_columns, parse_body, reference_columns

    store = Store(db)
    try:
        project = store.authenticate(store.create_key("timing", "admin")).project_id
        times = []
        for r in range(repeats):
            model = store.add_model(project, f"t{r}", "classification", [0, 1], COLUMNS,
                                    {"window_rows": n_rows, "window_seconds": None, "drift_method": "auto",
                                     "alpha": 0.05, "correction": "bonferroni"})
            columns, n = reference_columns(reference, model, 10 ** 7)
            store.set_reference(model["id"], columns, n)
            for i in range(n_rows // 100):
                body = bodies[i % len(bodies)]
                rows, _ = parse_body(body, "application/json", "rows")
                cols, n, first, last = batch_columns(rows, model, f"t{i}", 10_000)
                store.add_batch(model["id"], f"t{i}", cols, n, first, last, hashlib.sha256(body).hexdigest())
            start = time.perf_counter()
            result = analyze(store, model["id"])
            times.append(time.perf_counter() - start)
            if result["windows"].get(model["id"]) != [0]:
                raise RuntimeError(f"expected one window analysed, got {result['windows']}")
        return statistics.median(times)
    finally:
        store.close()


def run_evidently(args: argparse.Namespace, frames: list[bytes], reference: list[dict[str, Any]],
                  tmp: Path) -> dict[str, Any] | None:
    if not EVIDENTLY_PYTHON.exists():
        return None
    import httpx

    port = free_port()
    config = tmp / "evidently" / "collector.json"
    config.parent.mkdir()
    code = ("import sys; from evidently.legacy.collector.app import run; "
            "run(host='127.0.0.1', port=int(sys.argv[1]), config_path=sys.argv[2])")
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen([str(EVIDENTLY_PYTHON), "-c", code, str(port), str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/bench", proc)
        spec = subprocess.run([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_CONFIG], capture_output=True, text=True,
                              env=env, check=True, timeout=300).stdout
        httpx.post(f"{base}/bench", content=spec, headers={"Content-Type": "application/json"},
                   timeout=60).raise_for_status()
        out = load(f"{base}/bench/data", frames, headers={"Content-Type": "application/json"},
                   clients=args.clients, seconds=args.seconds, warmup=args.warmup, max_batches=args.max_batches,
                   server_pid=proc.pid, query=False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    ref_path, cur_path = tmp / "evidently" / "reference.json", tmp / "evidently" / "current.json"
    ref_path.write_text(json.dumps(reference))
    rng = np.random.default_rng(7)
    cur_path.write_text(json.dumps(rows_of(rng, args.analysis_rows, shift=0.1)))
    timing = subprocess.run([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SNAPSHOT, str(ref_path), str(cur_path),
                             str(tmp / "evidently" / "workspace"), str(args.repeats)], capture_output=True, text=True, env=env,
                            timeout=1200)
    if timing.returncode != 0:
        raise RuntimeError(f"Evidently's snapshot run failed: {timing.stderr[-2000:]}")
    out.update(json.loads(timing.stdout.strip().splitlines()[-1]))
    return out


# a collector whose trigger never fires during the run: the ingest path alone
EVIDENTLY_CONFIG = """
import json
from evidently.legacy.collector.config import CollectorConfig, IntervalTrigger, ReportConfig
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.report import Report
report = Report(metrics=[DataDriftPreset()])
config = CollectorConfig(trigger=IntervalTrigger(interval=10 ** 9, last_triggered=10 ** 12),
                         report_config=ReportConfig.from_report(report), reference_path=None,
                         project_id="00000000-0000-0000-0000-000000000000", api_url="http://127.0.0.1:9")
print(config.json())
"""

# Evidently 0.7's snapshot path: a drift report over the window, stored in a local workspace
EVIDENTLY_SNAPSHOT = """
import json, sys, time
import pandas as pd
from evidently import Dataset, DataDefinition, Report
from evidently.presets import DataDriftPreset
from evidently.ui.workspace import Workspace
ref, cur = pd.read_json(sys.argv[1]), pd.read_json(sys.argv[2])
numeric = [c for c in ref.columns if c.startswith("x") or c == "n0"]
categorical = [c for c in ref.columns if c.startswith("c") or c in ("b0", "prediction")]
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
times = []
ws = Workspace.create(sys.argv[3])
project = ws.create_project("bench")
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    run = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                          Dataset.from_pandas(ref, data_definition=definition))
    t1 = time.perf_counter()
    ws.add_run(project.id, run)
    times.append((t1 - t0, time.perf_counter() - t1))
times.sort()
print(json.dumps({"report_s": times[len(times) // 2][0], "store_s": times[len(times) // 2][1]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per configuration")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--max-batches", type=int, default=50_000, help="at most this many batches per configuration")
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--rows", type=int, default=100, help="rows per batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server processes to try")
    ap.add_argument("--window-rows", type=int, default=100_000, help="rows per analysis window of the model")
    ap.add_argument("--analysis-rows", type=int, default=100_000, help="rows of the timed analysis window")
    ap.add_argument("--repeats", type=int, default=3, help="timed analyses (the median is reported)")
    ap.add_argument("--accelerated", metavar="DIR", help="also run ingest with DIR (orjson, httptools and uvloop "
                    "installed there by pip install --target) on the server's PYTHONPATH")
    ap.add_argument("--no-evidently", action="store_true", help="skip Evidently's collector")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    templates = [rows_of(rng, args.rows) for _ in range(50)]
    bodies = [json.dumps(rows).encode() for rows in templates]
    reference = rows_of(np.random.default_rng(1), 5000)
    backends = [("SQLite", None)]
    if os.environ.get(POSTGRES_ENV):
        backends.append(("PostgreSQL", os.environ[POSTGRES_ENV]))
    load_avg = os.getloadavg()[0]
    results: list[list[Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="stalwart-bench-monitor-"))
    analysis: dict[str, float] = {}
    try:
        for name, pg in backends:
            runs = [(w, a, None) for w in args.workers for a in (False, True)]
            runs += [(w, False, args.accelerated) for w in args.workers if args.accelerated]
            for workers, analysed, extra in runs:
                if pg:
                    reset_postgres(pg)
                db = pg or f"sqlite:///{tmp / f'monitor-{workers}-{analysed}-{bool(extra)}.db'}"
                busy = os.getloadavg()[0]
                r = run_stalwart(db, workers, args, bodies, reference if analysed else None, extra)
                what = f"stalwart, {name}, " + ("windows analysed" if analysed else "ingest only") + (
                    ", + orjson, httptools, uvloop" if extra else "")
                print(f"{what}, {workers} process(es): {r['per_s']:.0f} batches/s, p95 {r['p95']:.1f} ms, server CPU "
                      f"{r['server_cpu_ms']:.2f} ms/batch", file=sys.stderr)
                results.append([what, workers, r["per_s"], r["p50"], r["p95"], r["p99"],
                                f"{r['rss'][0]:.0f} → {r['rss'][-1]:.0f} (max {max(r['rss']):.0f})",
                                r["windows"], r["server_cpu_ms"], r["client_cpu_ms"], busy])
            if pg:
                reset_postgres(pg)
            analysis[name] = analysis_seconds(pg or f"sqlite:///{tmp / 'analysis.db'}", bodies, reference,
                                              args.analysis_rows, args.repeats)
        busy = os.getloadavg()[0]
        evidently = None if args.no_evidently else run_evidently(
            args, [json.dumps(_frame_dict(rows)).encode() for rows in templates], reference, tmp)
        if evidently is not None:
            r = evidently
            results.append(["Evidently collector (in memory)", 1, r["per_s"], r["p50"], r["p95"], r["p99"],
                            f"{r['rss'][0]:.0f} → {r['rss'][-1]:.0f} (max {max(r['rss']):.0f})", "n/a",
                            r["server_cpu_ms"], r["client_cpu_ms"], busy])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = markdown_table(["service", "server processes", "batches/s", "p50 ms", "p95 ms", "p99 ms",
                            "server RSS MiB (first → last)", "windows analysed", "server CPU ms/batch",
                            "client CPU ms/batch", "load avg (1 min) before"], results)
    lines = [f"Batches of {args.rows} rows × 25 columns as JSON rows, {args.clients} concurrent httpx clients on the "
             f"same machine, {args.seconds:.0f} s measured after {args.warmup:.0f} s of warm-up. \"ingest only\": the "
             "model has no reference, so the service's worker finds nothing to analyse; \"windows analysed\": "
             f"its worker analyses each window of {args.window_rows:,} rows as it completes, in the same "
             f"processes, during the run. Server CPU counts every process of the server. Machine: {machine()}, "
             f"1-minute load average {load_avg:.2f} at the start (last column: before each run; a load above the "
             "2 cores means other work shared them, so rerun on a quiet machine for figures to quote). "
             f"{versions('fastapi', 'uvicorn', 'sqlalchemy')}.", "", table, ""]
    lines.append(f"Window analysis of {args.analysis_rows:,} rows (median of {args.repeats}): "
                 + ", ".join(f"{s:.2f} s on {name}" for name, s in analysis.items()) + ".")
    if evidently is not None:
        lines.append(f"Evidently 0.7's snapshot path on {args.analysis_rows:,} rows (DataDriftPreset report, then "
                     f"stored in a local Workspace): {evidently['report_s']:.2f} s + {evidently['store_s']:.2f} s "
                     f"(median of {args.repeats}).")
    lines.append("Server RSS is flat while it only ingests; while it analyses, it grows by the working set of the "
                 "window being analysed (a run this short cannot tell a leak from that). Evidently's collector grows "
                 "with its in-memory buffer until a snapshot flushes it.")
    accel = (" --accelerated DIR`, DIR made by `pip install --target DIR orjson httptools uvloop`; none of the "
             "three is a stalwart dependency" if args.accelerated else "`")
    lines += ["", f"Command: `python benchmarks/bench_monitor.py{accel} (PostgreSQL with "
              f"`{POSTGRES_ENV}=postgresql+psycopg://...`). " + _CAVEAT]
    body = "\n".join(lines)
    if args.no_write:
        print(body)
    else:
        write_section("Monitoring service", body)


_CAVEAT = ("Evidently's collector acknowledges a batch once it is appended to an in-memory buffer (nothing on "
           "disk until its next snapshot, no batch id, no authentication in this set-up); stalwart acknowledges "
           "after the batch's transaction commits, checks it against the model's schema and refuses a reused id.")


def _frame_dict(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``rows`` as ``pandas.DataFrame(rows).to_dict()`` writes them (what Evidently's client sends)."""
    return {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}


if __name__ == "__main__":
    main()
