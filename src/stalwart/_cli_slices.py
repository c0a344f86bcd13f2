"""`stalwart slices`: the weak slices of a model on a data file (weak-slice discovery)."""

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
    names_option,
    out_console,
    run_one_check,
    user_errors,
)


@app.command()
def slices(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt, .pt2 (pickle/joblib with "
                                         "--trust).")],
    data: Annotated[str, typer.Argument(help="Labelled data: .csv, .parquet or .npz.")],
    target: Annotated[str | None, typer.Option(help="Label column of a table.")] = None,
    by: Annotated[str, typer.Option(help="What a slice is weak at: error, loss, flip:<perturbation> (e.g. "
                                    "flip:feature_noise) or attack.")] = "error",
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to slice by (default: all).")] = None,
    sensitive: Annotated[str | None, typer.Option(help="Comma-separated columns to slice by that the model does not "
                                                  "take (kept beside the inputs).")] = None,
    max_predicates: Annotated[int, typer.Option(min=1, max=4, help="Conditions per slice.")] = 2,
    min_support: Annotated[float, typer.Option(help="Fewest rows in a slice: a count, or a fraction of the rows "
                                               "below 1.")] = 0.01,
    alpha: Annotated[float, typer.Option(help="False discovery rate over every slice examined.")] = 0.05,
    max_slices: Annotated[int, typer.Option(min=1, help="Slices reported at most.")] = 10,
    n_boot: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for each slice's stability.")] = 20,
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md, junit.xml.")] = Path(
        "slices-report"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Find the slices of DATA (e.g. age >= 62 and region = 'north') where MODEL is significantly worse."""
    from stalwart.checks.slices import WeakSlices
    from stalwart.data import load_data
    from stalwart.models import load_model
    from stalwart.report import Report

    check_out_dir(out)
    with user_errors():
        chosen = names_option(columns)
        beside = names_option(sensitive, "--sensitive", "sex,age_band")
        check = WeakSlices(by=by, columns=chosen, max_predicates=max_predicates, min_support=min_support,
                           alpha=alpha, max_slices=max_slices, n_boot=n_boot)
        loaded = load_model(model, trust=trust)
        dataset = load_data(data, target=target)
        if beside:
            dataset = dataset.with_sensitive(beside)
        result, seconds = run_one_check(check, loaded, dataset, seed, unusable="no slice could be measured")
        report = Report.from_run(model=loaded, data=dataset, results=[result],
                                 suite={"name": "slices", "checks": [{"check": result.check, "params": result.params}]},
                                 seed=seed, total_s=seconds)
        report.save(out, strict=strict)
    search = result.tables["search"][0]
    table = Table(title=f"Weak slices ({escape(search['target'])}): {escape(loaded.name)} on {escape(dataset.name)} "
                  f"[{STATUS_STYLE.get(result.status.value, '')}]{result.status.value}[/]", title_justify="left")
    for col in ("slice", "rows", "value (95% CI)", "rest", "effect (95% CI)", "p", "stability"):
        table.add_column(col, justify="left" if col == "slice" else "right")
    for r in result.tables["slices"]:
        stab = "–" if r["stability"] is None else f"{r['stability']:.2f}"
        table.add_row(escape(r["slice"]), str(r["n"]), f"{r['metric']:.3f} [{r['metric_low']:.3f}, {r['metric_high']:.3f}]",
                      f"{r['complement']:.3f}", f"{r['effect']:+.3f} [{r['effect_low']:+.3f}, {r['effect_high']:+.3f}]",
                      f"{r['p_value']:.1e}", stab)
    out_console.print(table)
    out_console.print(escape(result.tables["notes"][0]["note"]), highlight=False)
    out_console.print(f"overall {search['overall']:.3f}; report written to {escape(str(out / 'index.html'))}",
                      highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))
