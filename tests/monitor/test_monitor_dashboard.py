"""The HTML dashboard: login with a key and the session cookie, what the model page shows, escaping
of every user string, and the whole flow in Debian's headless Chromium (skipped without it)."""

import os
import re
import shutil
import socket
import threading
import time
from urllib.parse import quote

import numpy as np
import pytest
import sqlalchemy as sa

from stalwart.monitor import Settings, create_app
from stalwart.monitor.dashboard import COOKIE, SESSION_S, sign_session
from stalwart.monitor.store import api_keys

from .conftest import auth, register, table_rows

BATCHES = "/v1/projects/shop/models/churn/batches"


def login(client, key):
    return client.post("/dashboard/login", data={"key": key}, follow_redirects=False)


def drifted_model(client, admin, *, calm=2, name="churn", rule="drift_share <= 0.2"):
    """A model with ``calm`` windows like its reference, then one where column b moved by 3 sd."""
    register(client, admin, name=name, window_rows=200)
    client.post(f"/v1/projects/shop/models/{name}/rules", json={"name": "drift", "condition": rule},
                headers=auth(admin))
    rng = np.random.default_rng(11)
    for i in range(calm + 1):
        rows = table_rows(rng, 200, shift_b=3.0 if i == calm else 0.0, start=200 * i)
        r = client.post(f"/v1/projects/shop/models/{name}/batches", json={"batch_id": f"b{i}", "rows": rows},
                        headers=auth(admin))
        assert r.status_code == 201, r.text
    assert client.post(f"/v1/projects/shop/models/{name}/analyze", headers=auth(admin)).status_code == 200


def test_login_sets_a_signed_httponly_strict_cookie_never_the_key(service):
    client, store, admin = service
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/login"
    assert "API key" in client.get("/dashboard/login").text
    r = login(client, "sw_0123456789_wrong")
    assert r.status_code == 401 and "Unknown or revoked API key" in r.text and COOKIE not in r.headers.get(
        "set-cookie", "")
    r = login(client, store.create_key("shop", "ingest"))
    assert r.status_code == 403 and "read or admin" in r.text
    read = store.create_key("shop", "read")
    r = login(client, read)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attrs and "secure" not in attrs  # plain http on loopback
    assert "samesite=strict" in cookie.lower() and "path=/dashboard" in cookie.lower()
    assert f"max-age={SESSION_S}" in cookie.lower()
    value = client.cookies.get(COOKIE)
    secret = read.split("_", 2)[2]
    assert read not in cookie and secret not in cookie and value.split(".")[0] == read.split("_")[1]
    page = client.get("/dashboard")
    assert page.status_code == 200 and "Models" in page.text and "project shop" in page.text
    assert read not in page.text
    # logging out deletes the cookie, and the pages ask to log in again
    out = client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303 and 'max-age=0' in out.headers["set-cookie"].lower()
    assert client.cookies.get(COOKIE) is None
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_forged_expired_and_revoked_sessions_are_refused(service):
    client, store, admin = service
    read = store.create_key("shop", "read")
    ident = read.split("_")[1]
    with store.engine.connect() as conn:
        stored_hash = conn.execute(sa.select(api_keys.c.key_hash).where(api_keys.c.key_id == ident)).scalar()

    def page_with(cookie):
        client.cookies.clear()
        client.cookies.set(COOKIE, cookie, path="/dashboard")
        return client.get("/dashboard", follow_redirects=False).status_code

    good = sign_session(ident, stored_hash, int(time.time()) + 60)
    assert page_with(good) == 200
    assert page_with(good[:-1] + ("0" if good[-1] != "0" else "1")) == 303  # one hex digit changed
    assert page_with(sign_session(ident, "0" * 64, int(time.time()) + 60)) == 303  # signed without the hash
    assert page_with(sign_session(ident, stored_hash, int(time.time()) - 1)) == 303  # expired
    assert page_with("garbage") == 303
    with store.engine.begin() as conn:
        conn.execute(api_keys.update().where(api_keys.c.key_id == ident).values(revoked=True))
    assert page_with(good) == 303  # a revoked key ends its sessions


def test_a_form_posted_from_another_site_is_refused(service):
    client, store, admin = service
    for origin in ("https://evil.example", "null"):
        r = client.post("/dashboard/login", data={"key": admin}, headers={"Origin": origin}, follow_redirects=False)
        assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")
    r = client.post("/dashboard/login", data={"key": admin}, headers={"Origin": "http://testserver"},
                    follow_redirects=False)
    assert r.status_code == 303 and COOKIE in r.headers["set-cookie"]


