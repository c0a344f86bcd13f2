"""The robustness probe of a regression model (in the units of its predictions), checked against
the closed form of a linear model under Gaussian feature noise; and the per-model switch and
sample size of the probe (registration and PATCH)."""

import math

import numpy as np
import pytest

from .conftest import auth

MODEL = "/v1/projects/shop/models/price"
COLUMNS = {"a": "numeric", "b": "numeric", "c": "numeric"}
W, NOISE = np.array([2.0, -3.0, 0.5]), 1.0


def _data(rng, n):
    x = rng.normal(0.0, 1.0, (n, 3)) * np.array([1.0, 1.0, 2.0])
    return x, x @ W + 1.0 + rng.normal(0.0, NOISE, n)


@pytest.fixture(scope="module")
def linear():
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    x, y = _data(np.random.default_rng(0), 20_000)
    model = LinearRegression().fit(x, y)
    return model, sio.dumps(model)


def _rows(model, x, y, start, *, labels=False):
    pred = model.predict(x)
    out = []
    for i in range(len(x)):
        row = {"a": float(x[i, 0]), "b": float(x[i, 1]), "c": float(x[i, 2]), "prediction": float(pred[i])}
        row.update({"label": float(y[i])} if labels else {"row_id": f"r{start + i}"})
        out.append(row)
    return out


def _register(client, key, model, **extra):
    x, y = _data(np.random.default_rng(1), 1000)
    body = {"name": "price", "columns": COLUMNS, "task": "regression", "window_rows": 500,
            "reference": _rows(model, x, y, 0, labels=True), **extra}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(key))
    assert r.status_code == 201, r.text
    return r.json()


def _window(client, key, model, rng, start):
    x, y = _data(rng, 500)
    r = client.post(MODEL + "/batches", json={"batch_id": f"b{start}", "rows": _rows(model, x, y, start)},
                    headers=auth(key))
    assert r.status_code == 201, r.text
    client.post(MODEL + "/analyze", headers=auth(key))
    return x, y, client.get(MODEL + "/windows", headers=auth(key)).json()["windows"][-1]


def _held_model_window(client, key, model, blob, seed):
    """Register the model with its file, send one 500-row window and analyse it."""
    _register(client, key, model)
    assert client.put(MODEL + "/artifact", content=blob, headers=auth(key)).status_code == 200
    return _window(client, key, model, np.random.default_rng(seed), 0)


def _se(metric):
    return (metric["high"] - metric["low"]) / (2 * 1.959963984540054)


def test_a_regression_models_probe_matches_the_linear_closed_form(service, linear):
    client, store, admin = service
    model, blob = linear
    x, y, w = _held_model_window(client, admin, model, blob, seed=2)
    m = w["metrics"]
    # feature noise of c standard deviations (the sample's, per column) moves a linear model's
    # prediction by sum_j w_j c s_j z_j ~ N(0, c^2 sum_j w_j^2 s_j^2): E|shift| = sqrt(2/pi) sigma
    s = x.std(axis=0)
    for severity, c in ((2, 0.2), (4, 0.5)):
        got = m[f"probe_shift_feature_noise_{severity}"]
        sigma = c * math.sqrt(float(np.sum((model.coef_ * s) ** 2)))
        assert got["n"] == 500 and abs(got["value"] - math.sqrt(2 / math.pi) * sigma) < 4 * _se(got), (severity, got)
    # the draws do not depend on the severity: the larger noise is the same noise scaled 2.5 times
    # (less a little where clipping to the column's range bites)
    ratio = m["probe_shift_feature_noise_4"]["value"] / m["probe_shift_feature_noise_2"]["value"]
    assert 2.3 < ratio <= 2.5 + 1e-9
    assert m["probe_shift"] == max((m[k] for k in m if k.startswith("probe_shift_") and "attack" not in k),
                                   key=lambda v: v["value"])
    # the shifts recomputed from the predictions the window keeps
    probe = store.window_details(w["id"])["probe"]
    assert probe["clean"] == pytest.approx(model.predict(x).tolist())  # the whole 500-row window, in order
    moved = np.array(probe["stuck_sensor_3"])
    assert m["probe_shift_stuck_sensor_3"]["value"] == pytest.approx(np.mean(np.abs(moved - model.predict(x))))
    # LinearRegression takes no missing values; no PGD (no gradients); no class metrics
    assert "error" in probe["missing_values_2"] and "attack_pgd" not in probe
    assert not any(k.startswith(("probe_stability", "probe_accuracy", "estimated")) or k.endswith("_note") for k in m)
    assert "probe_mae" not in m  # no labels yet

    labels = [{"row_id": f"r{i}", "label": float(v)} for i, v in enumerate(y)]
    assert client.post(MODEL + "/labels", json={"labels": labels}, headers=auth(admin)).status_code == 200
    client.post(MODEL + "/analyze", headers=auth(admin))
    m = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"][-1]["metrics"]
    clean = np.abs(model.predict(x) - y)
    assert m["probe_mae_clean"]["value"] == pytest.approx(clean.mean()) == pytest.approx(m["mae"]["value"])
    for name in ("feature_noise_2", "feature_noise_4", "stuck_sensor_3"):
        err = np.abs(np.array(probe[name]) - y)
        assert m[f"probe_mae_{name}"]["value"] == pytest.approx(err.mean())
        change = m[f"probe_mae_change_{name}"]
        assert change["value"] == pytest.approx(err.mean() - clean.mean())
        assert change["n"] == 500 and change["low"] < change["value"] < change["high"]
    # the error e (sd NOISE) plus an independent shift d: E|e + d| - E|e| = sqrt(2/pi) (sqrt(1 + sd^2) - 1)
    sigma = 0.5 * math.sqrt(float(np.sum((model.coef_ * s) ** 2)))
    expected = math.sqrt(2 / math.pi) * (math.sqrt(NOISE ** 2 + sigma ** 2) - NOISE)
    got = m["probe_mae_change_feature_noise_4"]
    assert abs(got["value"] - expected) < 4 * _se(got), (got, expected)
    assert m["probe_mae"] == max((m[f"probe_mae_{k}"] for k in ("feature_noise_2", "feature_noise_4", "stuck_sensor_3")),
                                 key=lambda v: v["value"])
    assert m["probe_mae_change"]["value"] == pytest.approx(m["probe_mae"]["value"] - clean.mean())
    # the dashboard charts them in the model's units
    assert client.post("/dashboard/login", data={"key": admin}, follow_redirects=False).status_code == 303
    page = client.get("/dashboard/models/price").text
    assert "MAE, worst" in page and "Probe shift per perturbation" in page and "Probe mae change per" in page


