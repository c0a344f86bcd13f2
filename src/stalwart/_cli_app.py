"""The `stalwart` Typer application and the option texts every command module shares.

``cli.py`` and the command modules it imports (``_cli_perturb``, ``_cli_shift``) register their
commands on :data:`app`; none of them imports another, so the command line has no import cycle.
"""

from __future__ import annotations

import typer

__all__ = ["app", "report_app", "SEED_HELP", "STRICT_HELP"]

app = typer.Typer(
    name="stalwart", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Measure the robustness of ML models: natural perturbations, adversarial attacks, drift, OOD, reports. "
         "Exit codes: 0 passed (warnings pass unless --strict), 1 a check failed, 2 bad input (nothing written), "
         "3 internal error, 130 interrupted.",
)
report_app = typer.Typer(no_args_is_help=True, help="Work with saved reports.")
app.add_typer(report_app, name="report")

SEED_HELP = "Seed for every random choice (an integer >= 0); the same seed gives the same report."
STRICT_HELP = "Exit 1 on a warning too (default: only a failed check exits 1)."
