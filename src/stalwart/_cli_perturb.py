"""The `stalwart` commands for perturb; they register on the app in :mod:`stalwart.cli`."""

from __future__ import annotations

from stalwart.cli import app  # noqa: F401 - commands below register with @app.command()
