"""Alert cooldown: after a rule resolves it does not fire again until ``cooldown_s`` seconds later,
on the windows' own end times (explicit timestamps, no sleeping)."""

import numpy as np
import pytest

from stalwart.errors import ConfigError
from stalwart.monitor import AlertRule, next_state
from stalwart.monitor.alerts import cooling, judge_rules

from .conftest import auth, register, table_rows

MODEL = "/v1/projects/shop/models/churn"
T0 = 1_700_000_000.0


def _run(violations, ends, cooldown, n=1):
    """States of a rule over windows ending at ``ends``, as judge_rules moves it."""
    state, resolved_at, seen = ("ok", 0, 0), None, []
    for v, end in zip(violations, ends, strict=True):
        state = next_state(*state, violated=bool(v), n=n, cooling=cooling(resolved_at, end, cooldown))
        if state[0] == "resolved":
            resolved_at = end
        seen.append(state[0])
    return seen


def test_the_state_machine_holds_a_refire_within_the_cooldown():
    ends = [0, 100, 200, 300, 700, 800]
    # fires, resolves at 100; violations at 200 and 300 (within 500 s) are held at pending; at 700 it fires
    assert _run([1, 0, 1, 1, 1, 0], ends, cooldown=500) == ["firing", "resolved", "pending", "pending", "firing",
                                                          "resolved"]
    # without a cooldown the same windows fire at once, as the module's table says
    assert _run([1, 0, 1, 1, 1, 0], ends, cooldown=0) == ["firing", "resolved", "firing", "firing", "firing",
                                                        "resolved"]
    # the cooldown counts from the resolution, also after the rule went back to ok in between
    assert _run([1, 0, 0, 1, 1], [0, 100, 150, 550, 600], cooldown=500) == ["firing", "resolved", "ok", "pending",
                                                                           "firing"]
    # with hysteresis (n = 2): resolved at 30, held until 55; the violations counted meanwhile let
    # the first violating window after the cooldown fire
    assert _run([1, 1, 0, 0, 1, 1, 1], [0, 10, 20, 30, 40, 50, 60], cooldown=25, n=2) == [
        "pending", "firing", "firing", "resolved", "pending", "pending", "firing"]
    # a rule that never resolved has no cooldown to wait for
    assert _run([1], [0], cooldown=1e9) == ["firing"]


def test_cooldown_is_a_checked_rule_parameter():
    assert AlertRule("r", "drift_share <= 0.2").cooldown_s == 0.0
    assert AlertRule("r", "drift_share <= 0.2", cooldown_s=900).cooldown_s == 900
    for bad in (-1, float("inf"), "10", True):
        with pytest.raises(ConfigError, match="cooldown_s"):
            AlertRule("r", "drift_share <= 0.2", cooldown_s=bad)


