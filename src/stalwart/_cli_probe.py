"""`stalwart probe`: security probes beyond evasion (membership inference, extraction, poisoning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stalwart._cli_app import SEED_HELP, STRICT_HELP, app
from stalwart._cli_support import (
    STATUS_STYLE,
    check_out_dir,
    escape,
    exit_code,
    fail,
    names_option,
    out_console,
    run_one_check,
    user_errors,
)

PROBES = ("membership", "extraction", "poisoning")


@app.command()
def probe(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt, .pt2 (pickle/joblib with "
                                         "--trust).")],
    data: Annotated[str, typer.Argument(help="Held-out labelled data (rows the model never saw): .csv, .parquet or "
                                        ".npz.")],
    probe: Annotated[str, typer.Option("--probe", help="membership, extraction or poisoning.")] = "membership",
    train: Annotated[str | None, typer.Option(help="The model's training rows, with the label column (membership: the "
                                              "members; poisoning: the data refitted with poison).")] = None,
    target: Annotated[str | None, typer.Option(help="Label column of the tables.")] = None,
    attack: Annotated[str, typer.Option(help="Membership attack: loss, confidence, shadow or lira (the last two refit "
                                        "a scikit-learn model).")] = "loss",
    kind: Annotated[str, typer.Option(help="Poisoning: random, targeted or backdoor.")] = "backdoor",
    budgets: Annotated[str, typer.Option(help="Extraction: comma-separated query budgets.")] = "100,300,1000",
    queries: Annotated[str, typer.Option(help="Extraction: natural, random or perturbed queries.")] = "natural",
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md, junit.xml.")] = Path(
        "probe-report"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Probe MODEL for what it gives away: its training rows (membership), itself (extraction), or how
    far poisoned training data moves it (poisoning)."""
    from stalwart.checks.security import Extraction, MembershipInference, Poisoning
    from stalwart.data import load_data
    from stalwart.models import load_model
    from stalwart.report import Report

    if probe not in PROBES:
        fail(f"--probe must be one of {', '.join(PROBES)}; got {probe!r}")
    if probe in ("membership", "poisoning") and train is None:
        fail(f"--probe {probe} needs --train, the model's training rows (with the label column); extraction needs "
             "only held-out data")
    check_out_dir(out)
    with user_errors():
        if probe == "membership":
            check = MembershipInference(members=train, attack=attack)
        elif probe == "poisoning":
            check = Poisoning(train_data=train, kind=kind)
        else:
            try:
                counts = [int(b) for b in names_option(budgets, "--budgets", "100,1000") or []]
            except ValueError:
                fail(f"--budgets must be comma-separated whole numbers of queries > 0, e.g. 100,1000; got {budgets!r}")
            check = Extraction(budgets=counts, queries=queries)
        loaded = load_model(model, trust=trust)
        dataset = load_data(data, target=target)
        result, seconds = run_one_check(check, loaded, dataset, seed, unusable="the probe cannot run")
        report = Report.from_run(model=loaded, data=dataset, results=[result],
                                 suite={"name": "probe", "checks": [{"check": result.check, "params": result.params}]},
                                 seed=seed, total_s=seconds)
        report.save(out, strict=strict)
    table = Table(title=f"{escape(result.check)}: {escape(loaded.name)} on {escape(dataset.name)} "
                  f"[{STATUS_STYLE.get(result.status.value, '')}]{result.status.value}[/]", title_justify="left")
    table.add_column("metric")
    table.add_column("value (95% CI)", justify="right")
    for name, metric in result.metrics.items():
        table.add_row(escape(name), metric.format())
    out_console.print(table)
    for row in result.tables.get("notes", [])[:3]:
        out_console.print(escape(str(row["note"])), highlight=False)
    out_console.print(f"report written to {escape(str(out / 'index.html'))}", highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))
