"""An HTTP client of the monitoring service, for the code that serves a model.

>>> from stalwart.monitor import Client
>>> Client("http://127.0.0.1:8000", "sw_0123456789_secret")   # connects on first use
Client('http://127.0.0.1:8000')
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pandas as pd

from stalwart.errors import ConfigError, InputError, StalwartError

__all__ = ["Client", "rows_of"]

_RETRY = (429, 502, 503, 504)


def rows_of(data: Any, what: str) -> list[dict[str, Any]]:
    """JSON-ready rows of a DataFrame or a list of dicts (NaN becomes null)."""
    if isinstance(data, pd.DataFrame):
        clean = data.astype(object).where(data.notna(), None)
        return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                for r in clean.to_dict("records")]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) and all(isinstance(r, Mapping) for r in data):
        return [dict(r) for r in data]
    raise InputError(f"{what} must be a pandas DataFrame or a list of dicts (one per row); got {type(data).__name__}")


class Client:
    """Talk to ``stalwart serve``: register a model, log batches and labels, read windows.

    Parameters
    ----------
    url : the service's base URL, e.g. ``http://127.0.0.1:8000``
    key : an API key (``stalwart serve --create-key``); its project is the client's project
    timeout : seconds per request
    retries : tries after a network error or a 429/502/503/504, with exponential backoff (a batch
        keeps its ``batch_id`` across tries, so a retry is never stored twice)
    http : an ``httpx.Client`` to send through (tests pass FastAPI's TestClient)
    """

    def __init__(self, url: str, key: str, *, timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.5,
                 http: httpx.Client | None = None) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"Client(url=...) must be an http(s) URL such as 'http://127.0.0.1:8000'; got {url!r}")
        if not isinstance(key, str) or not key:
            raise ConfigError("Client(key=...) must be an API key; create one with "
                              "`stalwart serve --create-key --project NAME --scope ingest`")
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"}
        self._http = http
        self._own = http is None
        self._timeout, self.retries, self.backoff_s = timeout, int(retries), float(backoff_s)
        self._project: str | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._own and self._http is not None:
            self._http.close()
            self._http = None

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=self._timeout)
        for attempt in range(self.retries + 1):
            try:
                r = self._http.request(method, path, headers={**self._headers, **kwargs.pop("headers", {})}, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConfigError(f"cannot reach the monitoring service at {self.url}: {exc}. Is "
                                      "`stalwart serve` running there?") from None
            else:
                if r.status_code not in _RETRY or attempt == self.retries:
                    break
            time.sleep(self.backoff_s * 2 ** attempt)
        if r.status_code < 400:
            return r.json()
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        if r.status_code in (401, 403):
            raise ConfigError(f"the service refused the key ({r.status_code}): {detail}")
        if r.status_code < 500:
            raise InputError(f"the service refused {method} {path} ({r.status_code}): {detail}")
        raise StalwartError(f"the service failed on {method} {path} ({r.status_code}): {detail}")

    @property
    def project(self) -> str:
        """The project of the key (asked once)."""
        if self._project is None:
            self._project = self._request("GET", "/v1/whoami")["project"]
        return self._project

    def _model_path(self, model: str, tail: str = "") -> str:
        return f"/v1/projects/{self.project}/models/{model}{tail}"

    # -- the API ----------------------------------------------------------------------------------
    def register(self, name: str, reference: Any = None, *, columns: Mapping[str, str] | None = None,
                 task: str = "classification", classes: Sequence[Any] | None = None,
                 window_rows: int | None = None, **options: Any) -> dict[str, Any]:
        """Register model ``name`` with its input ``columns`` (``{name: kind}``; inferred from a
        DataFrame ``reference`` without its ``prediction`` and ``label`` columns when omitted)
        and upload ``reference``. ``options``: ``window_seconds``, ``drift_method``, ``alpha``,
        ``correction``, ``probe`` (False: no robustness probe), ``probe_sample`` (its rows),
        ``streams`` (streaming change detectors: ``[{"on": "output", "detector": "adwin"}]``)."""
        if columns is None:
            if not isinstance(reference, pd.DataFrame):
                raise ConfigError("register() needs columns={name: kind}, or a DataFrame reference to infer them")
            from stalwart.data.schema import Schema

            inputs = reference.drop(columns=[c for c in ("prediction", "label") if c in reference.columns])
            columns = {c.name: c.kind for c in Schema.infer(inputs).columns}
        body: dict[str, Any] = {"name": name, "columns": dict(columns), "task": task, **options}
        if classes is not None:
            body["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        if window_rows is not None:
            body["window_rows"] = int(window_rows)
        if reference is not None:
            body["reference"] = rows_of(reference, "reference")
        return self._request("POST", f"/v1/projects/{self.project}/models", json=body)

    def update_model(self, model: str, *, probe: bool | None = None, probe_sample: int | None = None
                     ) -> dict[str, Any]:
        """Switch ``model``'s robustness probe on or off, or change how many rows of each window it
        perturbs (needs an admin key); windows analysed from now on use the new settings."""
        body = {k: v for k, v in (("probe", probe), ("probe_sample", probe_sample)) if v is not None}
        if not body:
            raise ConfigError("update_model() needs probe=True/False or probe_sample=N")
        return self._request("PATCH", self._model_path(model), json=body)

    def log_batch(self, model: str, rows: Any, *, batch_id: str | None = None) -> dict[str, Any]:
        """Send one batch (inputs, ``prediction``, optional ``row_id``, ``timestamp``, ``score``).

        Without ``batch_id`` the batch is named by a hash of its content, so sending the same rows
        twice (a retry after a timeout) stores them once."""
        data = rows_of(rows, "rows")
        if batch_id is None:
            digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
            batch_id = f"sha256-{digest[:40]}"
        return self._request("POST", self._model_path(model, "/batches"), json={"batch_id": batch_id, "rows": data})

    def log_labels(self, model: str, labels: Any) -> dict[str, Any]:
        """Send labels joined by row id: ``{row_id: label}``, or rows/a DataFrame of ``row_id``, ``label``."""
        if isinstance(labels, Mapping):
            data = [{"row_id": str(k), "label": v.item() if hasattr(v, "item") else v} for k, v in labels.items()]
        else:
            data = rows_of(labels, "labels")
        return self._request("POST", self._model_path(model, "/labels"), json={"labels": data})

    def windows(self, model: str, *, after: int = -1, limit: int = 100) -> list[dict[str, Any]]:
        """Analysed windows of ``model`` after window ``after``, oldest first."""
        return self._request("GET", self._model_path(model, "/windows"), params={"after": after, "limit": limit})[
            "windows"]

    def analyze(self, model: str) -> dict[str, Any]:
        """Analyse the model's complete windows now (needs an admin key)."""
        return self._request("POST", self._model_path(model, "/analyze"))

    def add_rule(self, model: str, name: str, condition: str, *, for_windows: int = 1,
                 webhook_url: str | None = None) -> dict[str, Any]:
        """An alert rule such as ``"drift_share <= 0.2"`` (needs an admin key)."""
        return self._request("POST", self._model_path(model, "/rules"), json={
            "name": name, "condition": condition, "for_windows": for_windows, "webhook_url": webhook_url})

    def alerts(self, model: str) -> list[dict[str, Any]]:
        """The model's alert history, newest first."""
        return self._request("GET", self._model_path(model, "/alerts"))["alerts"]
