"""The label-free accuracy estimate from the class probabilities the batches logged, with no model
file held: calibrated on the reference's logged probabilities and labels, checked against the
accuracy the labels then show on a known covariate shift."""

import numpy as np
import pytest

from stalwart.monitor.analysis import logged_probabilities

from .conftest import auth

COLUMNS = {"x1": "numeric", "x2": "numeric"}


def _data(rng, n, centre):
    """Two inputs around ``centre``; the label follows x1 + x2 / 2 with noise, the same at every
    centre (covariate shift): nearer the boundary (centre 0), the model is right less often."""
    x = rng.normal(centre, 1.0, (n, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.8, n) > 0).astype(int)
    return x, y


@pytest.fixture(scope="module")
def model():
    from sklearn.linear_model import LogisticRegression

    x, y = _data(np.random.default_rng(0), 4000, 0.5)
    return LogisticRegression().fit(x, y)


def _rows(model, x, y, start, *, reference=False, how="probabilities", threshold=None):
    proba = model.predict_proba(x)
    pred = proba.argmax(1) if threshold is None else (proba[:, 1] >= threshold).astype(int)
    rows = []
    for i in range(len(x)):
        row = {"x1": float(x[i, 0]), "x2": float(x[i, 1]), "prediction": int(pred[i])}
        if how == "probabilities":
            row["probabilities"] = [float(proba[i, 0]), float(proba[i, 1])]
        elif how == "score":
            row["score"] = float(proba[i, 1])
        elif how == "logit":
            row["score"] = float(np.log(proba[i, 1] / proba[i, 0]))
        if reference:
            row["label"] = int(y[i])
        else:
            row["row_id"] = f"r{start + i}"
        rows.append(row)
    return rows, pred


def _register(client, key, name, rows):
    body = {"name": name, "columns": COLUMNS, "classes": [0, 1], "window_rows": 2000, "reference": rows}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(key))
    assert r.status_code == 201, r.text


def _send_window(client, key, name, rows, tag):
    for i in range(4):
        r = client.post(f"/v1/projects/shop/models/{name}/batches", headers=auth(key),
                        json={"batch_id": f"{tag}-{i}", "rows": rows[500 * i:500 * (i + 1)]})
        assert r.status_code == 201, r.text


def test_logged_probabilities_give_the_estimate_without_a_model_file(service, model):
    client, store, admin = service
    rng = np.random.default_rng(1)
    xr, yr = _data(rng, 3000, 1.0)
    _register(client, admin, "proba", _rows(model, xr, yr, 0, reference=True)[0])
    _register(client, admin, "score", _rows(model, xr, yr, 0, reference=True, how="score")[0])
    # window 0 like the reference; window 1 moved to the boundary, where the model errs more
    x0, y0 = _data(rng, 2000, 1.0)
    x1, y1 = _data(rng, 2000, 0.0)
    sent = []
    for w, (x, y) in enumerate(((x0, y0), (x1, y1))):
        rows, pred = _rows(model, x, y, 2000 * w)
        _send_window(client, admin, "proba", rows, f"w{w}")
        _send_window(client, admin, "score", _rows(model, x, y, 2000 * w, how="score")[0], f"w{w}")
        sent.append((pred, y))
    for name in ("proba", "score"):
        assert client.post(f"/v1/projects/shop/models/{name}/analyze", headers=auth(admin)).json()["windows"] == [0, 1]
        labels = [{"row_id": f"r{i}", "label": int(v)} for i, v in enumerate(np.concatenate([y0, y1]))]
        for part in (labels[:2000], labels[2000:]):  # the test service takes 2,000 rows a request
            r = client.post(f"/v1/projects/shop/models/{name}/labels", json={"labels": part}, headers=auth(admin))
            assert r.status_code == 200, r.text
        client.post(f"/v1/projects/shop/models/{name}/analyze", headers=auth(admin))
    by_proba = client.get("/v1/projects/shop/models/proba/windows", headers=auth(admin)).json()["windows"]
    by_score = client.get("/v1/projects/shop/models/score/windows", headers=auth(admin)).json()["windows"]
    realised = [float(np.mean(pred == y)) for pred, y in sent]
    assert realised[1] < realised[0] - 0.05  # the shift costs accuracy (about 0.89 -> 0.80)
    for w in range(len(sent)):
        m = by_proba[w]["metrics"]
        est, acc = m["estimated_accuracy"], m["accuracy"]
        assert acc["value"] == realised[w] and acc["n"] == 2000
        assert est["source"] == "probabilities" and est["n"] == 2000 and est["low"] < est["value"] < est["high"]
        assert abs(est["value"] - acc["value"]) < 0.03, (w, est, acc)  # within a few points, shifted or not
        assert acc["low"] <= est["value"] <= acc["high"]
        # a binary model's score, read as the probability of classes[1], gives the same estimate
        assert by_score[w]["metrics"]["estimated_accuracy"] == est
    # the estimate follows the shift: window 1's is lower, by about the realised drop
    drop = by_proba[0]["metrics"]["estimated_accuracy"]["value"] - by_proba[1]["metrics"]["estimated_accuracy"]["value"]
    assert abs(drop - (realised[0] - realised[1])) < 0.04


