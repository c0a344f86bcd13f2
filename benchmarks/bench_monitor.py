"""The monitoring service under load: ingest throughput and latency, window analysis, memory, and
Evidently's collector on the same rows.

    python benchmarks/bench_monitor.py                       # writes the "Monitoring service" section
    python benchmarks/bench_monitor.py --seconds 5 --no-write   # a quick look
    STALWART_BENCH_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        python benchmarks/bench_monitor.py                   # PostgreSQL as well (its tables are dropped)
    python benchmarks/bench_monitor.py --soak 600 --rate 150 --workers 2   # memory over 10 minutes

Everything runs on 127.0.0.1 and is bounded: each configuration ingests for ``--seconds`` (after
``--warmup`` seconds not counted) and stops at ``--max-batches``. The server runs as installed by
the ``[monitor]`` extra, which includes orjson (JSON bodies), httptools and uvloop (uvicorn's
parser and event loop).

- Ingest: ``stalwart serve`` (a SQLite file in a temporary directory; PostgreSQL when
  STALWART_BENCH_POSTGRES names an empty database) with ``--workers`` 1 and 2, its analysis worker
  running as in production (model windows of ``--window-rows`` rows; with a reference, a first
  window is ingested and analysed before the clock starts, so the figures are the steady state and
  not the one-time loading of torch and the OOD detector's fit). ``--clients`` threads each
  POST batches of ``--rows`` rows x 25 columns (20 numeric, 3 categorical, 1 integer, 1 boolean,
  plus the prediction) over keep-alive connections, as JSON rows (what
  ``stalwart.monitor.Client`` sends), with :class:`RawHTTP`, a minimal HTTP/1.1 client, so that
  the load generator leaves the two cores to the server (``--client httpx``: with httpx, which
  costs ten times the CPU per request). Bodies are encoded before the clock starts; every batch has its
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
- Soak (``--soak SECONDS``, instead of the above): one server per ``--workers`` value and backend,
  its analysis worker running (a reference is registered, windows of ``--window-rows`` rows), fed
  at a fixed ``--rate`` of batches per second by ``--clients`` threads (bounded, so that it leaves
  the machine's cores to other work; a client late for its slot sends at once). Every
  ``--sample-s`` seconds: the server's RSS (all its processes), the database's size (SQLite file
  and its WAL, or ``pg_database_size``), batches acknowledged and their p95 latency. Reported: the
  RSS slope (least squares, MiB per minute) and max - min after ``--soak-warmup`` seconds, and the
  database's growth per batch. Written as the subsection "Memory over a long run" of the
  "Monitoring service" section (the main run keeps it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
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


class RawHTTP:
    """The load generator's HTTP/1.1 client: one keep-alive connection, requests written as bytes
    (head and body in one ``sendmsg``), answers read by their Content-Length. It sends the method,
    path, query, headers and body httpx sends for the POST (less httpx's Accept, Accept-Encoding
    and User-Agent, which the service ignores) at about a tenth of httpx's CPU per request (on
    this machine 0.10-0.15 against 1.0-1.5 ms for a 61 KiB batch, as the tables' client CPU column
    shows); httpx took a third of the two cores from the server it measured. ``--client httpx``
    keeps httpx."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.path, self.buffer = parts.path, b""
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = f"Host: {parts.hostname}:{parts.port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    def post(self, body: bytes, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        target = self.path + ("?" + urllib.parse.urlencode(params) if params else "")
        self.sock.sendmsg([f"POST {target} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode(), body])
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self.buffer += self._recv()
        head, rest = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
        status, length = int(head[9:12]), None
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise ConnectionError(f"an answer without Content-Length: {head[:200]!r}")
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return status, rest[:length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def load(url: str, bodies: list[bytes], *, headers: dict[str, str], clients: int, seconds: float, warmup: float,
         max_batches: int, server_pid: int, query: bool = True, prefix: str = "bench",
         client_kind: str = "raw") -> dict[str, Any]:
    """``clients`` threads POST ``bodies`` (cycled, each with a new ``?batch_id=``) for ``warmup +
    seconds``; what was acknowledged in the last ``seconds``, latencies, server RSS samples.
    ``client_kind``: "raw" (:class:`RawHTTP`) or "httpx"."""
    import httpx

    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    lock, counter = threading.Lock(), [0]
    done: list[tuple[float, float]] = []  # (finish time, latency) of acknowledged batches
    errors: list[str] = []
    rss: list[float] = []

    def client(index: int) -> None:
        if client_kind == "httpx":
            http = httpx.Client(headers=headers, timeout=60)

            def post(body: bytes, params: dict[str, str] | None) -> tuple[int, bytes]:
                r = http.post(url, content=body, params=params)
                return r.status_code, r.content
        else:
            http = RawHTTP(url, headers)
            post = http.post
        try:
            while True:
                with lock:
                    i = counter[0]
                    counter[0] += 1
                now = time.perf_counter()
                if now >= stop_at or i >= max_batches or errors:
                    return
                params = {"batch_id": f"{prefix}-{index}-{i}"} if query else None
                t0 = time.perf_counter()
                try:
                    status, content = post(bodies[i % len(bodies)], params)
                except (httpx.HTTPError, OSError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                t1 = time.perf_counter()
                if status not in (200, 201):
                    errors.append(f"HTTP {status}: {content[:300]!r}")
                    return
                done.append((t1, t1 - t0))
        finally:
            http.close()

    cpu: list[float] = []
    clients_done = threading.Event()  # the clients stop at stop_at or after max_batches, whichever is first

    def sample() -> None:
        while time.perf_counter() < stop_at and not errors and not clients_done.is_set():
            if time.perf_counter() >= measure_from:
                if not cpu:
                    cpu.append(tree_cpu_s(server_pid))
                rss.append(tree_rss_mib(server_pid))
            clients_done.wait(min(1.0, max(0.0, stop_at - time.perf_counter())))
        cpu.append(tree_cpu_s(server_pid))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    sampler = threading.Thread(target=sample)
    cpu0 = time.process_time()
    for t in [*threads, sampler]:
        t.start()
    for t in threads:
        t.join()
    clients_done.set()
    sampler.join()
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


def db_size(db: str) -> Any:
    """A function returning the bytes ``db`` takes now: a SQLite file with its WAL and shared
    memory files, or PostgreSQL's ``pg_database_size`` of the current database."""
    import sqlalchemy as sa

    url = sa.make_url(db)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        return lambda: sum(f.stat().st_size for f in (path, path.with_name(path.name + "-wal"),
                                                      path.with_name(path.name + "-shm")) if f.exists())
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    query = sa.select(sa.func.pg_database_size(sa.func.current_database()))

    def size() -> int:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar())
    return size


def soak_load(url: str, bodies: list[bytes], *, headers: dict[str, str], clients: int, seconds: float, rate: float,
              sample_s: float, server_pid: int, size: Any) -> dict[str, Any]:
    """``clients`` threads POST ``bodies`` (cycled, each with a new ``?batch_id=``) at ``rate``
    batches per second in all (batch ``k`` is due ``k / rate`` seconds after the start; a client
    late for it sends at once) for ``seconds`` (and no longer, even when behind); every ``sample_s`` seconds a sample of the server's
    RSS, the database's size, the batches acknowledged so far and the p95 latency of the span."""
    import httpx

    start = time.perf_counter()
    stop_at = start + seconds
    lock, counter = threading.Lock(), [0]
    done: list[tuple[float, float]] = []  # (finish time, latency) of acknowledged batches
    errors: list[str] = []
    samples: list[dict[str, float]] = []

    def client() -> None:
        with httpx.Client(headers=headers, timeout=60) as http:
            while not errors:
                with lock:
                    k = counter[0]
                    counter[0] += 1
                due = start + k / rate
                if due >= stop_at or time.perf_counter() >= stop_at:  # bounded even when behind
                    return
                time.sleep(max(0.0, due - time.perf_counter()))
                t0 = time.perf_counter()
                try:
                    r = http.post(url, content=bodies[k % len(bodies)], params={"batch_id": f"soak-{k}"})
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                t1 = time.perf_counter()
                if r.status_code != 201:
                    errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
                    return
                with lock:
                    done.append((t1, t1 - t0))

    def sample() -> None:
        seen = 0
        while not errors:
            now = time.perf_counter()
            with lock:
                recent = [lat for _, lat in done[seen:]]
                seen = len(done)
            samples.append({"t": now - start, "rss": tree_rss_mib(server_pid), "db": size() / 2 ** 20,
                            "acked": seen, "p95": float(np.percentile(recent, 95)) * 1e3 if recent else math.nan})
            if now >= stop_at:
                return
            time.sleep(max(0.0, min(sample_s, stop_at - now) - (time.perf_counter() - now)))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    sampler = threading.Thread(target=sample)
    for t in [*threads, sampler]:
        t.start()
    for t in threads:
        t.join()
    sampler.join()
    if errors:
        raise RuntimeError(f"a batch was refused: {errors[0]}")
    lat = np.array([lat for _, lat in done]) * 1e3
    return {"samples": samples, "acked": len(done), "per_s": len(done) / seconds,
            "p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99))}


def soak_summary(samples: list[dict[str, float]], warmup: float) -> dict[str, float]:
    """RSS slope (least squares, MiB per minute) and spread (max - min, MiB) over the samples
    after ``warmup`` seconds, and the database's growth (MiB per minute and KiB per batch) over
    the same span.

    >>> s = soak_summary([{"t": 60.0 * i, "rss": 100 + (i > 0) * 5 + 0.5 * i, "db": 10.0 * i,
    ...                    "acked": 1000 * i} for i in range(6)], warmup=60)
    >>> round(s["rss_slope"], 3), round(s["rss_spread"], 3), round(s["db_per_min"], 3), round(s["db_per_batch"], 3)
    (0.5, 2.0, 10.0, 10.24)
    """
    after = [x for x in samples if x["t"] >= warmup]
    if len(after) < 2:
        raise ValueError(f"fewer than two samples after the {warmup:.0f} s warm-up; soak longer or sample more often")
    t = np.array([x["t"] for x in after]) / 60.0
    rss, db = np.array([x["rss"] for x in after]), np.array([x["db"] for x in after])
    batches = after[-1]["acked"] - after[0]["acked"]
    return {"rss_slope": float(np.polyfit(t, rss, 1)[0]), "rss_spread": float(rss.max() - rss.min()),
            "rss_first": float(rss[0]), "rss_last": float(rss[-1]), "rss_max": float(rss.max()),
            "db_per_min": float((db[-1] - db[0]) / (t[-1] - t[0])),
            "db_per_batch": float((db[-1] - db[0]) * 1024 / batches) if batches else math.nan}


def reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def run_stalwart(db: str, workers: int, args: argparse.Namespace, bodies: list[bytes],
                 reference: list[dict[str, Any]] | None, soak: bool = False) -> dict[str, Any]:
    """Ingest through ``stalwart serve``; without ``reference`` the worker has nothing to compare
    windows with, so it analyses nothing (the ingest path alone). ``soak``: at ``args.rate`` for
    ``args.soak`` seconds (:func:`soak_load`) instead of as fast as it goes."""
    import httpx

    from stalwart.monitor import Store

    store = Store(db)
    key = store.create_key("bench", "admin")
    store.close()
    port = free_port()
    cmd = [sys.executable, "-m", "stalwart.cli", "serve", "--db", db, "--port", str(port), "--workers", str(workers),
           *(["--analysis-in-thread"] if args.analysis_in_thread else [])]
    log = open(Path(tempfile.gettempdir()) / f"stalwart-bench-serve-{port}.log", "w")  # the access log, unread
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/health", proc)
        headers = {"Authorization": f"Bearer {key}"}
        httpx.post(f"{base}/v1/projects/bench/models", headers=headers, timeout=120, json={
            "name": "m", "columns": COLUMNS, "classes": [0, 1], "window_rows": args.window_rows,
            **({"reference": reference} if reference is not None else {})}).raise_for_status()
        url, post_headers = f"{base}/v1/projects/bench/models/m/batches", {**headers, "Content-Type": "application/json"}
        if soak:
            out = soak_load(url, bodies, headers=post_headers, clients=args.clients, seconds=args.soak,
                            rate=args.rate, sample_s=args.sample_s, server_pid=proc.pid, size=db_size(db))
        else:
            primed = 0
            if reference is not None:  # steady state: the first window (and what it loads once) is analysed first
                primed = load(url, bodies, headers=post_headers, clients=args.clients, seconds=600.0, warmup=0.0,
                              max_batches=-(-args.window_rows // args.rows), server_pid=proc.pid,
                              prefix="prime", client_kind=args.client)["acked"]
                windows_url = f"{base}/v1/projects/bench/models/m/windows"
                for _ in range(1200):  # bounded: 120 s
                    if httpx.get(windows_url, headers=headers, timeout=60, params={"drift": False}).json()["windows"]:
                        break
                    time.sleep(0.1)
                else:
                    raise RuntimeError("the first window was not analysed within 120 s")
            out = load(url, bodies, headers=post_headers, clients=args.clients, seconds=args.seconds,
                       warmup=args.warmup, max_batches=args.max_batches, server_pid=proc.pid,
                       client_kind=args.client)
            out["acked"] += primed
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
                   server_pid=proc.pid, query=False, client_kind=args.client)
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
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="the load generator's HTTP client: RawHTTP (lean) or httpx (what stalwart.monitor.Client uses)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server processes to try")
    ap.add_argument("--window-rows", type=int, default=100_000, help="rows per analysis window of the model")
    ap.add_argument("--analysis-rows", type=int, default=100_000, help="rows of the timed analysis window")
    ap.add_argument("--repeats", type=int, default=3, help="timed analyses (the median is reported)")
    ap.add_argument("--analysis-in-thread", action="store_true",
                    help="serve with --analysis-in-thread (windows analysed in the worker thread, not a child process)")
    ap.add_argument("--soak", type=float, metavar="SECONDS", help="instead: a soak run this long at --rate, for memory")
    ap.add_argument("--rate", type=float, default=150.0, help="soak: batches per second, all clients together")
    ap.add_argument("--sample-s", type=float, default=10.0, help="soak: seconds between samples")
    ap.add_argument("--soak-warmup", type=float, default=120.0, help="soak: seconds left out of the RSS slope")
    ap.add_argument("--no-evidently", action="store_true", help="skip Evidently's collector")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = ap.parse_args()
    if args.soak is not None:
        if not args.soak_warmup + 2 * args.sample_s <= args.soak:
            ap.error("--soak must leave at least two samples after --soak-warmup (--soak-warmup + 2 x --sample-s)")
        if not 0 < args.rate <= 10_000:
            ap.error("--rate must be in (0, 10000] batches per second")

    rng = np.random.default_rng(0)
    templates = [rows_of(rng, args.rows) for _ in range(50)]
    bodies = [json.dumps(rows).encode() for rows in templates]
    reference = rows_of(np.random.default_rng(1), 5000)
    backends = [("SQLite", None)]
    if os.environ.get(POSTGRES_ENV):
        backends.append(("PostgreSQL", os.environ[POSTGRES_ENV]))
    load_avg = os.getloadavg()[0]
    if args.soak is not None:
        run_soak(args, backends, bodies, reference, load_avg)
        return
    results: list[list[Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="stalwart-bench-monitor-"))
    analysis: dict[str, float] = {}
    try:
        for name, pg in backends:
            for workers, analysed in [(w, a) for w in args.workers for a in (False, True)]:
                if pg:
                    reset_postgres(pg)
                db = pg or f"sqlite:///{tmp / f'monitor-{workers}-{analysed}.db'}"
                busy = os.getloadavg()[0]
                r = run_stalwart(db, workers, args, bodies, reference if analysed else None)
                what = f"stalwart, {name}, " + ("windows analysed" if analysed else "ingest only")
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
    generator = ("httpx clients" if args.client == "httpx" else
                 "clients (the benchmark's own HTTP/1.1 keep-alive client, `RawHTTP`: the same requests as httpx at "
                 "about a tenth of its CPU)")
    lines = [f"Batches of {args.rows} rows × 25 columns as JSON rows, {args.clients} concurrent {generator} on the "
             f"same machine, {args.seconds:.0f} s measured after {args.warmup:.0f} s of warm-up. \"ingest only\": the "
             "model has no reference, so the service's worker finds nothing to analyse; \"windows analysed\": "
             f"its worker analyses each window of {args.window_rows:,} rows as it completes, in the same "
             f"processes, during the run (steady state: the measurement starts once a first window has been "
             f"ingested and analysed, which loads torch and fits the OOD detector once per process). Server CPU counts every process of the server. Machine: {machine()}, "
             f"1-minute load average {load_avg:.2f} at the start (last column: before each run; a load above the "
             "2 cores means other work shared them, so rerun on a quiet machine for figures to quote). "
             f"{versions('fastapi', 'uvicorn', 'sqlalchemy', 'orjson', 'httptools', 'uvloop')}.", "", table, ""]
    lines.append(f"Window analysis of {args.analysis_rows:,} rows (median of {args.repeats}): "
                 + ", ".join(f"{s:.2f} s on {name}" for name, s in analysis.items()) + ".")
    if evidently is not None:
        lines.append(f"Evidently 0.7's snapshot path on {args.analysis_rows:,} rows (DataDriftPreset report, then "
                     f"stored in a local Workspace): {evidently['report_s']:.2f} s + {evidently['store_s']:.2f} s "
                     f"(median of {args.repeats}).")
    lines.append("Server RSS is flat while it only ingests; while it analyses, it grows by the working set of the "
                 "window being analysed (a run this short cannot tell a leak from that). Evidently's collector grows "
                 "with its in-memory buffer until a snapshot flushes it.")
    lines += ["", "Command: `python benchmarks/bench_monitor.py` (PostgreSQL with "
              f"`{POSTGRES_ENV}=postgresql+psycopg://...`). " + _CAVEAT]
    body = "\n".join(lines)
    if args.no_write:
        print(body)
    else:  # the soak subsection, written by its own run, stays
        kept = _subsection(SECTION, SOAK_TITLE)
        write_section(SECTION, body + ("\n\n" + kept if kept else ""))


SECTION, SOAK_TITLE = "Monitoring service", "Memory over a long run"


def run_soak(args: argparse.Namespace, backends: list[tuple[str, str | None]], bodies: list[bytes],
             reference: list[dict[str, Any]], load_avg: float) -> None:
    """The soak runs (``--soak``) and their subsection of the "Monitoring service" section."""
    tmp = Path(tempfile.mkdtemp(prefix="stalwart-bench-soak-"))
    rows, detail = [], []
    try:
        for name, pg in backends:
            for workers in args.workers:
                if pg:
                    reset_postgres(pg)
                db = pg or f"sqlite:///{tmp / f'soak-{workers}.db'}"
                busy = os.getloadavg()[0]
                r = run_stalwart(db, workers, args, bodies, reference, soak=True)
                s = soak_summary(r["samples"], args.soak_warmup)
                print(f"soak, {name}, {workers} process(es): {r['per_s']:.0f} batches/s, p95 {r['p95']:.1f} ms, RSS "
                      f"{s['rss_first']:.0f} -> {s['rss_last']:.0f} MiB after warm-up, slope {s['rss_slope']:+.2f} "
                      f"MiB/min, spread {s['rss_spread']:.1f} MiB, {r['windows']} windows", file=sys.stderr)
                rows.append([name, workers, r["per_s"], r["p50"], r["p95"], r["p99"], r["windows"],
                             f"{s['rss_first']:.0f} → {s['rss_last']:.0f} (max {s['rss_max']:.0f})",
                             f"{s['rss_slope']:+.2f}", s["rss_spread"], s["db_per_min"], s["db_per_batch"], busy,
                             os.getloadavg()[0]])
                minute = [min(r["samples"], key=lambda x, m=m: abs(x["t"] - 60 * m))
                          for m in range(int(args.soak // 60) + 1)]  # the sample nearest each whole minute
                detail.append(f"{name}, {workers} process(es), RSS MiB (database MiB) at each minute: " + ", ".join(
                    f"{x['t'] / 60:.0f} min {x['rss']:.0f} ({x['db']:.0f})" for x in minute) + ".")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = markdown_table(["backend", "server processes", "batches/s", "p50 ms", "p95 ms", "p99 ms",
                            "windows analysed", "server RSS MiB after warm-up (first → last)",
                            "RSS slope MiB/min", "RSS max - min MiB", "database growth MiB/min",
                            "database KiB/batch", "load avg before", "load avg after"], rows)
    body = "\n".join([
        f"`python benchmarks/bench_monitor.py --soak {args.soak:.0f} --rate {args.rate:g} --workers "
        f"{' '.join(map(str, args.workers))}`: {args.clients} httpx clients aim at {args.rate:g} batches/s in all "
        f"(batches of {args.rows} rows × 25 columns, JSON rows; a client late for its slot sends at once, and the "
        f"batches/s column is what was acknowledged) for {args.soak / 60:.0f} min, while the service's "
        f"worker analyses each window of {args.window_rows:,} rows against a 5,000-row reference"
        f"{' in its thread' if args.analysis_in_thread else ' in a child process of the server'}. The server's "
        f"RSS (all its processes, the analysis child included) and the database's size are sampled every "
        f"{args.sample_s:g} s; slope (least squares) and max - min are over the samples after "
        f"{args.soak_warmup:.0f} s of warm-up. Machine: {machine()}, 1-minute load average {load_avg:.2f} at the "
        "start (the load columns: before and after each backend's run; memory is the figure here, not speed). "
        + versions("fastapi", "uvicorn", "sqlalchemy") + ".",
        "", table, "", *detail])
    if args.no_write:
        print(body)
    else:
        _write_subsection(SECTION, SOAK_TITLE, body)


def _subsection(section: str, title: str) -> str:
    """The ``### title`` block (heading included) of ``## section`` in docs/benchmarks.md, or ''."""
    import re

    from _common import DOC

    text = DOC.read_text() if DOC.exists() else ""
    found = re.search(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    sub = found and re.search(rf"^### {re.escape(title)}\n.*?(?=^##+ |\Z)", found.group(0), re.S | re.M)
    return sub.group(0).strip() if sub else ""


def _write_subsection(section: str, title: str, body: str) -> None:
    """Replace (or append) the ``### title`` block of ``## section``, leaving the rest as it is."""
    import re

    from _common import DOC

    text = DOC.read_text() if DOC.exists() else ""
    found = re.search(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    block = f"### {title}\n\n{body.strip()}"
    if found is None:
        write_section(section, block)
        return
    old = found.group(0)
    sub = re.compile(rf"^### {re.escape(title)}\n.*?(?=^##+ |\Z)", re.S | re.M)
    new = sub.sub(lambda _: block + "\n\n", old) if sub.search(old) else old.rstrip() + "\n\n" + block + "\n\n"
    DOC.write_text(text[:found.start()] + new + text[found.end():])


_CAVEAT = ("Evidently's collector acknowledges a batch once it is appended to an in-memory buffer (nothing on "
           "disk until its next snapshot, no batch id, no authentication in this set-up); stalwart acknowledges "
           "after the batch's transaction commits, checks it against the model's schema and refuses a reused id.")


def _frame_dict(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``rows`` as ``pandas.DataFrame(rows).to_dict()`` writes them (what Evidently's client sends)."""
    return {c: {str(i): r[c] for i, r in enumerate(rows)} for c in rows[0]}


if __name__ == "__main__":
    main()
