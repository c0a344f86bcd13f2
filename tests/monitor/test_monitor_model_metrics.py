"""What a window reports beyond drift: OOD rate against the reference's own false alarms, the
label-free accuracy estimate, the robustness probe (with the model file the service holds), the
online control of false discoveries across windows, and the model-file upload itself."""

import math
import warnings

import numpy as np
import pytest
import sqlalchemy as sa

from stalwart.monitor.analysis import (
    OOD_FPR,
    fit_ood,
    lond,
    lond_gamma,
    ood_metrics,
    probe_metrics,
    run_probe,
)

from .conftest import auth

MODEL = "/v1/projects/shop/models/credit"
COLUMNS = {"a": "numeric", "b": "numeric", "d": "integer", "c": "categorical"}


def _wilson(k, n, z=1.959963984540054):
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def _data(rng, n, shift=0.0):
    """Inputs, and a label that a logistic model of a, b, d gets right about 85% of the time."""
    a, b = rng.normal(shift, 1.0, n), rng.normal(shift, 1.0, n)
    d = rng.integers(0, 30, n).astype(float) + (10 * shift if shift else 0.0)
    c = rng.choice(["x", "y"], n)
    y = (a + 0.5 * b + 0.05 * (d - 15) + rng.normal(0, 0.6, n) > 0).astype(int)
    return {"a": a, "b": b, "d": d, "c": c}, y


def _fitted():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    x, y = _data(np.random.default_rng(100), 3000)
    frame = pd.DataFrame({k: x[k] for k in ("a", "b", "d")})
    return LogisticRegression().fit(frame, y)


@pytest.fixture(scope="module")
def skops_file(tmp_path_factory):
    import skops.io as sio

    model = _fitted()
    path = tmp_path_factory.mktemp("model") / "model.skops"
    sio.dump(model, path)
    return model, path.read_bytes()


def _rows(x, y, predictions, start, labels=False):
    out = []
    for i in range(len(y)):
        row = {"a": float(x["a"][i]), "b": float(x["b"][i]), "d": float(x["d"][i]), "c": str(x["c"][i]),
               "prediction": int(predictions[i])}
        if labels:
            row["label"] = int(y[i])
        else:
            row["row_id"] = f"r{start + i}"
        out.append(row)
    return out


def _predict(model, x):
    import pandas as pd

    return model.predict(pd.DataFrame({k: x[k] for k in ("a", "b", "d")}))


def _register(client, key, model, window_rows=2000):
    x, y = _data(np.random.default_rng(1), 2000)
    body = {"name": "credit", "columns": COLUMNS, "task": "classification", "classes": [0, 1],
            "window_rows": window_rows, "reference": _rows(x, y, _predict(model, x), 0, labels=True)}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(key))
    assert r.status_code == 201, r.text


def _send(client, key, rows, batch_id):
    r = client.post(MODEL + "/batches", json={"batch_id": batch_id, "rows": rows}, headers=auth(key))
    assert r.status_code == 201, r.text


# -- online FDR across windows --------------------------------------------------------------------------
def _lond_by_hand(p, alpha):
    out, found = [], 0
    for j, pj in enumerate(p, start=1):
        gamma = 0.07720838 * math.log(max(j, 2)) / (j * math.exp(math.sqrt(math.log(j))))
        level = alpha * gamma * (found + 1)
        out.append((pj <= level, level))
        found += pj <= level
    return out


def test_lond_levels_follow_the_closed_form_and_continue_across_calls():
    p = [1e-4, 0.3, 2e-3, 1e-6, 0.9, 1e-3, 0.04, 1e-5]
    rejected, levels = lond(p, alpha=0.1)
    expected = _lond_by_hand(p, 0.1)
    assert rejected.tolist() == [r for r, _ in expected]
    assert np.allclose(levels, [v for _, v in expected], rtol=1e-12)
    # every test rejected: D_{t-1} = t - 1, so the level is alpha * gamma_t * t exactly
    t = np.arange(1, 51)
    assert np.allclose(lond(np.zeros(50), 0.05)[1], 0.05 * lond_gamma(t) * t)
    # a stream tested in two calls gives the same levels as in one
    r1, l1 = lond(p[:3], 0.1)
    r2, l2 = lond(p[3:], 0.1, tests_before=3, discoveries_before=int(r1.sum()))
    assert np.array_equal(np.concatenate([r1, r2]), rejected) and np.allclose(np.concatenate([l1, l2]), levels)
    # the weights are a budget: their partial sums stay below one
    assert lond_gamma(np.arange(1, 1_000_001)).sum() < 1.0