def test_what_the_logged_estimate_refuses_is_said(service, model):
    client, store, admin = service
    rng = np.random.default_rng(2)
    xr, yr = _data(rng, 1000, 1.0)
    x, y = _data(rng, 2000, 1.0)
    cases = {
        # predictions made at a threshold of 0.3, not at the top probability: not the argmax's accuracy
        "threshold": (_rows(model, xr, yr, 0, reference=True)[0], _rows(model, x, y, 0, threshold=0.3)[0],
                      "decision threshold"),
        # a reference without probabilities: nothing to calibrate on
        "bare": ([{k: v for k, v in r.items() if k != "probabilities"}
                  for r in _rows(model, xr, yr, 0, reference=True)[0]], _rows(model, x, y, 0)[0],
                 "upload it with 'probabilities' and 'label'"),
        # a score that is a logit, not a probability
        "logit": (_rows(model, xr, yr, 0, reference=True)[0], _rows(model, x, y, 0, how="logit")[0],
                  "not the probability"),
    }
    for name, (reference, rows, message) in cases.items():
        _register(client, admin, name, reference)
        _send_window(client, admin, name, rows, name)
        client.post(f"/v1/projects/shop/models/{name}/analyze", headers=auth(admin))
        (w,) = client.get(f"/v1/projects/shop/models/{name}/windows", headers=auth(admin)).json()["windows"]
        assert "estimated_accuracy" not in w["metrics"], name
        note = w["metrics"]["estimate_note"]
        assert note["value"] is None and message in note["message"], (name, note)
    # without probabilities or scores in the batches, no estimate and no note (as before)
    plain = [{k: v for k, v in r.items() if k != "probabilities"} for r in _rows(model, x, y, 0)[0]]
    _register(client, admin, "plain", _rows(model, xr, yr, 0, reference=True)[0])
    _send_window(client, admin, "plain", plain, "plain")
    client.post("/v1/projects/shop/models/plain/analyze", headers=auth(admin))
    (w,) = client.get("/v1/projects/shop/models/plain/windows", headers=auth(admin)).json()["windows"]
    assert not any(k.startswith("estimate") for k in w["metrics"])


def test_logged_probabilities_are_read_in_class_order_and_rescaled():
    cols = {"prediction": ["a", "b", "a"], "probabilities": [[0.6, 0.2], None, [2.0, 2.0]],
            "score": np.array([np.nan, 0.7, 0.1])}
    p = logged_probabilities(cols, ["a", "b"])
    # the list where sent (rescaled to sum to one), else the score as the probability of "b"
    assert np.allclose(p, [[0.75, 0.25], [0.3, 0.7], [0.5, 0.5]])
    assert logged_probabilities({"prediction": [1, 0]}, [0, 1]) is None


def _body(rows, fmt):
    """``rows`` (with 'probabilities' lists) as a request body: JSON rows, a CSV or Parquet table
    with one probability_<class> column per class (empty in a row without), or Parquet with a list
    column."""
    import io

    import pandas as pd

    if fmt == "json":
        return {"json": {"rows": rows}}
    if fmt != "parquet-list":
        rows = [{**{k: v for k, v in r.items() if k != "probabilities"},
                 **{f"probability_{c}": None if r["probabilities"] is None else r["probabilities"][c] for c in (0, 1)}}
                for r in rows]
    frame = pd.DataFrame(rows)
    if fmt == "csv":
        return {"content": frame.to_csv(index=False).encode(), "headers": {"Content-Type": "text/csv"}}
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return {"content": buf.getvalue(), "headers": {"Content-Type": "application/vnd.apache.parquet"}}