def test_model_page_shows_alerts_charts_and_the_drifted_column(service):
    client, store, admin = service
    drifted_model(client, admin)
    login(client, admin)
    r = client.get("/dashboard/models/churn")
    assert r.status_code == 200
    html = r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp and "<script" not in html.lower()
    assert r.headers["cache-control"] == "no-store"
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere
    # the rule fired on the third window
    rules = re.search(r'<table class="rules">(.*?)</table>', html, re.S).group(1)
    assert "drift_share &lt;= 0.2" in rules and 'state-firing">firing<' in rules
    state = client.get("/v1/projects/shop/models/churn/rules", headers=auth(admin)).json()["rules"][0]["state"]
    assert state == "firing"
    fired = next(a for a in client.get("/v1/projects/shop/models/churn/alerts", headers=auth(admin)).json()["alerts"]
                 if a["to_state"] == "firing")
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(fired["created_at"]))
    assert f"firing</span></td><td>{since}</td>" in rules
    # charts over the three windows: one point per window for the drift share
    assert html.count('<svg class="chart"') >= 2
    assert html.count("<title>drift share: ") == 3
    windows = client.get("/v1/projects/shop/models/churn/windows", headers=auth(admin)).json()["windows"]
    share = windows[-1]["metrics"]["drift_share"]["value"]
    metrics = re.search(r'<table class="metrics">(.*?)</table>', html, re.S).group(1)
    assert re.search(rf"<td>drift_share</td><td class=\"num\">{share:.3f}</td>", metrics)
    # column b moved by 3 standard deviations: it, and only it among the inputs, is marked drifted
    drift = re.search(r'<table class="drift">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", drift)
    assert [name for name, _ in rows][:4] == ["a", "b", "c", "d"]
    assert [name for name, cells in rows if '<td class="yes">yes</td>' in cells] == ["b"]
    assert 'class="windows"' in html and html.count("<tr><td class=\"num\">") >= 3
    # the models list links the model and counts its firing rule
    listing = client.get("/dashboard").text
    assert 'href="/dashboard/models/churn"' in listing and 'state-firing">firing</span> 1' in listing


def test_the_model_page_draws_the_newest_windows_asked_for(service):
    client, store, admin = service
    register(client, admin, window_rows=20)
    rng = np.random.default_rng(12)
    for i in range(12):
        client.post(BATCHES, json={"batch_id": f"b{i}", "rows": table_rows(rng, 20, start=20 * i)}, headers=auth(admin))
    client.post("/v1/projects/shop/models/churn/analyze", headers=auth(admin))
    login(client, admin)
    html = client.get("/dashboard/models/churn?windows=5").text
    assert "the newest 5 of 12 windows" in html
    assert html.count("<title>drift share: ") == 5
    assert "<title>drift share: 11 →" in html and "<title>drift share: 6 →" not in html
    assert "all 12 windows" in client.get("/dashboard/models/churn").text


def test_every_user_string_is_escaped(service):
    client, store, admin = service
    evil = "<script src=data:,alert(1)>"  # no "/": the API's routes take a model name as one path segment
    rule = "</td><script>alert(4)</script>"
    column = '<img src=x onerror="alert(2)">'
    rng = np.random.default_rng(13)
    ref = [{column: float(v), "a": float(w), "prediction": int(w > 0)} for v, w in rng.normal(size=(300, 2))]
    body = {"name": evil, "columns": {column: "numeric", "a": "numeric"}, "classes": [0, 1], "window_rows": 100,
            "reference": ref}
    assert client.post("/v1/projects/shop/models", json=body, headers=auth(admin)).status_code == 201
    path = "/v1/projects/shop/models/" + quote(evil, safe="")
    assert client.post(path + "/rules", json={"name": rule, "condition": "drift_share <= 0.2"},
                       headers=auth(admin)).status_code == 201
    rows = [{column: float(v) + 4, "a": float(w), "prediction": int(w > 0)} for v, w in rng.normal(size=(100, 2))]
    assert client.post(path + "/batches", json={"batch_id": "x", "rows": rows}, headers=auth(admin)).status_code == 201
    client.post(path + "/analyze", headers=auth(admin))
    login(client, admin)
    listing = client.get("/dashboard").text
    page = client.get("/dashboard/models/" + quote(evil, safe=""))
    missing = client.get("/dashboard/models/%3Csvg%20onload%3Dalert(3)%3E")
    assert page.status_code == 200 and missing.status_code == 404
    for html in (listing, page.text, missing.text):
        assert "<script" not in html and "<img" not in html and "<svg onload" not in html
    assert "&lt;script src=data:,alert(1)&gt;" in listing and quote(evil, safe="") in listing
    assert page.text.count("&lt;script src=data:,alert(1)&gt;") == 2  # title, heading
    assert page.text.count("&lt;/td&gt;&lt;script&gt;alert(4)&lt;/script&gt;") == 2  # rule, transition
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page.text  # the column, in the drift table
    assert "&lt;svg onload=alert(3)&gt;" in missing.text


def test_a_regression_model_charts_its_error_and_a_fresh_model_says_what_it_waits_for(service):
    client, store, admin = service
    register(client, admin, name="empty")
    rng = np.random.default_rng(15)
    ref = [{k: v for k, v in r.items() if k != "row_id"} for r in table_rows(rng, 300, classes=(0.0, 1.0))]
    body = {"name": "price", "columns": {"a": "numeric", "b": "numeric", "c": "categorical", "d": "integer"},
            "task": "regression", "window_rows": 100, "reference": ref}
    assert client.post("/v1/projects/shop/models", json=body, headers=auth(admin)).status_code == 201
    rows = table_rows(rng, 100, classes=(0.0, 1.0))
    client.post("/v1/projects/shop/models/price/batches", json={"batch_id": "b", "rows": rows}, headers=auth(admin))
    client.post("/v1/projects/shop/models/price/labels", headers=auth(admin),
                json={"labels": [{"row_id": r["row_id"], "label": r["prediction"] + 0.5} for r in rows]})
    client.post("/v1/projects/shop/models/price/analyze", headers=auth(admin))
    login(client, admin)
    html = client.get("/dashboard/models/price").text
    assert "<title>realised MAE: 0 → 0.5</title>" in html  # every label 0.5 off its prediction
    assert "<title>realised: " not in html  # no accuracy chart for a regression model
    empty = client.get("/dashboard/models/empty").text
    assert "No window analysed yet" in empty and "500 per window" in empty and "No alert rule" in empty

# -- in a real browser ----------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver; "
                    ".ci/run does it)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
    return webdriver


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(tmp_path):
    """The service on 127.0.0.1 in a uvicorn thread: (url, app)."""
    import uvicorn

    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'monitor.db'}", worker=False))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)
    app.state.store.close()


