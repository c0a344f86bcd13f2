"""CPU per ingested batch, stage by stage, in one process: where `stalwart serve` spends a batch.

    python benchmarks/profile_monitor_ingest.py            # best of 5 runs of 300 batches each
    python benchmarks/profile_monitor_ingest.py --rows 1000

The batches are those of ``bench_monitor.py`` (100 rows x 25 columns as JSON rows, the same
generator). Each stage is timed with ``time.process_time`` over its own calls: parsing the body,
checking and normalising its columns, the SHA-256 of the body (the retry check), encoding the stored
blob, the insert and its commit (SQLite file in WAL mode; ``--db`` for another URL, whose tables
must be empty or absent). Then the whole request through the FastAPI app called directly (ASGI, no
sockets, no uvicorn), one request at a time, with the CPU of its ingest thread counted apart.
Prints; writes nothing. A busy machine inflates every figure: read them beside the load average
printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_monitor import COLUMNS, rows_of  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100, help="rows per batch")
    ap.add_argument("--batches", type=int, default=300, help="batches per timed run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs (the best is printed)")
    ap.add_argument("--db", help="database URL (default: a SQLite file in a temporary directory)")
    args = ap.parse_args()

    from stalwart.monitor import Settings, Store, create_app
    from stalwart.monitor.ingest import batch_columns, parse_body
    from stalwart.monitor.store import encode_columns

    rng = np.random.default_rng(0)
    bodies = [json.dumps(rows_of(rng, args.rows)).encode() for _ in range(50)]
    db = args.db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='stalwart-profile-')) / 'monitor.db'}"
    store = Store(db)
    key = store.create_key("bench", "admin")
    app = create_app(Settings(db=db, worker=False, max_batch_rows=max(10_000, args.rows)), store=store)
    model = store.add_model(store.authenticate(key).project_id, "m", "classification", [0, 1], COLUMNS,
                            {"window_rows": 10 ** 7, "window_seconds": None, "drift_method": "auto", "alpha": 0.05,
                             "correction": "bonferroni"})
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}; {args.rows} rows x 25 columns per batch, "
          f"{len(bodies[0]) / 1024:.0f} KiB of JSON")

    stages = ("parse", "columns", "digest", "encode", "insert")
    best = dict.fromkeys(stages, float("inf"))
    for run in range(args.repeats):
        spent = dict.fromkeys(stages, 0)
        for i in range(args.batches):
            body, batch_id = bodies[i % len(bodies)], f"stage-{run}-{i}"
            t0 = time.process_time_ns()
            rows, _ = parse_body(body, "application/json", "rows")
            t1 = time.process_time_ns()
            cols, n, first, last = batch_columns(rows, model, batch_id, 10 ** 7)
            t2 = time.process_time_ns()
            digest = hashlib.sha256(body).hexdigest()
            t3 = time.process_time_ns()
            encode_columns(cols)
            t4 = time.process_time_ns()
            store.add_batch(model["id"], batch_id, cols, n, first, last, digest)  # encodes again, counted out
            t5 = time.process_time_ns()
            for name, ns in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4 - (t4 - t3))):
                spent[name] += ns
        for name in stages:
            best[name] = min(best[name], spent[name] / args.batches / 1e6)
    for name in stages:
        print(f"{name:8s} {best[name]:.3f} ms/batch")
    print(f"{'sum':8s} {sum(best.values()):.3f} ms/batch")

    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json"),
               (b"host", b"127.0.0.1")]

    async def post(batch_id: str, body: bytes) -> None:
        path = "/v1/projects/bench/models/m/batches"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": f"batch_id={batch_id}".encode(), "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000), "state": {},
                 "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        sent, status = False, []

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # never: the app reads the body once
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
        await app(scope, receive, send)
        if status != [201]:
            raise RuntimeError(f"batch {batch_id} answered {status}")

    async def requests(run: int) -> None:
        for i in range(args.batches):
            await post(f"request-{run}-{i}", bodies[i % len(bodies)])

    async def lifespan(runs: int) -> list[float]:
        out = []
        for run in range(runs):
            start = time.process_time()
            await requests(run)
            out.append((time.process_time() - start) / args.batches * 1e3)
        return out

    per_request = asyncio.run(lifespan(args.repeats + 1))[1:]  # the first warms up
    print(f"request  {min(per_request):.3f} ms/batch (the whole request in-process: FastAPI, auth, the ingest "
          "thread and the stages above)")
    store.close()


if __name__ == "__main__":
    main()
