"""The `stalwart` command line: demo, scan, report render.

Exit codes: 0 every condition passed, 1 a condition failed (or a check errored), 2 bad input or
configuration (the message says how to fix it; no traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from stalwart import __version__
from stalwart.errors import StalwartError

app = typer.Typer(
    name="stalwart", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Measure the robustness of ML models: natural perturbations, adversarial attacks, reports.",
)
report_app = typer.Typer(no_args_is_help=True, help="Work with saved reports.")
app.add_typer(report_app, name="report")

out_console = Console()
err_console = Console(stderr=True)

STATUS_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "ERROR": "bold red",
                "SKIP": "dim"}


def _version(value: bool) -> None:
    if value:
        out_console.print(f"stalwart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """stalwart: robustness testing for ML models."""


def fail(message: str) -> None:
    """Print a user error (no traceback) and exit 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except StalwartError as exc:
        fail(str(exc))


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; nothing when output is piped."""
    if not (enabled and err_console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(name: str, i: int, n: int) -> None:
            bar.update(task, description=name, completed=i, total=n)
        yield update


def print_scorecard(report: Any, title: str | None = None) -> None:
    """One row per check: status, headline number and the first line of its verdict."""
    d = report.to_dict() if hasattr(report, "to_dict") else report
    status = d.get("status", "?")
    heading = title or f"{d['model']['name']} on {d['data']['name']}"
    table = Table(title=f"{heading}: [{STATUS_STYLE.get(status, '')}]{status}[/]", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("headline", overflow="fold")
    table.add_column("verdict", overflow="fold", ratio=1)
    for r in d["results"]:
        # the terminal shows one line: the worst condition's verdict, else the message's first line
        # (the report has all of them)
        judged = sorted((c for c in r.get("conditions") or [] if c["status"] != "PASS"),
                        key=lambda c: ("ERROR", "FAIL", "WARN").index(c["status"]) if c["status"] in
                        ("ERROR", "FAIL", "WARN") else 3)
        verdict = judged[0]["message"] if judged else (r.get("message") or "").split("; ")[0]
        table.add_row(r["check"], f"[{STATUS_STYLE.get(r['status'], '')}]{r['status']}[/]",
                      r.get("headline") or "", verdict)
    out_console.print(table)


@app.command()
def scan(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt (pickle/joblib with --trust).")],
    data: Annotated[str, typer.Argument(help="Data file: .csv, .parquet or .npz.")],
    target: Annotated[str | None, typer.Option(help="Label column of a table (CSV/Parquet).")] = None,
    modality: Annotated[str | None, typer.Option(help="tabular, image or text (inferred when omitted).")] = None,
    suite: Annotated[str, typer.Option(help="quick, standard, or a suite YAML file.")] = "quick",
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md and junit.xml.")] = Path("report"),
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
) -> None:
    """Scan MODEL on DATA with a suite of checks; write the report; exit 1 if a check fails."""
    from stalwart._scan import scan as run_scan
    from stalwart.data import load_data
    from stalwart.models import load_model

    with user_errors():
        if modality is not None and modality not in ("tabular", "image", "text"):
            fail(f"--modality must be one of tabular, image, text; got {modality!r}")
        loaded_model = load_model(model, trust=trust)
        dataset = load_data(data, target=target, modality=modality)
        with progress_bar(True) as progress:
            report = run_scan(loaded_model, dataset, suite=suite, seed=seed, progress=progress)
        report.save(out)
    print_scorecard(report)
    out_console.print(f"report written to {out / 'index.html'}")
    raise typer.Exit(0 if report.passed else 1)


@app.command()
def attack(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt (pickle/joblib with --trust).")],
    data: Annotated[str, typer.Argument(help="Data file: .csv, .parquet or .npz.")],
    attack_name: Annotated[str | None, typer.Option(
        "--attack", help="Attack name (fgsm, pgd, apgd-ce, square, hopskipjump, tabular-search, ...), 'evaluate' "
        "for the full ensemble, or word_substitution for text. Default: pgd (word_substitution for text).")] = None,
    eps: Annotated[float, typer.Option(help="Perturbation budget in the data's own units (tabular-search: a "
                                       "fraction of each column's range).")] = 0.1,
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    max_change: Annotated[float, typer.Option(help="Text only: largest fraction of words to change.")] = 0.2,
    target: Annotated[str | None, typer.Option(help="Label column of a table (CSV/Parquet).")] = None,
    modality: Annotated[str | None, typer.Option(help="tabular or image (inferred when omitted).")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Attack at most this many samples (stratified).")] = None,
    out: Annotated[Path, typer.Option(help="Where to save the adversarial examples (.npz); a .json summary "
                                      "goes beside it.")] = Path("adv.npz"),
    seed: Annotated[int, typer.Option(help="Seed of the attack.")] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
) -> None:
    """Attack MODEL on DATA; save adversarial examples and a summary."""
    from stalwart.data import load_data
    from stalwart.models import load_model

    with user_errors():
        loaded_model = load_model(model, trust=trust)
        dataset = load_data(data, target=target, modality=modality)
        if dataset.y is None:
            fail("the data has no labels; name the label column with --target")
        if max_samples is not None:
            dataset = dataset.sample(max_samples, seed=seed)
        attack_name = attack_name or ("word_substitution" if dataset.modality == "text" else "pgd")
        if dataset.modality == "text":
            summary = _attack_text(loaded_model, dataset, attack_name, max_change, seed, out)
        else:
            summary = _attack_numeric(loaded_model, dataset, attack_name, norm, eps, seed, out)
    budget = f"max_change={max_change:g}" if dataset.modality == "text" else f"{norm}, eps={eps:g}"
    table = Table(title=f"{attack_name} ({budget}) on {dataset.name}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("n_samples", "clean_accuracy", "robust_accuracy", "attack_success_rate", "median_distance",
                "queries_mean", "time_s"):
        if summary.get(key) is not None:
            value = summary[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out_console.print(table)
    for warning in summary.get("sanity", []):
        if not warning["passed"]:
            err_console.print(f"[yellow]warning:[/] {warning['name']}: {warning['detail']}")
    out_console.print(f"adversarial examples written to {out}")


def _attack_numeric(model: Any, dataset: Any, name: str, norm: str, eps: float, seed: int, out: Path) -> dict:
    """Run one attack (or the ensemble) on numeric data; save arrays (.npz) and a summary (.json)."""
    import json

    import numpy as np

    from stalwart import attacks
    from stalwart._io import atomic_write

    x = dataset.numeric_x().astype(np.float32)
    threat = attacks.ThreatModel.from_schema(dataset.schema, norm, eps)
    attacks.check_eps_scale(threat, x)
    if name == "evaluate":
        ev = attacks.evaluate(model, x, dataset.y, threat, level="standard", seed=seed)
        summary = ev.to_dict()
        arrays = {"x_adv": ev.x_adv, "y": ev.y, "robust": ev.robust, "broken_by": ev.broken_by}
    else:
        extra = {"schema": dataset.schema} if name == "tabular-search" else {}
        res = attacks.get(name, threat, seed=seed, **extra).run(model, x, dataset.y)
        summary = res.to_dict()
        arrays = {"x_adv": res.x_adv, "y": res.y, "success": res.success, "distance": res.distance,
                  "pred_adv": res.pred_adv, "queries": res.queries}
    with atomic_write(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    with atomic_write(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary


def _attack_text(model: Any, dataset: Any, name: str, max_change: float, seed: int, out: Path) -> dict:
    """Word substitution on text; save original and perturbed sentences (.csv) and a summary (.json)."""
    import json

    import pandas as pd

    from stalwart._io import atomic_write
    from stalwart.attacks import TEXT_ATTACKS

    if name not in TEXT_ATTACKS:
        fail(f"--attack {name!r} does not apply to text data; text attacks: {', '.join(TEXT_ATTACKS.names())}")
    res = TEXT_ATTACKS.get(name)(max_change=max_change, seed=seed).run(model, dataset.x, dataset.y)
    table = pd.DataFrame({"text": res.original, "perturbed": res.perturbed, "label": res.y,
                          "pred_adv": res.pred_adv, "success": res.success, "words_changed": res.words_changed})
    with atomic_write(out) as tmp:
        table.to_csv(tmp, index=False)
    summary = res.to_dict()
    with atomic_write(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the two reports.")] = Path("demo-report"),
    suite: Annotated[str, typer.Option(help="quick or standard.")] = "quick",
    seed: Annotated[int, typer.Option(help="Seed for training and every check.")] = 0,
) -> None:
    """Train two built-in models (breast_cancer pipeline, digits CNN), scan them, write reports."""
    from stalwart.demo import run_demo

    with user_errors(), progress_bar(True) as progress:
        reports = run_demo(out, suite=suite, seed=seed, progress=progress)
    for name, report in reports.items():
        print_scorecard(report, title=name)
        out_console.print(f"report written to {out / name / 'index.html'}")
    # the demo shows what a scan finds, failures included; `stalwart scan` is the gate
    out_console.print("demo finished; `stalwart scan` exits 1 when a check fails, for CI gates")


@report_app.command("render")
def report_render(
    report_json: Annotated[Path, typer.Argument(help="A report.json written by stalwart.")],
    out: Annotated[Path | None, typer.Option(help="Directory to write into (default: beside the JSON).")] = None,
) -> None:
    """Re-render index.html, report.md and junit.xml from a saved report.json."""
    from stalwart.report import Report

    with user_errors():
        report = Report.load(report_json)
        target = out or report_json.parent
        report.save(target)
    out_console.print(f"report written to {target / 'index.html'}")


# commands kept in their own modules register on `app` when imported
from stalwart import _cli_perturb, _cli_shift  # noqa: E402, F401


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
