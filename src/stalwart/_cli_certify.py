"""`stalwart certify`: certified robustness of a model on a data file, with the bracket."""

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
    out_console,
    run_one_check,
    user_errors,
)


def _eps_option(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not (v > 0 and v < float("inf")) for v in values):
        fail(f"--eps must be a comma-separated list of numbers > 0 (fractions of each feature's range), e.g. "
             f"0.01,0.03; got {text!r}")
    return values


@app.command()
def certify(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt, .pt2 (pickle/joblib with "
                                         "--trust).")],
    data: Annotated[str, typer.Argument(help="Labelled data: .csv, .parquet or .npz.")],
    target: Annotated[str | None, typer.Option(help="Label column of a table.")] = None,
    method: Annotated[str, typer.Option(help="crown or ibp (bound propagation: torch ReLU networks, scikit-learn "
                                        "linear models and ReLU MLPs) or smoothing (randomized smoothing: any "
                                        "model).")] = "crown",
    norm: Annotated[str | None, typer.Option(help="linf or l2; default linf for crown and ibp, l2 for smoothing "
                                             "(which certifies l2 radii only).")] = None,
    eps: Annotated[str, typer.Option(help="Budgets (smoothing: radii), comma-separated fractions of each "
                                     "feature's range.")] = "0.01,0.03,0.05,0.1",
    sigma: Annotated[float, typer.Option(help="Smoothing noise, a fraction of each "
                                         "feature's range.")] = 0.25,
    n: Annotated[int, typer.Option(min=1, help="Smoothing: noisy samples per input.")] = 10_000,
    sequential: Annotated[bool, typer.Option("--sequential", help="Smoothing: stop drawing noise for an input once "
                                             "its certificate at the reference radius (the 2nd --eps) is decided: "
                                             "fewer model calls, the same guarantee.")] = False,
    attack: Annotated[bool, typer.Option("--attack/--no-attack", help="Also attack at each eps (the bracket: "
                                         "certified <= true <= attacked).")] = True,
    level: Annotated[str, typer.Option(help="Attack strength: fast or standard.")] = "fast",
    max_samples: Annotated[int, typer.Option(min=1, help="Samples certified.")] = 200,
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md, junit.xml.")] = Path(
        "certify-report"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Certified accuracy of MODEL on DATA (a proven lower bound) beside attacked accuracy (an upper bound)."""
    from stalwart.checks.certified import CertifiedRobustness
    from stalwart.data import load_data
    from stalwart.models import load_model
    from stalwart.report import Report

    check_out_dir(out)
    eps_values = _eps_option(eps)
    norm = norm or ("l2" if method == "smoothing" else "linf")
    if sequential and method != "smoothing":
        fail(f"--sequential stops randomized smoothing's sampling early; it needs --method smoothing (got {method!r})")
    with user_errors():
        check = CertifiedRobustness(method=method, norm=norm, eps=eps_values, attack=attack, level=level, sigma=sigma,
                                    n=n, max_samples=max_samples, sequential=sequential)
        loaded = load_model(model, trust=trust)
        dataset = load_data(data, target=target)
        result, seconds = run_one_check(check, loaded, dataset, seed, unusable="nothing could be certified")
        report = Report.from_run(model=loaded, data=dataset, results=[result],
                                 suite={"name": "certify", "checks": [{"check": result.check, "params": result.params}]},
                                 seed=seed, total_s=seconds)
        report.save(out, strict=strict)
    smoothing = method == "smoothing"
    table = Table(title=f"Certified robustness ({escape(method)}, {escape(norm)}): {escape(loaded.name)} on "
                  f"{escape(dataset.name)} [{STATUS_STYLE.get(result.status.value, '')}]{result.status.value}[/]",
                  title_justify="left")
    columns = ["radius" if smoothing else "eps", "certified"] + ([] if smoothing or not attack else ["attacked", "gap"])
    for col in columns:
        table.add_column(col, justify="right")
    for row in result.tables["bracket"]:
        cells = [f"{row['radius' if smoothing else 'eps']:g}", f"{row['certified_accuracy']:.3f}"]
        if "robust_accuracy" in row:
            cells += [f"{row['robust_accuracy']:.3f}", f"{row['gap']:.3f}"]
        table.add_row(*cells)
    out_console.print(table)
    out_console.print(f"clean accuracy {result.metrics['clean_accuracy'].value:.3f} on "
                      f"{result.metrics['clean_accuracy'].n} samples; eps in fractions of each feature's range",
                      highlight=False)
    if smoothing and result.tables.get("evaluation"):
        ev = result.tables["evaluation"][0]
        out_console.print(f"noisy copies evaluated: {ev['queries']} ({ev['queries'] / max(ev['n_samples'], 1):.0f} "
                          f"per input{', sequential' if ev.get('sequential') else ''})", highlight=False)
    out_console.print(f"report written to {escape(str(out / 'index.html'))}", highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))
