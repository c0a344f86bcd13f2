"""The `stalwart` command line: demo, scan, attack, perturb, drift, ood, report render.

Every command follows one exit-code contract (see :mod:`stalwart._cli_support`): 0 done (WARN
passes unless ``--strict``), 1 a check failed or could not be measured, 2 bad input or
configuration (the message says how to fix it; nothing is written), 3 an internal error (a
traceback file is named), 130 interrupted. Inputs and outputs are checked before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stalwart import __version__
from stalwart._cli_app import SEED_HELP, STRICT_HELP, app, report_app
from stalwart._cli_execute import ADDRESS_HELP, EXECUTOR_HELP, executor_option
from stalwart._cli_support import (
    STATUS_STYLE,
    check_out_dir,
    check_out_file,
    err_console,
    escape,
    exit_code,
    fail,
    out_console,
    progress,
    run_main,
    user_errors,
)

MODALITIES = ("tabular", "image", "text")
#: output formats of `stalwart attack`, by extension, and the modalities each can hold
ATTACK_FORMATS = {".npz": "npz", ".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ATTACK_FORMATS_FOR = {"image": ("npz",), "tabular": ("npz", "csv", "parquet"), "text": ("csv", "parquet")}


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


def _check_modality(modality: str | None) -> None:
    if modality is not None and modality not in MODALITIES:
        fail(f"--modality must be one of {', '.join(MODALITIES)}; got {modality!r}")


def print_scorecard(report: Any, title: str | None = None) -> None:
    """One row per check: status, the headline (what was found, where it went worst, which way is
    better) and the verdict against its conditions; the report says what to do next."""
    from rich.text import Text

    from stalwart.report.summaries import headline, verdict

    d = report.to_dict() if hasattr(report, "to_dict") else report
    status = d.get("status", "?")
    heading = title or f"{d['model']['name']} on {d['data']['name']}"
    table = Table(title=f"{heading}: [{STATUS_STYLE.get(status, '')}]{status}[/]", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("headline", overflow="fold", ratio=3)
    table.add_column("verdict", overflow="fold", ratio=2)
    for r in d["results"]:
        # Text, not markup: headlines hold brackets ("[0.1, 0.2]", "perturbations=[...]")
        table.add_row(r["check"], f"[{STATUS_STYLE.get(r['status'], '')}]{r['status']}[/]",
                      Text(headline(r)), Text(verdict(r)))
    out_console.print(table)


@app.command()
def scan(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt, torch.export .pt2 "
                                         "(pickle/joblib with --trust).")],
    data: Annotated[str, typer.Argument(help="Data file: .csv, .parquet or .npz.")],
    target: Annotated[str | None, typer.Option(help="Label column of a table (CSV/Parquet).")] = None,
    modality: Annotated[str | None, typer.Option(help="tabular, image or text (inferred when omitted).")] = None,
    suite: Annotated[str, typer.Option(help="quick, standard, thorough, or a suite YAML file.")] = "quick",
    sensitive: Annotated[str | None, typer.Option(help="Comma-separated columns whose groups to compare (e.g. "
                                                  "sex,age_band): adds per-group metrics and robustness.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md and junit.xml.")] = Path("report"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
    executor: Annotated[str, typer.Option(help=EXECUTOR_HELP)] = "local",
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
) -> None:
    """Scan MODEL on DATA with a suite of checks; write the report; exit 1 if a check fails."""
    from stalwart._scan import scan as run_scan
    from stalwart.data import load_data
    from stalwart.models import load_model

    _check_modality(modality)
    check_out_dir(out)
    with user_errors(), executor_option(executor, address):
        loaded_model = load_model(model, trust=trust)
        dataset = load_data(data, target=target, modality=modality)
        with progress() as update:
            columns = None if sensitive is None else [c.strip() for c in sensitive.split(",") if c.strip()]
            if columns is not None and not columns:
                fail("--sensitive must name at least one column, comma-separated (e.g. --sensitive sex,age_band)")
            report = run_scan(loaded_model, dataset, suite=suite, seed=seed, sensitive=columns, progress=update)
        report.save(out, strict=strict)
    print_scorecard(report)
    out_console.print(f"report written to {escape(str(out / 'index.html'))}", highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))


@app.command()
def attack(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt, torch.export .pt2 "
                                         "(pickle/joblib with --trust).")],
    data: Annotated[str, typer.Argument(help="Data file: .csv, .parquet or .npz.")],
    attack_name: Annotated[str | None, typer.Option(
        "--attack", help="Attack name (fgsm, pgd, apgd-ce, square, hopskipjump, tabular-search, ...), 'evaluate' "
        "for the full ensemble, or word_substitution for text. Default: pgd (word_substitution for text).")] = None,
    eps: Annotated[float, typer.Option(help="Perturbation budget: a fraction of each feature's range (the "
                                       "default unit: 0.03 = 3% of every range), or in the data's own units "
                                       "with --eps-unit raw.")] = 0.03,
    eps_unit: Annotated[str, typer.Option(help="range (eps as a fraction of each feature's range) or raw (the "
                                          "data's own units).")] = "range",
    norm: Annotated[str, typer.Option(help="linf, l2 or l1.")] = "linf",
    max_change: Annotated[float, typer.Option(help="Text only: largest fraction of words to change.")] = 0.2,
    target: Annotated[str | None, typer.Option(help="Label column of a table (CSV/Parquet).")] = None,
    modality: Annotated[str | None, typer.Option(help="tabular, image or text (inferred when omitted).")] = None,
    max_samples: Annotated[int | None, typer.Option(min=1, help="Attack at most this many samples (stratified).")] = None,
    out: Annotated[Path, typer.Option(help="Where to save the adversarial examples: .npz (arrays), or .csv / "
                                      ".parquet (a table; tabular and text data); a .json summary goes beside "
                                      "it.")] = Path("adv.npz"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    executor: Annotated[str, typer.Option(help=EXECUTOR_HELP + " Numeric attacks are sharded by samples (1,000 a "
                                          "shard); text attacks run in this process.")] = "local",
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
) -> None:
    """Attack MODEL on DATA; save adversarial examples and a summary."""
    from stalwart.data import load_data
    from stalwart.models import load_model
    from stalwart.models.compat import check_compatible

    _check_modality(modality)
    if eps_unit not in ("range", "raw"):
        fail(f"--eps-unit must be range or raw; got {eps_unit!r}")
    if norm not in ("linf", "l2", "l1"):
        fail(f"--norm must be linf, l2 or l1; got {norm!r}")
    fmt = check_out_file(out, ATTACK_FORMATS, inputs=(data, model))
    summary_path = _summary_path(out)
    check_out_file(summary_path, {".json": "json"}, inputs=(data, model))
    with user_errors(), executor_option(executor, address):
        loaded_model = load_model(model, trust=trust)
        dataset = load_data(data, target=target, modality=modality)
        if fmt not in _ATTACK_FORMATS_FOR[dataset.modality]:
            allowed = ", ".join(e for e, k in ATTACK_FORMATS.items() if k in _ATTACK_FORMATS_FOR[dataset.modality])
            fail(f"--out {str(out)!r}: {dataset.modality} adversarial examples are written as {allowed}")
        if dataset.y is None:
            fail("the data has no labels; name the label column with --target")
        dataset = check_compatible(loaded_model, dataset)
        if max_samples is not None:
            dataset = dataset.sample(max_samples, seed=seed)
        attack_name = attack_name or ("word_substitution" if dataset.modality == "text" else "pgd")
        if executor != "local" and dataset.modality == "text":
            err_console.print(f"[yellow]note:[/] --executor {escape(executor)}: text attacks are not sharded; "
                              f"{escape(attack_name)} runs in this process")
        with progress() as update:
            if dataset.modality == "text":
                summary = _attack_text(loaded_model, dataset, attack_name, max_change, seed, out, fmt, update)
            else:
                summary = _attack_numeric(loaded_model, dataset, attack_name, norm, eps, eps_unit, seed, out, fmt,
                                          update)
    if dataset.modality == "text":
        budget = f"max_change={max_change:g}"
    else:
        budget = f"{norm}, eps={eps:g} ({summary['threat']['eps_unit']})"
    table = Table(title=f"{escape(attack_name)} ({escape(budget)}) on {escape(dataset.name)}", title_justify="left")
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
            err_console.print(f"[yellow]warning:[/] {escape(warning['name'])}: {escape(warning['detail'])}")
    out_console.print(f"adversarial examples written to {escape(str(out))} (summary: {escape(str(summary_path))})",
                      highlight=False)


def _summary_path(out: Path) -> Path:
    """``adv.npz`` -> ``adv.json``; ``adv.csv.gz`` -> ``adv.json``."""
    name = out.name
    for ext in sorted(ATTACK_FORMATS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return out.with_name(name[: -len(ext)] + ".json")
    return out.with_suffix(".json")


def _write_table(table: Any, out: Path, fmt: str) -> None:
    from stalwart._io import atomic_write

    with atomic_write(out) as tmp:
        if fmt == "csv":
            table.to_csv(tmp, index=False, compression="gzip" if out.name.lower().endswith(".gz") else None)
        else:
            table.to_parquet(tmp, engine="pyarrow", index=False)


def _attack_numeric(model: Any, dataset: Any, name: str, norm: str, eps: float, eps_unit: str, seed: int, out: Path,
                    fmt: str, update: Any) -> dict:
    """Run one attack (or the ensemble) on numeric data; save the examples and a summary (.json)."""
    import json

    import numpy as np
    import pandas as pd

    from stalwart import attacks
    from stalwart._io import atomic_write

    x = dataset.numeric_x().astype(np.float32)
    threat = attacks.ThreatModel.from_schema(dataset.schema, norm, eps, unit=eps_unit)
    attacks.check_eps_scale(threat, x)
    if name == "evaluate":
        ev = attacks.evaluate(model, x, dataset.y, threat, level="standard", seed=seed, progress=update)
        summary = ev.to_dict()
        arrays = {"x_adv": ev.x_adv, "y": ev.y, "robust": ev.robust, "broken_by": ev.broken_by}
        columns = {"robust": ev.robust, "broken_by": ev.broken_by}
    else:
        extra = {"schema": dataset.schema} if name == "tabular-search" else {}
        res = attacks.run_sharded(attacks.get(name, threat, seed=seed, **extra), model, x, dataset.y, progress=update)
        summary = res.to_dict()
        arrays = {"x_adv": res.x_adv, "y": res.y, "success": res.success, "distance": res.distance,
                  "pred_adv": res.pred_adv, "queries": res.queries}
        columns = {"pred_adv": res.pred_adv, "success": res.success, "distance": res.distance}
    if fmt == "npz":
        with atomic_write(out) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    else:  # a table: the adversarial rows under the data's own column names, then the outcome per row
        table = pd.DataFrame(arrays["x_adv"], columns=list(dataset.x.columns))
        table[dataset.target or "label"] = arrays["y"]
        for key, values in columns.items():
            table[f"_{key}" if key in table.columns else key] = values
        _write_table(table, out, fmt)
    with atomic_write(_summary_path(out)) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary


def _attack_text(model: Any, dataset: Any, name: str, max_change: float, seed: int, out: Path, fmt: str,
                 update: Any) -> dict:
    """Word substitution on text; save original and perturbed sentences (a table) and a summary (.json)."""
    import json

    import pandas as pd

    from stalwart import attacks
    from stalwart._io import atomic_write

    text_attacks = attacks.names(modalities="text")
    if name not in text_attacks:
        fail(f"--attack {name!r} does not apply to text data; text attacks: {', '.join(text_attacks)}")
    update(name, 0, 1)
    res = attacks.get(name, max_change=max_change, seed=seed).run(model, dataset.x, dataset.y)
    update(name, 1, 1)
    table = pd.DataFrame({"text": res.original, "perturbed": res.perturbed, "label": res.y,
                          "pred_adv": res.pred_adv, "success": res.success, "words_changed": res.words_changed})
    _write_table(table, out, fmt)
    summary = res.to_dict()
    with atomic_write(_summary_path(out)) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return summary


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the two reports and the two models.")] = Path("demo-report"),
    suite: Annotated[str, typer.Option(help="quick, standard or thorough.")] = "quick",
    seed: Annotated[int, typer.Option(min=0, help="Seed for training and every check (an integer >= 0).")] = 0,
) -> None:
    """Train two built-in models (breast_cancer pipeline, digits CNN), scan them, write reports and models."""
    from stalwart.demo import run_demo

    if suite not in ("quick", "standard", "thorough"):
        fail(f"--suite must be quick, standard or thorough; got {suite!r}")
    check_out_dir(out)
    with user_errors(), progress() as update:
        reports = run_demo(out, suite=suite, seed=seed, progress=update)
    for name, report in reports.items():
        print_scorecard(report, title=name)
        out_console.print(f"report written to {escape(str(out / name / 'index.html'))}", highlight=False)
    out_console.print(f"models saved as {escape(str(out / 'breast_cancer' / 'model.skops'))} and "
                      f"{escape(str(out / 'digits' / 'model.pt'))}: try `stalwart scan` on them", highlight=False)
    # the demo shows what a scan finds, failures included; `stalwart scan` is the gate
    out_console.print("demo finished; `stalwart scan` exits 1 when a check fails, for CI gates")


@report_app.command("render")
def report_render(
    report_json: Annotated[Path, typer.Argument(help="A report.json written by stalwart.")],
    out: Annotated[Path | None, typer.Option(help="Directory to write into (default: beside the JSON).")] = None,
) -> None:
    """Re-render index.html, report.md and junit.xml from a saved report.json."""
    from stalwart.report import Report

    target = out or report_json.parent
    check_out_dir(target)
    with user_errors():
        report = Report.load(report_json)
        report.save(target)
    out_console.print(f"report written to {escape(str(target / 'index.html'))}", highlight=False)


# commands kept in their own modules register on `app` (stalwart._cli_app) when imported
from stalwart import _cli_certify, _cli_harden, _cli_perturb, _cli_probe, _cli_serve, _cli_shift, _cli_slices  # noqa: E402, F401


def main() -> None:  # console-script entry point
    run_main(app)


if __name__ == "__main__":  # pragma: no cover
    main()
