"""The monitoring dashboard's model page with many windows stored: server time per page, p50/p95.

    python benchmarks/bench_monitor_dashboard.py                  # 1,000 windows, 25 columns
    python benchmarks/bench_monitor_dashboard.py --windows 5000 --requests 20

A SQLite file in a temporary directory gets one model of 25 input columns and ``--windows`` analysed
windows, written through the store as the analysis writes them (drift share, prediction drift,
realised and estimated accuracy, OOD rate, a robustness probe over five perturbations, the online
drift test, a 26-row drift table each), two alert rules and 50 transitions. The pages are fetched
in-process (FastAPI's TestClient, logged in with a read key), so the figure is the server's time
to build and send a page, without a network or a browser. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from stalwart.monitor import Settings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PROBES = ("gaussian_noise", "missing_values", "stuck_sensor", "feature_noise", "scaling")


def metric(value, low=None, high=None, n=None):
    return {"value": float(value), "low": None if low is None else float(low),
            "high": None if high is None else float(high), "n": n}


def fill(store, model_id: int, n_windows: int, columns: list[str], rng: np.random.Generator) -> None:
    start = time.time() - n_windows * 3600
    for seq in range(n_windows):
        drifted = rng.random(len(columns)) < (0.05 if seq < n_windows * 0.8 else 0.4)
        share = drifted.mean()
        acc = 0.9 - 0.1 * (seq > n_windows * 0.8) + rng.normal(0, 0.01)
        metrics = {"n_rows": metric(1000, n=1000), "drift_share": metric(share, max(0, share - 0.1), share + 0.1, 25),
                   "n_drifted": metric(drifted.sum(), n=25), "drifted": metric(float(drifted.any()), n=25),
                   "prediction_drift": metric(float(share > 0.2)), "prediction_drift_statistic": metric(share / 2),
                   "accuracy": metric(acc, acc - 0.02, acc + 0.02, 1000), "n_labelled": metric(1000, n=1000),
                   "estimated_accuracy": metric(acc + 0.01, acc - 0.01, acc + 0.03, 1000),
                   "ood_rate": metric(0.05 + share / 4, 0.04, 0.2, 1000), "drift_p_value": metric(10 ** -(share * 20)),
                   "online_level": metric(0.05 / (seq + 1) ** 1.1), "probe_accuracy_clean": metric(acc),
                   **{f"probe_accuracy_{p}": metric(acc - 0.05 * (i + 1), n=200) for i, p in enumerate(PROBES)},
                   **{f"probe_stability_{p}": metric(0.95 - 0.03 * i, n=200) for i, p in enumerate(PROBES)},
                   "probe_accuracy": metric(acc - 0.25, n=200), "probe_stability": metric(0.8, n=200),
                   # the default stream (ADWIN on the output) and one on a column, alarms after the shift
                   "stream_changes_output_adwin": metric(float(seq > n_windows * 0.8 and seq % 7 == 0), n=1000),
                   "stream_changes_x0_page_hinkley": metric(float(seq % 50 == 0), n=1000),
                   "stream_changes": metric(float(seq > n_windows * 0.8 and seq % 7 == 0) + float(seq % 50 == 0),
                                            n=2000)}
        table = [{"feature": c, "test": "ks", "statistic": float(rng.random()), "p_value": float(rng.random()),
                  "threshold": 0.002, "drifted": bool(d), "kind": "numeric", "current_kind": None}
                 for c, d in zip(columns, drifted)]
        table.append({"feature": "<prediction>", "test": "chi2", "statistic": 0.1, "p_value": 0.5, "threshold": 0.05,
                      "drifted": False, "kind": "categorical", "current_kind": None})
        store.add_window(model_id, seq=seq, first_batch=seq, last_batch=seq, n_rows=1000,
                         start_ts=start + seq * 3600, end_ts=start + seq * 3600 + 3599, n_labelled=1000,
                         metrics=metrics, drift=table)


def timed(client, path: str, n: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text[:300]
        size = len(r.content)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(25)]
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(db=f"sqlite:///{Path(tmp) / 'monitor.db'}", worker=False))
        store = app.state.store
        pid = store.project_id("shop", create=True)
        model = store.add_model(pid, "churn", "classification", [0, 1], dict.fromkeys(columns, "numeric"),
                                {"window_rows": 1000})
        t = time.perf_counter()
        fill(store, model["id"], args.windows, columns, rng)
        print(f"{args.windows} windows written in {time.perf_counter() - t:.1f} s")
        for name, cond in (("drift", "drift_share <= 0.2"), ("accuracy", "accuracy >= 0.85")):
            store.add_rule(model["id"], name, cond, 1, None)
        from stalwart.monitor.alerts import judge_rules

        judge_rules(store, model["id"])
        read = store.create_key("shop", "read")
        with TestClient(app) as client:
            assert client.post("/dashboard/login", data={"key": read}, follow_redirects=False).status_code == 303
            rows = []
            for label, path in (("model page (default: newest 200)", "/dashboard/models/churn"),
                                (f"model page, all {args.windows} windows", f"/dashboard/models/churn?windows={args.windows}"),
                                ("models list", "/dashboard")):
                timed(client, path, 2)  # warm up
                times, size = timed(client, path, args.requests)
                times.sort()
                p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
                rows.append((label, statistics.median(times) * 1000, p95 * 1000, size / 1024))
        store.close()
    print(f"{'page':42s} {'p50 ms':>8s} {'p95 ms':>8s} {'KiB':>8s}")
    for label, p50, p95, kib in rows:
        print(f"{label:42s} {p50:8.1f} {p95:8.1f} {kib:8.0f}")


if __name__ == "__main__":
    main()
