"""Alert rules on window metrics, their state machine and webhook delivery.

A rule is a condition in the suites' language (:class:`stalwart.checks.Condition`, e.g.
``drift_share <= 0.2`` or ``accuracy >= 0.9``): it states what should hold, and a window whose
metric FAILs it *violates* the rule (WARN does not). The state moves per window, with hysteresis
of ``for_windows`` (n) consecutive windows both ways:

========  =============================================  ==============================================
state     a violating window                             a passing window
========  =============================================  ==============================================
ok        pending (firing at once when n = 1)            ok
pending   firing once n windows in a row violated        ok
firing    firing                                         resolved once n windows in a row passed
resolved  pending (firing when n = 1)                    ok
========  =============================================  ==============================================

**Cooldown**: a rule with ``cooldown_s`` > 0 does not fire again until that many seconds after it
last resolved, measured on the windows' end times (data time, so a backlog analysed at once is
judged as it happened): a violating window inside the cooldown holds the rule at ``pending``, and
the first violating window after it fires as usual.

A window that did not measure the metric leaves the state alone; a rule on a label metric
(``accuracy``, ``mae``, ``n_labelled``, ``probe_accuracy``) waits at such a window until its labels
arrive. Each transition is stored; those into ``firing`` and ``resolved`` are delivered to the rule's webhook
as JSON with a Slack-compatible ``text`` field and an ``Idempotency-Key`` header (the same key on
every retry and after a restart), retried with exponential backoff on network errors, 5xx and 429.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stalwart._validation import check_param
from stalwart.checks.base import Condition, Metric, Status
from stalwart.errors import ConfigError
from stalwart.monitor.store import Store, check_store

__all__ = ["AlertRule", "STATES", "LABEL_METRICS", "next_state", "cooling", "judge_rules", "deliver_pending", "webhook_body"]

STATES = ("ok", "pending", "firing", "resolved")
LABEL_METRICS = ("accuracy", "mae", "n_labelled", "probe_accuracy")
_NOTIFY = ("firing", "resolved")


@dataclass(frozen=True)
class AlertRule:
    """A checked rule: a name, a condition, the hysteresis and an optional webhook.

    Examples
    --------
    >>> AlertRule("drift", "drift_share <= 0.2", for_windows=2).condition.threshold
    0.2
    """

    name: str
    condition: Condition | str
    for_windows: int = 1
    webhook_url: str | None = None
    cooldown_s: float = 0.0

    def __post_init__(self) -> None:
        check_param(self, "name", self.name, isinstance(self.name, str) and 0 < len(self.name) <= 200,
                    "a non-empty name of at most 200 characters")
        object.__setattr__(self, "condition", Condition.coerce(self.condition))
        check_param(self, "for_windows", self.for_windows, isinstance(self.for_windows, int)
                    and not isinstance(self.for_windows, bool) and 1 <= self.for_windows <= 1000,
                    "an integer in 1..1000 (consecutive windows before firing or resolving)")
        check_param(self, "cooldown_s", self.cooldown_s, isinstance(self.cooldown_s, (int, float))
                    and not isinstance(self.cooldown_s, bool) and 0 <= self.cooldown_s < float("inf"),
                    "a finite number of seconds >= 0 (0: no cooldown)")
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url) if isinstance(self.webhook_url, str) else None
            if (parts is None or parts.scheme not in ("http", "https") or not parts.netloc
                    or any(ord(ch) <= 32 or ord(ch) == 127 for ch in self.webhook_url)):
                raise ConfigError(f"AlertRule(webhook_url=...) must be an http(s) URL without spaces or control "
                                  f"characters; got {self.webhook_url!r}")


def next_state(state: str, breaches: int, clears: int, violated: bool, n: int, *, cooling: bool = False
               ) -> tuple[str, int, int]:
    """The rule's ``(state, breaches, clears)`` after one judged window (see the module's table);
    ``cooling``: the window lies within the rule's cooldown, so it may not start firing.

    >>> s, seen = ("ok", 0, 0), []
    >>> for v in (True, True, False, True, False, False):
    ...     s = next_state(*s, violated=v, n=2)
    ...     seen.append(s[0])
    >>> seen
    ['pending', 'firing', 'firing', 'firing', 'firing', 'resolved']
    """
    if state not in STATES:
        raise ConfigError(f"alert state {state!r} is not one of {list(STATES)}")
    if violated:
        breaches += 1
        if state == "firing" or (breaches >= n and not cooling):
            return "firing", breaches, 0
        return "pending", breaches, 0
    if state == "firing":
        clears += 1
        return ("resolved", 0, 0) if clears >= n else ("firing", 0, clears)
    return "ok", 0, 0


def _idempotency_key(rule_id: int, window_seq: int, to_state: str) -> str:
    return hashlib.sha256(f"stalwart-alert:{rule_id}:{window_seq}:{to_state}".encode()).hexdigest()


def cooling(resolved_at: float | None, at: float, cooldown_s: float) -> bool:
    """Whether time ``at`` lies within ``cooldown_s`` seconds after a resolution at ``resolved_at``.

    >>> cooling(None, 100.0, 60.0), cooling(50.0, 100.0, 60.0), cooling(50.0, 110.0, 60.0)
    (False, True, False)
    """
    return cooldown_s > 0 and resolved_at is not None and at - resolved_at < cooldown_s


def _last_resolution(store: Store, model_id: int, rule_name: str) -> float | None:
    """End time of the window at which the rule last resolved (None if it never did)."""
    seq = next((a["window_seq"] for a in store.alerts(model_id) if a["rule"] == rule_name
                and a["to_state"] == "resolved"), None)
    if seq is None:
        return None
    found = store.windows(model_id, after=seq - 1, limit=1)
    return found[0]["end_ts"] if found and found[0]["seq"] == seq else None


def judge_rules(store: Store, model_id: int, *, cooldown_s: float | None = None) -> list[dict[str, Any]]:
    """Move every rule of a model through the windows it has not judged; returns the new events.

    ``cooldown_s`` overrides every rule's own (its ``cooldown_s`` column, 0 by default: no cooldown)."""
    events = []
    for rule in store.rules(model_id):
        condition = Condition.parse(rule["condition"])
        state, breaches, clears, last = rule["state"], rule["breaches"], rule["clears"], rule["last_window"]
        cooldown = float(rule.get("cooldown_s") or 0.0) if cooldown_s is None else float(cooldown_s)
        resolved_at = _last_resolution(store, model_id, rule["name"]) if cooldown > 0 else None
        for window in store.windows(model_id, after=last):
            m = window["metrics"].get(condition.metric)
            value = None if m is None else m.get("value")
            if value is None:
                if condition.metric in LABEL_METRICS:
                    break  # wait for this window's labels
                last = window["seq"]
                store.save_rule_state(rule["id"], state, breaches, clears, last, None)
                continue
            status, message = condition.evaluate({condition.metric: Metric(condition.metric, value, m.get("low"),
                                                                            m.get("high"), m.get("n"))})
            held = cooling(resolved_at, window["end_ts"], cooldown)
            new, breaches, clears = next_state(state, breaches, clears, status == Status.FAIL, rule["for_windows"],
                                               cooling=held)
            if new == "resolved":
                resolved_at = window["end_ts"]
            if held and new == "pending" and breaches >= rule["for_windows"]:
                message = (f"{message}; held by the cooldown until {resolved_at + cooldown:.0f} "
                           f"({cooldown:g} s after the rule resolved)")
            event = None
            if new != state:
                notify = new in _NOTIFY and rule["webhook_url"] is not None
                event = {"model_id": model_id, "window_seq": window["seq"], "from_state": state, "to_state": new,
                         "value": value, "message": message, "delivery": "pending" if notify else "none",
                         "idempotency_key": _idempotency_key(rule["id"], window["seq"], new)}
                events.append({"rule": rule["name"], **event})
            state, last = new, window["seq"]
            store.save_rule_state(rule["id"], state, breaches, clears, last, event)
    return events