def _send(client, method, url, key, rows, fmt):
    body = _body(rows, fmt)
    r = client.request(method, url, **{**body, "headers": {**body.get("headers", {}), **auth(key)}})
    assert r.status_code in (200, 201), r.text


def test_probabilities_as_json_csv_or_parquet_are_stored_alike_and_give_the_same_estimate(service, model):
    import sqlalchemy as sa

    from stalwart.monitor.store import batches, reference_sets

    client, store, admin = service
    rng = np.random.default_rng(3)
    xr, yr = _data(rng, 1000, 1.0)
    x, y = _data(rng, 2000, 0.5)
    reference = _rows(model, xr, yr, 0, reference=True)[0]
    window, pred = _rows(model, x, y, 0)
    for i, r in enumerate(window):
        r["timestamp"] = 1_700_000_000.0 + i  # stamped by the sender, so the stored bytes do not hang on arrival
        if i % 50 == 7:
            r["probabilities"] = None  # a row logged without: null, or empty cells
    formats = ("json", "csv", "parquet", "parquet-list")
    ids = {}
    for fmt in formats:
        r = client.post("/v1/projects/shop/models", headers=auth(admin),
                        json={"name": fmt, "columns": COLUMNS, "classes": [0, 1], "window_rows": 2000})
        assert r.status_code == 201, r.text
        ids[fmt] = r.json()["id"]
        _send(client, "PUT", f"/v1/projects/shop/models/{fmt}/reference", admin, reference, fmt)
        for i in range(4):
            _send(client, "POST", f"/v1/projects/shop/models/{fmt}/batches?batch_id={fmt}-{i}", admin,
                  window[500 * i:500 * (i + 1)], fmt)
    with store.engine.connect() as conn:
        stored = {fmt: ([conn.execute(sa.select(reference_sets.c.data).where(reference_sets.c.model_id == mid)).scalar()]
                        + list(conn.execute(sa.select(batches.c.data).where(batches.c.model_id == mid)
                                            .order_by(batches.c.id)).scalars()))
                  for fmt, mid in ids.items()}
    assert all(len(blobs) == 5 for blobs in stored.values())
    for fmt in formats[1:]:
        assert [bytes(b) for b in stored[fmt]] == [bytes(b) for b in stored["json"]], fmt
    first = store.batch_data(ids["csv"], 0, 10 ** 9)[0]["probabilities"]
    assert first[7] is None and first[0] == [float(v) for v in window[0]["probabilities"]]

    labels = [{"row_id": f"r{i}", "label": int(v)} for i, v in enumerate(y)]
    estimates = {}
    for fmt in formats:
        client.post(f"/v1/projects/shop/models/{fmt}/analyze", headers=auth(admin))
        r = client.post(f"/v1/projects/shop/models/{fmt}/labels", json={"labels": labels}, headers=auth(admin))
        assert r.status_code == 200, r.text
        client.post(f"/v1/projects/shop/models/{fmt}/analyze", headers=auth(admin))
        (w,) = client.get(f"/v1/projects/shop/models/{fmt}/windows", headers=auth(admin)).json()["windows"]
        estimates[fmt] = (w["metrics"]["estimated_accuracy"], w["metrics"]["accuracy"])
    est, acc = estimates["json"]
    assert all(estimates[fmt] == (est, acc) for fmt in formats), estimates
    assert est["source"] == "probabilities" and est["n"] == 2000 - 40  # the rows that logged probabilities
    assert acc["value"] == float(np.mean(pred == y)) and abs(est["value"] - acc["value"]) < 0.03


def test_an_input_column_named_as_a_class_probability_is_refused_at_registration(service):
    client, _, admin = service
    for classes, column in (([0, 1], "probability_1"), (["no", "yes"], "probability_yes"),
                            ([False, True], "probability_True")):
        r = client.post("/v1/projects/shop/models", headers=auth(admin),
                        json={"name": "m", "columns": {"x": "numeric", column: "numeric"}, "classes": classes})
        assert r.status_code == 422 and f"columns ['{column}'] use reserved names" in r.text, r.text
        assert "probability_<class> for each class" in r.text
    # another class's name is an input like any other
    r = client.post("/v1/projects/shop/models", headers=auth(admin),
                    json={"name": "m", "columns": {"x": "numeric", "probability_2": "numeric"}, "classes": [0, 1]})
    assert r.status_code == 201, r.text