def test_judge_rules_holds_a_refire_by_the_windows_end_times(service):
    client, store, admin = service
    model = register(client, admin, window_rows=200)
    rng = np.random.default_rng(3)
    # window i: 200 rows over 200 s starting at T0 + starts[i]; drifted ones have b shifted by 3
    starts = [0, 1000, 2000, 3000, 6000, 7000]
    drifted = [True, False, True, True, True, False]
    for i, (start, shifted) in enumerate(zip(starts, drifted, strict=True)):
        rows = [{**r, "timestamp": T0 + start + j} for j, r in
                enumerate(table_rows(rng, 200, shift_b=3.0 if shifted else 0.0, start=200 * i))]
        r = client.post(MODEL + "/batches", json={"batch_id": f"w{i}", "rows": rows}, headers=auth(admin))
        assert r.status_code == 201, r.text
    client.post(MODEL + "/analyze", headers=auth(admin))  # windows cut before the rule exists
    windows = client.get(MODEL + "/windows", headers=auth(admin)).json()["windows"]
    assert [w["metrics"]["drift_share"]["value"] > 0.2 for w in windows] == drifted
    assert [w["end_ts"] - T0 for w in windows] == [s + 199 for s in starts]
    r = client.post(MODEL + "/rules", json={"name": "drift", "condition": "drift_share <= 0.2"}, headers=auth(admin))
    assert r.status_code == 201

    # resolved at the end of window 1 (T0 + 1199); windows 2 and 3 end within 3600 s of it, window 4
    # (T0 + 6199) after: it fires there, not at window 2
    events = judge_rules(store, model["id"], cooldown_s=3600)
    assert [(e["window_seq"], e["from_state"], e["to_state"]) for e in events] == [
        (0, "ok", "firing"), (1, "firing", "resolved"), (2, "resolved", "pending"), (4, "pending", "firing"),
        (5, "firing", "resolved")]
    held = next(e for e in events if e["to_state"] == "pending")
    assert f"held by the cooldown until {T0 + 1199 + 3600:.0f}" in held["message"]
    (rule,) = client.get(MODEL + "/rules", headers=auth(admin)).json()["rules"]
    assert (rule["state"], rule["last_window"]) == ("resolved", 5)

    # a later pass remembers the last resolution (window 5, T0 + 7199) from the alert history
    rows = [{**r, "timestamp": T0 + 8000 + j} for j, r in enumerate(table_rows(rng, 200, shift_b=3.0, start=2000))]
    assert client.post(MODEL + "/batches", json={"batch_id": "w6", "rows": rows}, headers=auth(admin)).status_code == 201
    store.add_rule(model["id"], "late", "drift_share <= 0.2", 1, None)  # judged by analyze, no cooldown
    client.post(MODEL + "/analyze", headers=auth(admin))
    states = {r["name"]: r["state"] for r in client.get(MODEL + "/rules", headers=auth(admin)).json()["rules"]}
    assert states == {"drift": "firing", "late": "firing"}  # analyze runs rules without a cooldown column as 0
    store.save_rule_state(rule["id"], "resolved", 0, 0, 5, None)  # replay window 6 for the drift rule
    assert [(e["window_seq"], e["to_state"]) for e in judge_rules(store, model["id"], cooldown_s=3600)] == [
        (6, "pending")]


def test_a_rule_created_with_a_cooldown_keeps_it_and_analysis_honours_it(service):
    client, _, admin = service
    register(client, admin, window_rows=200)
    rng = np.random.default_rng(3)
    starts, drifted = [0, 1000, 2000, 6000], [True, False, True, True]
    for i, (start, shifted) in enumerate(zip(starts, drifted, strict=True)):
        rows = [{**r, "timestamp": T0 + start + j} for j, r in
                enumerate(table_rows(rng, 200, shift_b=3.0 if shifted else 0.0, start=200 * i))]
        assert client.post(MODEL + "/batches", json={"batch_id": f"w{i}", "rows": rows},
                           headers=auth(admin)).status_code == 201
    for bad in (-1, "soon"):
        r = client.post(MODEL + "/rules", json={"name": "x", "condition": "drift_share <= 0.2", "cooldown_s": bad},
                        headers=auth(admin))
        assert r.status_code == 422 and "cooldown_s" in r.text
    r = client.post(MODEL + "/rules", json={"name": "drift", "condition": "drift_share <= 0.2", "cooldown_s": 3600},
                    headers=auth(admin))
    assert r.status_code == 201 and r.json()["cooldown_s"] == 3600
    client.post(MODEL + "/analyze", headers=auth(admin))  # the worker's path: the rule's own cooldown, no override
    alerts = client.get(MODEL + "/alerts", headers=auth(admin)).json()["alerts"]
    # fired at window 0, resolved at 1 (T0 + 1199); window 2 ends within 3600 s: held; window 3 (T0 + 6199) fires
    assert sorted((a["window_seq"], a["to_state"]) for a in alerts) == [
        (0, "firing"), (1, "resolved"), (2, "pending"), (3, "firing")]