def webhook_body(alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON a webhook receives: Slack's ``text`` plus the alert's fields."""
    verb = "FIRING" if alert["to_state"] == "firing" else "resolved"
    text = (f"[stalwart] {verb}: {alert['rule']} on {alert['project']}/{alert['model']} "
            f"(window {alert['window_seq']}): {alert['message']}; rule '{alert['condition']}'")
    return {"text": text, "alert": {k: alert[k] for k in ("project", "model", "rule", "condition", "window_seq",
                                                           "from_state", "to_state", "value", "message")},
            "idempotency_key": alert["idempotency_key"]}


def deliver_pending(store: Store, *, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0,
                    sleep: Callable[[float], None] = time.sleep, client: Any = None) -> dict[str, int]:
    """POST every undelivered alert to its rule's webhook; returns ``{"delivered": n, "failed": n}``.

    Each alert is tried up to ``1 + retries`` times, sleeping ``backoff_s * 2**attempt`` between
    tries; a 2xx answer delivers it, a 4xx other than 408/429 fails it at once (retrying cannot
    help), anything else is retried. The ``Idempotency-Key`` header lets the receiver drop repeats.
    """
    import httpx

    check_store(store, "deliver_pending")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise ConfigError(f"deliver_pending(retries=...) must be an integer in 0..10; got {retries!r}")
    counts = {"delivered": 0, "failed": 0}
    pending = list(store.pending_deliveries())
    if not pending:  # the worker calls this every pass: no client (and no SSL context) for nothing
        return counts
    own = client is None
    client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
    try:
        for alert in pending:
            body = webhook_body(alert)
            headers = {"Idempotency-Key": alert["idempotency_key"], "User-Agent": "stalwart-monitor"}
            outcome, attempts = "failed", 0
            for attempt in range(retries + 1):
                attempts += 1
                try:
                    code = client.post(alert["webhook_url"], json=body, headers=headers).status_code
                except httpx.HTTPError:
                    code = None
                if code is not None and 200 <= code < 300:
                    outcome = "delivered"
                    break
                if code is not None and 400 <= code < 500 and code not in (408, 429):
                    break
                if attempt < retries:
                    sleep(backoff_s * 2 ** attempt)
            store.set_delivery(alert["id"], outcome, alert["attempts"] + attempts)
            counts[outcome] += 1
    finally:
        if own:
            client.close()
    return counts
