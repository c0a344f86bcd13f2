"""Windows and their analysis: a planted shift is flagged on its column only, labels that arrive
later give the exact realised accuracy."""

import math

import numpy as np
from scipy import stats

from .conftest import COLUMNS, auth, register, table_rows

MODEL = "/v1/projects/shop/models/churn"


def _send(client, key, rows, batch_id):
    r = client.post(MODEL + "/batches", json={"batch_id": batch_id, "rows": rows}, headers=auth(key))
    assert r.status_code == 201, r.text


def _wilson(k, n, z=1.959963984540054):
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def test_windows_are_cut_by_rows_and_a_planted_shift_is_flagged_on_its_column_only(service):
    client, store, admin = service
    register(client, admin, window_rows=500, reference_n=1000, seed=0)
    rng = np.random.default_rng(11)
    clean = table_rows(rng, 500, start=0)
    shifted = table_rows(rng, 500, shift_b=1.0, start=500)
    for i in range(5):  # window 0: five clean batches of 100 rows; window 1: shifted
        _send(client, admin, clean[100 * i:100 * (i + 1)], f"clean-{i}")
    for i in range(5):
        _send(client, admin, shifted[100 * i:100 * (i + 1)], f"shift-{i}")
    _send(client, admin, table_rows(rng, 50, start=1000), "partial")  # not yet a window
    assert client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"] == []
    assert client.post(MODEL + "/analyze", headers=auth(admin)).json()["windows"] == [0, 1]
    w0, w1 = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    assert (w0["n_rows"], w1["n_rows"]) == (500, 500)

    # the independent expectation: two-sample KS (numeric) and chi-square (categorical) p-values
    # against the reference, Bonferroni over the four columns
    ref = table_rows(np.random.default_rng(0), 1000)
    for window, rows in ((w0, clean), (w1, shifted)):
        expected = {}
        for col, kind in COLUMNS.items():
            r, c = [x[col] for x in ref], [x[col] for x in rows]
            if kind == "categorical":
                cats = sorted(set(r) | set(c))
                table = [[r.count(k) for k in cats], [c.count(k) for k in cats]]
                p = stats.chi2_contingency(table, correction=False)[1]
            else:
                p = stats.ks_2samp(r, c).pvalue
            expected[col] = p <= 0.05 / len(COLUMNS)
        flagged = {row["feature"]: row["drifted"] for row in window["drift"] if row["feature"] in COLUMNS}
        assert flagged == expected
    assert [c for c, d in expected.items() if d] == ["b"]  # the shifted window flags b and nothing else
    share = w1["metrics"]["drift_share"]
    assert (share["value"], share["n"]) == (0.25, 4)
    assert np.allclose((share["low"], share["high"]), _wilson(1, 4))
    assert w0["metrics"]["drift_share"]["value"] == 0.0 and w1["metrics"]["drifted"]["value"] == 1.0
    # a second pass finds nothing new: each window is judged once
    assert client.post(MODEL + "/analyze", headers=auth(admin)).json()["windows"] == []


def test_labels_arriving_later_give_the_exact_accuracy(service):
    client, store, admin = service
    register(client, admin, window_rows=200)
    rng = np.random.default_rng(5)
    rows = table_rows(rng, 200)
    _send(client, admin, rows[:120], "b0")
    _send(client, admin, rows[120:], "b1")
    client.post(MODEL + "/analyze", headers=auth(admin))
    (w,) = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    assert "accuracy" not in w["metrics"] and w["n_labelled"] == 0

    truth = rng.integers(0, 2, 200)
    labelled = rng.choice(200, 150, replace=False)  # labels for 150 rows, sent as CSV and JSON
    csv = "row_id,label\n" + "".join(f"r{i},{truth[i]}\n" for i in labelled[:70])
    r = client.post(MODEL + "/labels", content=csv, headers={**auth(admin), "Content-Type": "text/csv"})
    assert r.json() == {"labels": 70}
    r = client.post(MODEL + "/labels", json={"labels": [{"row_id": f"r{i}", "label": int(truth[i])}
                                                        for i in labelled[70:]]}, headers=auth(admin))
    assert r.json() == {"labels": 80}
    assert client.post(MODEL + "/analyze", headers=auth(admin)).json()["relabelled"] == 1
    (w,) = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    correct = sum(rows[i]["prediction"] == truth[i] for i in labelled)
    acc = w["metrics"]["accuracy"]
    assert (acc["value"], acc["n"], w["n_labelled"]) == (correct / 150, 150, 150)
    assert np.allclose((acc["low"], acc["high"]), _wilson(correct, 150))
    r = client.post(MODEL + "/labels", json={"labels": [{"row_id": "r0", "label": 5}]}, headers=auth(admin))
    assert r.status_code == 422 and "not one of the model's classes" in r.json()["detail"]