def test_lond_false_alarm_rate_on_null_streams_matches_its_closed_form():
    # with every hypothesis null and independent, no discovery happens until the first one, so
    # P(any discovery in T tests) = 1 - prod_t (1 - alpha gamma_t) exactly; FDR = that probability
    alpha, T, streams = 0.2, 20, 5_000
    p = np.random.default_rng(7).random((streams, T))
    any_rejection = np.array([lond(row, alpha)[0].any() for row in p])
    exact = 1 - np.prod(1 - alpha * lond_gamma(np.arange(1, T + 1)))
    se = math.sqrt(exact * (1 - exact) / streams)
    assert abs(any_rejection.mean() - exact) < 4 * se
    assert exact <= alpha


# -- OOD ----------------------------------------------------------------------------------------------
def test_ood_rate_is_the_false_alarm_rate_in_distribution_and_near_one_far_out():
    kinds = {k: v for k, v in COLUMNS.items()}
    ref, _ = _data(np.random.default_rng(2), 4000)
    fitted = fit_ood({"inputs": ref}, kinds)
    assert fitted["columns"] == ["a", "b", "d"]  # the categorical column is left to the drift tests
    alarms, n_base = fitted["baseline"]
    assert n_base == 1000
    same, _ = _data(np.random.default_rng(3), 5000)
    m = ood_metrics(fitted, {"inputs": same, "prediction": [0] * 5000}, seed=0)
    rate, base = m["ood_rate"], m["ood_baseline"]
    assert rate["n"] == 5000 and (base["value"], base["n"]) == (alarms / 1000, 1000)
    # the conformal threshold flags fresh in-distribution rows at about OOD_FPR (exactly so on
    # average over calibration sets; this one's rate varies with them by about 0.007): the window's
    # rate lies within the baseline's interval, and both near OOD_FPR
    assert base["low"] <= rate["value"] <= base["high"]
    assert abs(rate["value"] - OOD_FPR) < 0.02 and abs(base["value"] - OOD_FPR) < 0.02
    assert np.allclose((rate["low"], rate["high"]), _wilson(round(rate["value"] * 5000), 5000))
    far, _ = _data(np.random.default_rng(4), 5000, shift=6.0)
    assert ood_metrics(fitted, {"inputs": far, "prediction": [0] * 5000}, seed=0)["ood_rate"]["value"] >= 0.99
    # a larger window is scored on a seeded sample of OOD_SAMPLE rows
    big, _ = _data(np.random.default_rng(5), 12_000)
    assert ood_metrics(fitted, {"inputs": big, "prediction": [0] * 12_000}, seed=1)["ood_rate"]["n"] == 5000


# -- the robustness probe ---------------------------------------------------------------------------------
def test_probe_stability_falls_as_the_noise_grows():
    from stalwart import wrap

    model = wrap(_fitted())
    x, y = _data(np.random.default_rng(6), 500)
    arr = np.column_stack([x["a"], x["b"], x["d"]])
    probes = tuple(("feature_noise", s) for s in range(1, 6))
    result = run_probe(model, arr, ["a", "b", "d"], {"a": "numeric", "b": "numeric", "d": "integer"}, seed=3,
                       probes=probes)
    result["rows"] = [f"r{i}" for i in range(500)]
    m = probe_metrics(result, {f"r{i}": int(y[i]) for i in range(500)})
    stab = [m[f"probe_stability_feature_noise_{s}"]["value"] for s in range(1, 6)]
    assert stab == sorted(stab, reverse=True) and stab[0] > 0.9
    assert m["probe_stability_feature_noise_5"]["high"] < m["probe_stability_feature_noise_1"]["low"]
    assert m["probe_stability"] == m["probe_stability_feature_noise_5"]  # the headline is the worst probe
    # the same counts computed here from the stored predictions
    clean = np.array(result["clean"])
    moved = np.array(result["feature_noise_5"])
    assert stab[4] == np.mean(clean == moved)
    assert m["probe_accuracy_clean"]["value"] == np.mean(clean == y)
    assert m["probe_accuracy_feature_noise_5"]["value"] == np.mean(moved == y) < np.mean(clean == y)
    assert m["probe_accuracy"]["value"] == min(m[f"probe_accuracy_feature_noise_{s}"]["value"] for s in range(1, 6))


