"""Alert rules: the state machine with hysteresis, stored per window, and webhook delivery with
retries, backoff and an idempotency key, against a small HTTP server on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from stalwart.errors import ConfigError
from stalwart.monitor import AlertRule, deliver_pending, next_state

from .conftest import auth, register, table_rows

MODEL = "/v1/projects/shop/models/churn"


@pytest.mark.parametrize(("n", "violations", "states"), [
    (1, [1, 1, 0, 0, 1], ["firing", "firing", "resolved", "ok", "firing"]),
    (3, [1, 1, 0, 1, 1, 1, 0, 0, 1, 0], ["pending", "pending", "ok", "pending", "pending", "firing", "firing",
                                         "firing", "firing", "firing"]),
])
def test_state_machine_follows_the_table(n, violations, states):
    state, seen = ("ok", 0, 0), []
    for v in violations:
        state = next_state(*state, violated=bool(v), n=n)
        seen.append(state[0])
    assert seen == states


def test_rules_use_the_suites_condition_language():
    assert str(AlertRule("r", "accuracy >= 0.9 warn 0.95").condition) == "accuracy >= 0.9 warn 0.95"
    with pytest.raises(ConfigError, match="cannot parse condition"):
        AlertRule("r", "accuracy is high")
    with pytest.raises(ConfigError, match="webhook_url"):
        AlertRule("r", "drift_share <= 0.2", webhook_url="ftp://x")


class Hook:
    """A webhook receiver on 127.0.0.1 answering the listed status codes in turn (then 200)."""

    def __init__(self, codes):
        self.codes, self.calls = list(codes), []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.calls.append((dict(self.headers), body))
                code = hook.codes.pop(0) if hook.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _window(client, key, rng, i, shifted):
    rows = table_rows(rng, 200, shift_b=3.0 if shifted else 0.0, start=200 * i)
    r = client.post(MODEL + "/batches", json={"batch_id": f"w{i}", "rows": rows}, headers=auth(key))
    assert r.status_code == 201
    return client.post(MODEL + "/analyze", headers=auth(key)).json()


def test_a_drift_rule_goes_pending_firing_resolved_and_its_webhook_is_retried_after_a_500(service):
    client, store, admin = service
    register(client, admin, window_rows=200)
    with Hook([500]) as hook:
        r = client.post(MODEL + "/rules", json={"name": "drift", "condition": "drift_share <= 0.2", "for_windows": 2,
                                               "webhook_url": hook.url}, headers=auth(admin))
        assert r.status_code == 201 and r.json()["state"] == "ok"
        rng = np.random.default_rng(3)
        states = []
        for i, shifted in enumerate([False, True, True, False, True, False, False]):
            _window(client, admin, rng, i, shifted)
            (rule,) = client.get(MODEL + "/rules", headers=auth(admin)).json()["rules"]
            states.append(rule["state"])
        shares = [w["metrics"]["drift_share"]["value"] for w in
                  client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]]
        assert [s > 0.2 for s in shares] == [False, True, True, False, True, False, False]
        assert states == ["ok", "pending", "firing", "firing", "firing", "firing", "resolved"]
        history = client.get(MODEL + "/alerts", headers=auth(admin)).json()["alerts"][::-1]
        assert [(a["window_seq"], a["from_state"], a["to_state"], a["delivery"]) for a in history] == [
            (1, "ok", "pending", "none"), (2, "pending", "firing", "pending"), (6, "firing", "resolved", "pending")]

        slept = []
        assert deliver_pending(store, retries=3, backoff_s=0.25, sleep=slept.append) == {"delivered": 2, "failed": 0}
    assert slept == [0.25]  # one retry after the 500, then delivered
    (h1, fired), (h2, again), (h3, resolved) = hook.calls
    assert fired == again and h1["Idempotency-Key"] == h2["Idempotency-Key"] != h3["Idempotency-Key"]
    assert "FIRING" in fired["text"] and "drift_share" in fired["text"] and fired["alert"]["to_state"] == "firing"
    assert "resolved" in resolved["text"] and resolved["alert"]["window_seq"] == 6
    delivered = client.get(MODEL + "/alerts", headers=auth(admin)).json()["alerts"]
    assert [(a["to_state"], a["delivery"], a["attempts"]) for a in delivered if a["delivery"] != "none"] == [
        ("resolved", "delivered", 1), ("firing", "delivered", 2)]
    assert deliver_pending(store, sleep=slept.append) == {"delivered": 0, "failed": 0}  # nothing sent twice


def test_a_webhook_that_keeps_failing_backs_off_then_gives_up_and_a_4xx_is_not_retried(service):
    client, store, admin = service
    register(client, admin, window_rows=200)
    with Hook([503] * 10) as down, Hook([404]) as wrong:
        for name, url in (("down", down.url), ("wrong", wrong.url)):
            client.post(MODEL + "/rules", json={"name": name, "condition": "drift_share <= 0.2",
                                                "webhook_url": url}, headers=auth(admin))
        _window(client, admin, np.random.default_rng(4), 0, True)
        slept = []
        assert deliver_pending(store, retries=3, backoff_s=0.5, sleep=slept.append) == {"delivered": 0, "failed": 2}
    assert slept == [0.5, 1.0, 2.0] and (len(down.calls), len(wrong.calls)) == (4, 1)


def test_a_rule_on_accuracy_waits_for_labels(service):
    client, store, admin = service
    register(client, admin, window_rows=200)
    r = client.post(MODEL + "/rules", json={"name": "acc", "condition": "accuracy >= 0.9"}, headers=auth(admin))
    assert r.status_code == 201
    r = client.post(MODEL + "/rules", json={"name": "bad", "condition": "accuracy high"}, headers=auth(admin))
    assert r.status_code == 422 and "cannot parse condition" in r.json()["detail"]
    _window(client, admin, np.random.default_rng(5), 0, False)
    assert client.get(MODEL + "/rules", headers=auth(admin)).json()["rules"][0]["last_window"] == -1
    # every prediction wrong: accuracy 0 violates the rule once the labels are in
    labels = [{"row_id": f"r{i}", "label": 1 - row["prediction"]}
              for i, row in enumerate(table_rows(np.random.default_rng(5), 200))]
    client.post(MODEL + "/labels", json={"labels": labels}, headers=auth(admin))
    client.post(MODEL + "/analyze", headers=auth(admin))
    (rule,) = client.get(MODEL + "/rules", headers=auth(admin)).json()["rules"]
    (w,) = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    assert w["metrics"]["accuracy"]["value"] == 0.0 and (rule["state"], rule["last_window"]) == ("firing", 0)