def test_a_time_window_closes_when_a_batch_starts_past_its_span(service):
    client, store, admin = service
    register(client, admin, window_rows=1000, window_seconds=3600)
    rng = np.random.default_rng(7)
    t0 = 1_700_000_000.0
    starts = [0, 600, 1800, 3500, 3700, 5000, 7400]  # seconds after t0, one batch of 60 rows each
    for i, start in enumerate(starts):
        rows = [{**r, "timestamp": t0 + start + j} for j, r in enumerate(table_rows(rng, 60, start=60 * i))]
        _send(client, admin, rows, f"t{i}")
    assert client.post(MODEL + "/analyze", headers=auth(admin)).json()["windows"] == [0, 1]
    w0, w1 = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    # [t0, t0 + 1 h) holds the batches at 0, 600, 1800 and 3500 s; the one at 3700 s starts the next
    # window, which the batch at 7400 s (>= 3700 + 3600) closes; that batch waits for the next one
    assert (w0["n_rows"], w0["start_ts"], w0["end_ts"]) == (240, t0, t0 + 3559)
    assert (w1["n_rows"], w1["start_ts"], w1["end_ts"]) == (120, t0 + 3700, t0 + 5059)


def test_one_failing_model_does_not_stop_the_others(service, monkeypatch):
    import stalwart.monitor.analysis as analysis
    from stalwart.monitor import analyze

    client, store, admin = service
    good = register(client, admin, name="good", window_rows=100)
    bad = register(client, admin, name="bad", window_rows=100)
    rows = table_rows(np.random.default_rng(9), 100)
    for name in ("good", "bad"):
        r = client.post(f"/v1/projects/shop/models/{name}/batches", json={"batch_id": "b", "rows": rows},
                        headers=auth(admin))
        assert r.status_code == 201
    real = analysis.window_metrics

    def broken(reference, window, model, **kwargs):
        if model["name"] == "bad":
            raise RuntimeError("planted failure")
        return real(reference, window, model, **kwargs)

    monkeypatch.setattr(analysis, "window_metrics", broken)
    out = analyze(store)
    assert out["windows"] == {good["id"]: [0]} and out["errors"] == {bad["id"]: "RuntimeError: planted failure"}
    monkeypatch.setattr(analysis, "window_metrics", real)
    assert analyze(store)["windows"] == {bad["id"]: [0]}  # retried on the next pass


def test_a_regression_model_gets_prediction_drift_and_the_exact_mae(service):
    client, store, admin = service
    rng = np.random.default_rng(12)
    x = rng.normal(size=600)
    ref = [{"x": float(v), "prediction": float(2 * v), "row_id": f"ref{i}"} for i, v in enumerate(x[:400])]
    r = client.post("/v1/projects/shop/models", headers=auth(admin), json={
        "name": "price", "columns": {"x": "numeric"}, "task": "regression", "window_rows": 200, "reference": ref})
    assert r.status_code == 201, r.text
    path = "/v1/projects/shop/models/price"
    rows = [{"x": float(v), "prediction": float(2 * v + 3), "row_id": f"r{i}"} for i, v in enumerate(x[400:])]
    assert client.post(path + "/batches", json={"batch_id": "b", "rows": rows}, headers=auth(admin)).status_code == 201
    truth = 2 * x[400:] + rng.normal(size=200)
    client.post(path + "/labels", json={"labels": [{"row_id": f"r{i}", "label": float(t)} for i, t in
                                                   enumerate(truth)]}, headers=auth(admin))
    client.post(path + "/analyze", headers=auth(admin))
    (w,) = client.get(path + "/windows", headers=auth(admin)).json()["windows"]
    err = np.abs(np.array([r["prediction"] for r in rows]) - truth)
    half = 1.96 * err.std(ddof=1) / np.sqrt(200)
    mae = w["metrics"]["mae"]
    assert np.allclose([mae["value"], mae["low"], mae["high"]], [err.mean(), err.mean() - half, err.mean() + half])
    assert w["metrics"]["drift_share"]["value"] == 0.0  # the inputs did not move
    assert w["metrics"]["prediction_drift"]["value"] == 1.0  # the predictions moved by 3