# -- end to end through the service --------------------------------------------------------------------
def test_model_upload_is_checked_and_refused_with_the_loaders_message(service, skops_file, tmp_path):
    client, store, admin = service
    model, blob = skops_file
    _register(client, admin, model)
    put = MODEL + "/artifact"
    r = client.put(put, content=b"this is not a model", headers=auth(admin))
    assert r.status_code == 422 and "onnxruntime cannot load the uploaded file" in r.json()["detail"], r.text
    import pickle

    r = client.put(put, content=pickle.dumps(model), headers=auth(admin), params={"format": "skops"})
    assert r.status_code == 422 and "not a readable skops file" in r.json()["detail"]
    assert "/tmp" not in r.json()["detail"]  # the temporary path is not shown
    r = client.put(put, content=blob, headers=auth(admin), params={"format": "pickle"})
    assert r.status_code == 422  # not a format the service loads
    r = client.put(put, content=blob, headers=auth(store.create_key("shop", "ingest")))
    assert r.status_code == 403
    assert client.get(MODEL, headers=auth(admin)).json()["artifact"] is None
    from skl2onnx import to_onnx

    onnx = to_onnx(model, np.zeros((1, 3), dtype=np.float32), options={"zipmap": False}).SerializeToString()
    r = client.put(put, content=onnx, headers=auth(admin))
    assert r.status_code == 200 and r.json()["format"] == "onnx", r.text
    r = client.put(put, content=blob, headers=auth(admin))  # replaces it
    assert r.status_code == 200, r.text
    info = r.json()
    assert (info["format"], info["n_bytes"]) == ("skops", len(blob)) and len(info["sha256"]) == 64
    assert client.get(MODEL, headers=auth(admin)).json()["artifact"]["sha256"] == info["sha256"]


def test_torchscript_is_taken_and_a_pickled_torch_module_refused(service):
    import io

    import torch

    client, store, admin = service
    _register(client, admin, _fitted(), window_rows=500)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    pickled = io.BytesIO()
    torch.save(net, pickled)
    r = client.put(MODEL + "/artifact", content=pickled.getvalue(), headers=auth(admin))
    assert r.status_code == 422 and "runs arbitrary code" in r.json()["detail"]
    assert "never loads files that run code" in r.json()["detail"]
    wrong, script = io.BytesIO(), io.BytesIO()
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), wrong)  # takes 2 columns, not a, b, d
        torch.jit.save(torch.jit.script(net), script)
    r = client.put(MODEL + "/artifact", content=wrong.getvalue(), headers=auth(admin))
    assert r.status_code == 422 and "does not run on the reference rows" in r.json()["detail"]
    r = client.put(MODEL + "/artifact", content=script.getvalue(), headers=auth(admin))
    assert r.status_code == 200 and r.json()["format"] == "torchscript", r.text
    # the worker runs the TorchScript model on a window: its own predictions, its own probe
    x, y = _data(np.random.default_rng(9), 500)
    _send(client, admin, _rows(x, y, np.zeros(500, dtype=int), 0), "w0")
    client.post(MODEL + "/analyze", headers=auth(admin))
    (w,) = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    probe = store.window_details(w["id"])["probe"]
    with torch.no_grad():
        own = net(torch.tensor(np.column_stack([x["a"], x["b"], x["d"]]), dtype=torch.float32)).argmax(1).numpy()
    assert probe["clean"] == own.tolist()  # the sample is the whole 500-row window, in order
    assert w["metrics"]["probe_stability_feature_noise_2"]["n"] == 500
    assert "estimated_accuracy" in w["metrics"] and not any(k.endswith("_note") for k in w["metrics"])


def test_model_upload_over_the_size_limit_is_a_413(db_url, skops_file):
    from fastapi.testclient import TestClient

    from stalwart.monitor import Settings, create_app

    model, blob = skops_file
    app = create_app(Settings(db=db_url, worker=False, max_model_bytes=len(blob) - 1))
    with TestClient(app) as client:
        key = app.state.store.create_key("shop", "admin")
        _register(client, key, model)
        r = client.put(MODEL + "/artifact", content=blob, headers=auth(key))
        assert r.status_code == 413 and "max_model_bytes" in r.json()["detail"]
    app.state.store.close()