def test_in_headless_chromium_a_key_logs_in_and_sees_the_firing_alert(live, tmp_path):
    webdriver = _browser()
    from selenium.webdriver.chromium.service import ChromiumService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from stalwart.monitor import Client

    url, app = live
    admin = app.state.store.create_key("shop", "admin")
    read = app.state.store.create_key("shop", "read")
    rng = np.random.default_rng(14)
    with Client(url, admin) as client:
        ref = [{k: v for k, v in r.items() if k != "row_id"} for r in table_rows(rng, 1000)]
        import pandas as pd

        client.register("churn", pd.DataFrame(ref), classes=[0, 1], window_rows=200)
        client.add_rule("churn", "drift", "drift_share <= 0.2")
        client.log_batch("churn", pd.DataFrame(table_rows(rng, 200)))
        client.log_batch("churn", pd.DataFrame(table_rows(rng, 200, shift_b=3.0, start=200)))
        client.analyze("churn")
        assert [a["to_state"] for a in client.alerts("churn")][0] == "firing"

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}",
                 "--window-size=1300,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=ChromiumService(executable_path=CHROMEDRIVER))
    wait = WebDriverWait(driver, 15)

    def arrive(path):
        wait.until(EC.url_to_be(url + path))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    try:
        driver.set_page_load_timeout(20)
        driver.get(url + "/dashboard/models/churn")
        assert driver.current_url == url + "/dashboard/login"  # no session: to the login page
        driver.find_element(By.ID, "key").send_keys("sw_0123456789_not-a-key")
        driver.find_element(By.ID, "login").click()
        error = wait.until(EC.presence_of_element_located((By.ID, "login-error")))
        assert "Unknown or revoked API key" in error.text
        driver.find_element(By.ID, "key").send_keys(read)
        driver.find_element(By.ID, "login").click()
        arrive("/dashboard")
        (cookie,) = driver.get_cookies()
        assert cookie["name"] == COOKIE and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert read not in cookie["value"] and read not in driver.current_url
        driver.find_element(By.LINK_TEXT, "churn").click()
        arrive("/dashboard/models/churn")
        assert driver.find_element(By.ID, "model-name").text == "churn"
        state = driver.find_element(By.CSS_SELECTOR, "table.rules .state-firing")
        assert state.text == "firing" and state.is_displayed()
        charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert charts and charts[0].size["width"] > 300 and charts[0].size["height"] > 150
        points = driver.find_elements(By.CSS_SELECTOR, "svg.chart circle")
        assert len(points) >= 2  # the drift share of both windows at least
        driver.find_element(By.ID, "logout").click()
        arrive("/dashboard/login")
        assert driver.get_cookies() == []
        driver.get(url + "/dashboard/models/churn")
        assert driver.current_url == url + "/dashboard/login"
    finally:
        driver.quit()
