"""`stalwart serve --create-key` and the exit-2 contract of the service's commands."""

import subprocess
import sys

from typer.testing import CliRunner

from stalwart.cli import app
from stalwart.monitor import Store

runner = CliRunner()


def test_create_key_prints_a_working_key_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    r = runner.invoke(app, ["serve", "--db", db, "--create-key", "--project", "shop", "--scope", "ingest"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    store = Store(db)
    who = store.authenticate(key)
    store.close()
    assert (who.project, who.scope) == ("shop", "ingest")
    assert key not in (tmp_path / "m.db").read_bytes().decode("latin-1")  # only its hash is stored


def test_bad_options_exit_2_with_the_fix():
    r = runner.invoke(app, ["serve", "--create-key"])
    assert r.exit_code == 2 and "--project" in r.output
    r = runner.invoke(app, ["serve", "--db", "nonsense", "--create-key", "--project", "p"])
    assert r.exit_code == 2 and "not a database URL" in r.output
    r = runner.invoke(app, ["serve", "--db", "mysql+nodriver://x/y", "--create-key", "--project", "p"])
    assert r.exit_code == 2 and "driver" in r.output


def test_without_the_extra_serve_says_what_to_install():
    code = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['stalwart', 'serve']; "
            "from stalwart.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "pip install 'stalwart[monitor]'" in r.stderr and "Traceback" not in r.stderr


def test_each_server_process_builds_its_app_from_the_settings_in_the_environment(tmp_path, monkeypatch):
    import pytest

    from stalwart.errors import ConfigError
    from stalwart.monitor import Settings
    from stalwart.monitor.app import SETTINGS_ENV, app_from_env, settings_env

    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    with pytest.raises(ConfigError, match="stalwart serve"):
        app_from_env()
    settings = Settings(db=f"sqlite:///{tmp_path / 'm.db'}", window_rows=123, worker=False)
    monkeypatch.setenv(SETTINGS_ENV, settings_env(settings))
    application = app_from_env()
    assert application.state.settings == settings
    application.state.store.close()


def test_the_access_log_is_off_unless_asked_for(tmp_path, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    db = f"sqlite:///{tmp_path / 'm.db'}"
    for args in ([], ["--access-log"], ["--workers", "2"], ["--workers", "2", "--access-log"]):
        r = runner.invoke(app, ["serve", "--db", db, "--port", "8123", *args])
        assert r.exit_code == 0, r.output
    assert [kw["access_log"] for _, kw in calls] == [False, True, False, True]
    assert [kw.get("workers", 1) for _, kw in calls] == [1, 1, 2, 2]
    for target, _ in calls[:2]:  # the single-process app was built, with its store open: close it
        target.state.store.close()


def test_the_analysis_runs_in_a_child_process_unless_asked_to_stay_in_the_thread(tmp_path, monkeypatch):
    import json
    import os

    import uvicorn

    from stalwart.monitor.app import SETTINGS_ENV

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    monkeypatch.setenv(SETTINGS_ENV, "{}")  # restored (unset) after the test: serve sets it below
    db = f"sqlite:///{tmp_path / 'm.db'}"
    for args in ([], ["--analysis-in-thread"]):
        r = runner.invoke(app, ["serve", "--db", db, "--port", "8123", *args])
        assert r.exit_code == 0, r.output
    assert [target.state.settings.analysis_process for target, _ in calls] == [True, False]
    for target, _ in calls:
        target.state.store.close()
    r = runner.invoke(app, ["serve", "--db", db, "--port", "8123", "--workers", "2", "--analysis-in-thread"])
    assert r.exit_code == 0, r.output
    assert json.loads(os.environ[SETTINGS_ENV])["analysis_process"] is False