def test_a_window_reports_ood_estimated_accuracy_and_probe_and_rules_read_them(service, skops_file):
    client, store, admin = service
    model, blob = skops_file
    _register(client, admin, model)
    assert client.put(MODEL + "/artifact", content=blob, headers=auth(admin)).status_code == 200
    for name, cond in (("ood", "ood_rate <= 0.1"), ("est", "estimated_accuracy >= 0.9"),
                       ("stab", "probe_stability >= 0.95")):
        r = client.post(MODEL + "/rules", json={"name": name, "condition": cond}, headers=auth(admin))
        assert r.status_code == 201, r.text
    rng = np.random.default_rng(8)
    x0, y0 = _data(rng, 2000)  # window 0: as the reference
    x1, y1 = _data(rng, 2000, shift=6.0)  # window 1: far out
    p0, p1 = _predict(model, x0), _predict(model, x1)
    for i in range(4):
        part = {k: v[500 * i:500 * (i + 1)] for k, v in x0.items()}
        _send(client, admin, _rows(part, y0[500 * i:500 * (i + 1)], p0[500 * i:500 * (i + 1)], 500 * i), f"w0-{i}")
    for i in range(4):
        part = {k: v[500 * i:500 * (i + 1)] for k, v in x1.items()}
        _send(client, admin, _rows(part, y1[500 * i:500 * (i + 1)], p1[500 * i:500 * (i + 1)], 2000 + 500 * i),
              f"w1-{i}")
    assert client.post(MODEL + "/analyze", headers=auth(admin)).json()["windows"] == [0, 1]
    w0, w1 = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    m0, m1 = w0["metrics"], w1["metrics"]
    assert m0["ood_rate"]["high"] >= m0["ood_baseline"]["low"] and m0["ood_rate"]["value"] < 0.1
    assert m1["ood_rate"]["value"] >= 0.99
    # the unshifted window: the estimate agrees with the accuracy the labels will show
    est = m0["estimated_accuracy"]
    assert est["n"] == 2000 and est["low"] < est["value"] < est["high"]
    assert m0["probe_stability"]["n"] == 500 and 0.5 < m0["probe_stability"]["value"] <= 1.0
    assert {k for k in m0 if k.startswith("probe_stability_")} == {
        "probe_stability_feature_noise_2", "probe_stability_feature_noise_4", "probe_stability_stuck_sensor_3",
        "probe_stability_attack_pgd"}  # the logistic regression has a torch mirror: it is attacked too
    # a linear model flips under an linf attack of eps (in units of each column's range r_j) exactly
    # where |w.x + b| <= eps * sum_j |w_j| r_j: PGD should find every such row and no other
    import pandas as pd

    from stalwart.monitor.analysis import ATTACK_EPS

    probe = store.window_details(w0["id"])["probe"]
    rows = [int(r[1:]) for r in probe["rows"]]
    xr, _ = _data(np.random.default_rng(1), 2000)  # the reference, as registered
    both = {k: np.concatenate([xr[k], x0[k][rows]]) for k in ("a", "b", "d")}
    reach = ATTACK_EPS * sum(abs(w) * (both[k].max() - both[k].min()) for w, k in zip(model.coef_[0], "abd"))
    margin = model.decision_function(pd.DataFrame({k: x0[k][rows] for k in ("a", "b", "d")}))
    attacked = m0["probe_stability_attack_pgd"]
    assert attacked["n"] == 500 and abs(attacked["value"] - np.mean(np.abs(margin) > reach)) <= 0.01
    assert attacked["value"] < m0["probe_stability"]["value"]  # the attack is the harder test
    # LogisticRegression takes no missing values: that probe says so instead of a figure
    assert "missing" in store.window_details(w0["id"])["probe"]["missing_values_2"]["error"].lower()
    # a reference over 1,000 rows is judged by distances; the online test runs on KS / chi-square
    assert (m0["drifted_online"]["value"], m1["drifted_online"]["value"]) == (0.0, 1.0)
    assert "probe_accuracy" not in m0  # no labels yet
    alerts = {a["rule"]: a["to_state"] for a in client.get(MODEL + "/alerts", headers=auth(admin)).json()["alerts"]
              if a["window_seq"] == 1}
    assert alerts.get("ood") == "firing"

    labels = [{"row_id": f"r{i}", "label": int(y0[i])} for i in range(2000)]
    assert client.post(MODEL + "/labels", json={"labels": labels}, headers=auth(admin)).status_code == 200
    client.post(MODEL + "/analyze", headers=auth(admin))
    w0 = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"][0]
    acc = w0["metrics"]["accuracy"]
    assert acc["value"] == np.mean(p0 == y0)
    assert acc["low"] <= est["value"] <= acc["high"]  # the estimate lies within the realised accuracy's interval
    assert abs(est["value"] - acc["value"]) < 0.03
    probe = store.window_details(w0["id"])["probe"]
    rows = [int(r[1:]) for r in probe["rows"]]
    assert w0["metrics"]["probe_accuracy_clean"]["value"] == np.mean(p0[rows] == y0[rows])
    assert w0["metrics"]["probe_accuracy"]["n"] == 500