def test_a_regression_models_attack_finds_the_linear_worst_case_in_its_box(service, linear):
    client, store, admin = service
    model, blob = linear
    x, y, w = _held_model_window(client, admin, model, blob, seed=4)
    # the closed form: each column may move 5% of its range (over reference and window) either way,
    # within that range; a linear model's prediction rises most with every column moved the way its
    # weight points, falls most with every column moved the other way
    both = np.vstack([_data(np.random.default_rng(1), 1000)[0], x])
    lower, upper = both.min(axis=0), both.max(axis=0)
    eps = 0.05 * (upper - lower)
    to_high, to_low = np.minimum(x + eps, upper) - x, np.maximum(x - eps, lower) - x
    coef = model.coef_
    rise = np.where(coef > 0, to_high, to_low) @ coef
    fall = -(np.where(coef > 0, to_low, to_high) @ coef)
    worst = np.maximum(rise, fall)
    probe = store.window_details(w["id"])["probe"]
    found = np.abs(np.array(probe["attack_search"]) - model.predict(x))
    np.testing.assert_allclose(found, worst, rtol=1e-9, atol=1e-12)
    m = w["metrics"]
    assert m["probe_shift_attack_search"]["value"] == pytest.approx(worst.mean())
    # far beyond the natural probes' moves at this size, and reported beside them, not as their worst
    natural = [m[k]["value"] for k in m if k.startswith("probe_shift_") and "attack" not in k]
    assert m["probe_shift"]["value"] == max(natural) and worst.mean() > 0
    labels = [{"row_id": f"r{i}", "label": float(v)} for i, v in enumerate(y)]
    assert client.post(MODEL + "/labels", json={"labels": labels}, headers=auth(admin)).status_code == 200
    client.post(MODEL + "/analyze", headers=auth(admin))
    m = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"][-1]["metrics"]
    attacked = np.abs(np.array(probe["attack_search"]) - y)
    assert m["probe_mae_attack_search"]["value"] == pytest.approx(attacked.mean())
    assert m["probe_mae_change_attack_search"]["value"] == pytest.approx(
        attacked.mean() - np.abs(model.predict(x) - y).mean())


def test_the_regression_attack_beats_random_corners_on_a_nonlinear_model():
    """On a model whose slope changes inside the box, the search's point moves the prediction
    further than the best of as many random corners of the same box as it spent queries."""
    from sklearn.ensemble import GradientBoostingRegressor

    from stalwart import wrap
    from stalwart.monitor.analysis import ATTACK_EPS, run_regression_attack

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 10))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2] * x[:, 3] + 0.3 * x[:, 4:].sum(axis=1)
    model = wrap(GradientBoostingRegressor(n_estimators=60, random_state=0).fit(x, y), task="regression")
    sample, reference = x[:200], x[200:]
    clean = model.predict(sample)
    before = model.n_queries
    found = np.abs(np.array(run_regression_attack(model, sample, clean, reference)) - clean)
    budget = (model.n_queries - before) // len(sample)
    assert budget == 2 * 10 + 2 + 2 * (2 * 10 + 1)  # differences, two corners, two refining steps
    lower, upper = x.min(axis=0), x.max(axis=0)
    eps = ATTACK_EPS * (upper - lower)
    lo, hi = np.maximum(sample - eps, lower), np.minimum(sample + eps, upper)
    random_best = np.zeros(len(sample))
    for _ in range(budget):
        corner = np.where(rng.random(sample.shape) < 0.5, lo, hi)
        random_best = np.maximum(random_best, np.abs(model.predict(corner) - clean))
    assert found.mean() > random_best.mean()


def test_the_probe_is_switched_and_sized_per_model(service, linear):
    client, store, admin = service
    model, blob = linear
    made = _register(client, admin, model, probe=False)
    assert (made["config"]["probe"], made["config"]["probe_sample"]) == (False, 500)
    assert client.put(MODEL + "/artifact", content=blob, headers=auth(admin)).status_code == 200
    rng = np.random.default_rng(3)
    *_, w0 = _window(client, admin, model, rng, 0)
    assert not any(k.startswith("probe") for k in w0["metrics"])  # switched off at registration
    assert "probe" not in store.window_details(w0["id"])

    r = client.patch(MODEL, json={"probe": True, "probe_sample": 100}, headers=auth(admin))
    assert r.status_code == 200, r.text
    assert (r.json()["config"]["probe"], r.json()["config"]["probe_sample"]) == (True, 100)
    *_, w1 = _window(client, admin, model, rng, 500)
    assert w1["metrics"]["probe_shift"]["n"] == 100 and len(store.window_details(w1["id"])["probe"]["clean"]) == 100
    r = client.patch(MODEL, json={"probe": False}, headers=auth(admin))
    assert r.status_code == 200 and r.json()["config"]["probe_sample"] == 100  # the other setting stays
    *_, w2 = _window(client, admin, model, rng, 1000)
    assert not any(k.startswith("probe") for k in w2["metrics"])

    # a re-registration that names no probe setting leaves them; one that names others is refused
    x, y = _data(np.random.default_rng(1), 1000)
    body = {"name": "price", "columns": COLUMNS, "task": "regression", "window_rows": 500}
    r = client.post("/v1/projects/shop/models", json=body, headers=auth(admin))
    assert r.status_code == 201 and r.json()["config"]["probe"] is False, r.text
    r = client.post("/v1/projects/shop/models", json={**body, "probe": True}, headers=auth(admin))
    assert r.status_code == 409 and "PATCH /v1/projects/shop/models/price" in r.json()["detail"]
    r = client.post("/v1/projects/shop/models", json={**body, "window_rows": 600}, headers=auth(admin))
    assert r.status_code == 409  # what cannot change is still a conflict

    # what PATCH refuses, and who may send it
    for bad, word in (({}, "nothing to change"), ({"probe_sample": 5}, "probe_sample"),
                      ({"probe_sample": 10**6}, "probe_sample"), ({"alpha": 0.1}, "alpha"),
                      ({"probe": "sometimes"}, "probe")):
        r = client.patch(MODEL, json=bad, headers=auth(admin))
        assert r.status_code == 422 and word in r.text, (bad, r.text)
    assert client.patch(MODEL, json={"probe": True}, headers=auth(store.create_key("shop", "read"))).status_code == 403
    assert client.patch(MODEL, json={"probe": True}, headers=auth(store.create_key("other", "admin"))).status_code == 403
    r = client.patch("/v1/projects/shop/models/nothing", json={"probe": True}, headers=auth(admin))
    assert r.status_code == 404 and "not registered" in r.json()["detail"]
    assert client.get(MODEL, headers=auth(admin)).json()["config"]["probe"] is False  # none of them changed it


def test_the_client_updates_the_probe(service, linear):
    from stalwart.errors import ConfigError
    from stalwart.monitor import Client

    client, store, admin = service
    _register(client, admin, linear[0])
    monitor = Client("http://testserver", admin, http=client)
    assert monitor.update_model("price", probe_sample=2000)["config"]["probe_sample"] == 2000
    with pytest.raises(ConfigError, match="probe=True/False or probe_sample"):
        monitor.update_model("price")