@pytest.mark.parametrize("reference_n", [1000, 2000])
def test_windows_are_tested_online_with_lond_levels(service, reference_n):
    from stalwart.monitor.analysis import pooled_chi2
    from stalwart.shift import univariate as uv

    from .conftest import register, table_rows

    client, store, admin = service
    path = "/v1/projects/shop/models/churn"
    # 1,000 reference rows: KS and chi-square judge the columns; 2,000: distances (no p-value of
    # their own), and the online test takes its p-values from KS / chi-square beside them
    register(client, admin, window_rows=500, reference_n=reference_n)
    rng = np.random.default_rng(11)
    shifts = [0.0, 1.0, 0.0, 1.0]
    sent = []
    for w, shift in enumerate(shifts):
        rows = table_rows(rng, 500, shift_b=shift, start=500 * w)
        sent.append(rows)
        r = client.post(path + "/batches", json={"batch_id": f"w{w}", "rows": rows}, headers=auth(admin))
        assert r.status_code == 201
    client.post(path + "/analyze", headers=auth(admin))
    windows = client.get(path + "/windows", headers=auth(admin)).json()["windows"]
    reference = table_rows(np.random.default_rng(0), reference_n)
    p = []
    for w, rows in zip(windows, sent):
        cols = {row["feature"]: row for row in w["drift"] if row["feature"] != "<prediction>"}
        assert {c: row["test"] for c, row in cols.items()} == (
            {"a": "ks", "b": "ks", "c": "chi2", "d": "ks"} if reference_n <= 1000 else
            {"a": "wasserstein", "b": "wasserstein", "c": "jensen_shannon", "d": "wasserstein"})
        assert {c: row["online_test"] for c, row in cols.items()} == {"a": "ks", "b": "ks", "c": "chi2", "d": "ks"}
        # each column's online p-value, recomputed here from the rows sent
        for c in "abd":
            d = uv.ks_test([r[c] for r in reference], [r[c] for r in rows], method="exact").statistic
            exact = uv.ks_pvalue(d, reference_n, 500, "exact")
            # exact between 1e-6 and 0.01; Kolmogorov's limit elsewhere: within 5% above 0.01, within
            # [0.9, 1.8] times the exact value down to 1e-12 (mostly above: conservative), and far
            # below any level beyond
            got = cols[c]["online_p_value"]
            if 1e-6 <= exact < 0.01:
                assert got == pytest.approx(exact, rel=1e-9)
            elif exact >= 0.01:
                assert got == pytest.approx(exact, rel=0.05)
            elif exact >= 1e-12:
                assert 0.9 * exact <= got <= 1.8 * exact
            else:
                assert got < 1e-10
            if reference_n <= 1000 and cols[c]["p_value"] < 0.01:  # the drift test's own p-value is exact
                assert cols[c]["online_p_value"] == pytest.approx(cols[c]["p_value"], rel=1e-9)
        counts = [[sum(r["c"] == v for r in sample) for v in "xyz"] for sample in (reference, rows)]
        assert cols["c"]["online_p_value"] == pytest.approx(pooled_chi2(*counts)[1], rel=1e-12)
        raw = [row["online_p_value"] for row in cols.values()]
        p.append(min(1.0, len(raw) * min(raw)))
        assert w["metrics"]["drift_p_value"]["value"] == pytest.approx(p[-1], rel=1e-12)
    # each window's p-value is Bonferroni over its columns' online p-values; LOND levels by hand
    expected = _lond_by_hand(p, 0.05)
    assert [w["metrics"]["drifted_online"]["value"] for w in windows] == [float(r) for r, _ in expected]
    assert [w["metrics"]["online_level"]["value"] for w in windows] == pytest.approx([v for _, v in expected])
    assert [r for r, _ in expected] == [False, True, False, True]  # the shifted windows, and only they
    # within a rejected window, the column named is the shifted one
    assert [row["feature"] for row in windows[1]["drift"] if row.get("drifted_online")] == ["b"]
    assert store.window_details(windows[3]["id"])["online_fdr"] == {"tests": 4, "discoveries": 2}
    # no model file: no model metrics and no notes about them
    assert not any(k.startswith(("estimated", "probe")) or k.endswith("_note") for k in windows[0]["metrics"])


def test_migration_0003_upgrades_from_0001_and_downgrades(db_url):
    from alembic import command
    from alembic.config import Config

    from stalwart.monitor.store import MIGRATIONS, Store

    old = Store(db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def run(step, target):
        with old.engine.begin() as conn:
            config.attributes["connection"] = conn
            step(config, target)

    def shape():
        with old.engine.connect() as conn:
            inspect = sa.inspect(conn)
            return ("model_artifacts" in inspect.get_table_names(),
                    "details" in {c["name"] for c in inspect.get_columns("windows")})

    run(command.upgrade, "0001")
    with old.engine.begin() as conn:  # a window stored by the older version survives both ways
        conn.execute(sa.text("INSERT INTO projects (id, name, created_at) VALUES (1, 'p', 0)"))
        conn.execute(sa.text("INSERT INTO models (id, project_id, name, task, columns, config, labels_seen, "
                             "created_at) VALUES (1, 1, 'm', 'classification', '{}', '{}', 0, 0)"))
        conn.execute(sa.text("INSERT INTO windows (model_id, seq, first_batch, last_batch, n_rows, start_ts, end_ts, "
                             "n_labelled, metrics, drift, analysed_at) VALUES (1, 0, 1, 1, 5, 0, 0, 0, '{}', '[]', 0)"))
    assert shape() == (False, False)
    old.upgrade()
    assert shape() == (True, True)
    assert old.windows(1)[0]["n_rows"] == 5 and old.window_details(old.windows(1)[0]["id"]) == {}
    run(command.downgrade, "0002")
    assert shape() == (False, False)
    with old.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n_rows FROM windows")).scalar() == 5
    old.upgrade()
    assert shape() == (True, True)
    old.close()


def test_a_replaced_reference_is_fitted_anew(service):
    # SQLite hands a replaced reference the row id of the one it replaced: what is fitted on the
    # reference (here the OOD detector) must follow its content, not its id
    from .conftest import register, table_rows

    client, store, admin = service
    path = "/v1/projects/shop/models/churn"
    register(client, admin, window_rows=500, reference_n=1000)
    rng = np.random.default_rng(12)
    r = client.post(path + "/batches", json={"batch_id": "w0", "rows": table_rows(rng, 500)}, headers=auth(admin))
    assert r.status_code == 201
    client.post(path + "/analyze", headers=auth(admin))
    moved = [{k: v for k, v in row.items() if k != "row_id"} for row in table_rows(rng, 1000, shift_b=8.0)]
    r = client.put(path + "/reference", json={"rows": moved}, headers=auth(admin))
    assert r.status_code == 200, r.text
    r = client.post(path + "/batches", json={"batch_id": "w1", "rows": table_rows(rng, 500, start=500)},
                    headers=auth(admin))
    assert r.status_code == 201
    client.post(path + "/analyze", headers=auth(admin))
    w0, w1 = client.get(path + "/windows", headers=auth(admin)).json()["windows"]
    assert w0["metrics"]["ood_rate"]["value"] < 0.15  # like its reference
    assert w1["metrics"]["ood_rate"]["value"] > 0.95  # 8 standard deviations from the new one on b
