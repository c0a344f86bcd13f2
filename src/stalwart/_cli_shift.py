"""The `stalwart` commands for shift; they register on the app in :mod:`stalwart.cli`.

- ``stalwart drift REFERENCE CURRENT``: per-column drift (plus prediction, label and accuracy
  drift with ``--model``), judged by the ``data_drift`` check's condition (``share_drifted <=
  0.2 warn 0``: any drifted column warns, more than a fifth of the columns fails).
- ``stalwart ood MODEL IN_DATA OUT_DATA``: OOD detectors judged on real OOD data (condition
  ``best_auroc >= 0.8``).

Both follow the exit-code contract of every command (:mod:`stalwart._cli_support`): 0 passed
(a warning passes unless ``--strict``), 1 failed, 2 bad input (nothing written).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stalwart._cli_app import SEED_HELP, STRICT_HELP, app
from stalwart._cli_execute import ADDRESS_HELP, EXECUTOR_HELP, executor_option
from stalwart._cli_support import (
    STATUS_STYLE,
    check_out_dir,
    err_console,
    escape,
    exit_code,
    fail,
    names_option,
    out_console,
    run_one_check,
    user_errors,
)

#: from this many rows in either Parquet file, `stalwart drift` streams them column by column
#: (the results are those of the in-memory test; only the memory differs)
STREAM_ROWS = 1_000_000
_NO_MODEL = {"name": "no model (data only)", "task": "none", "classes": None, "fingerprint": "none",
             "differentiable": False, "output_kind": None}


def _parquet_rows(path: str) -> int | None:
    """Row count of a Parquet file from its footer, or None for other files."""
    from stalwart.data.loaders import SUPPORTED_EXTENSIONS

    name = Path(path).name.lower()
    parquet = any(name.endswith(ext) and len(name) > len(ext) for ext, kind in SUPPORTED_EXTENSIONS.items()
                  if kind == "parquet")
    if not parquet or not Path(path).is_file():
        return None
    from stalwart.errors import InputError, require

    pq = require("pyarrow.parquet", "parquet")
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception as exc:  # noqa: BLE001 - any unreadable footer is the user's file problem
        raise InputError(f"could not read {path!r} as Parquet: {exc}") from None


def _report(results: list, *, model: Any, data: Any, data_info: dict[str, Any], suite: str, seed: int,
            total_s: float):
    """A Report for results of checks run outside a Suite (with or without a model)."""
    from stalwart import __version__
    from stalwart.report import Report
    from stalwart.report.core import json_safe, package_versions

    suite_d = {"name": suite, "checks": [{"check": r.check, "params": r.params} for r in results]}
    if model is not None and data is not None:
        rep = Report.from_run(model=model, data=data, results=results, suite=suite_d, seed=seed, total_s=total_s)
        return Report(results=rep.results, model=rep.model, data=json_safe({**rep.data, **data_info}),
                      suite=rep.suite, seed=rep.seed, versions=rep.versions, timings=rep.timings,
                      created=rep.created, stalwart_version=rep.stalwart_version)
    base = data.describe() if data is not None else {}
    return Report(results=results, model=dict(_NO_MODEL), data=json_safe({**base, **data_info}),
                  suite=json_safe(suite_d), seed=seed, versions=package_versions(),
                  timings={"total_s": float(total_s)},
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  stalwart_version=__version__)


@app.command()
def drift(
    reference: Annotated[str, typer.Argument(help="Reference data: .csv or .parquet (training or a trusted window), "
                                             "or a directory of Parquet files (tested with --sketch).")],
    current: Annotated[str, typer.Argument(help="Current data to compare with it: .csv or .parquet, or a directory "
                                           "of Parquet files.")],
    target: Annotated[str | None, typer.Option(help="Label column (kept out of the feature tests; "
                                               "label and accuracy drift use it).")] = None,
    method: Annotated[str, typer.Option(help="auto, ks, anderson, chi2, psi, wasserstein, jensen_shannon "
                                        "or hellinger.")] = "auto",
    correction: Annotated[str, typer.Option(help="Multiple-testing correction: bonferroni, bh or none.")] = "bonferroni",
    alpha: Annotated[float, typer.Option(help="Significance level of the p-value tests.")] = 0.05,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to test (default: all).")] = None,
    model: Annotated[str | None, typer.Option(help="Model file: also compare its predictions (and accuracy, "
                                              "with --target).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md, junit.xml.")] = Path("drift-report"),
    stream: Annotated[bool | None, typer.Option("--stream/--no-stream", help="Read Parquet files column by column "
                                                "in bounded memory, with the same results (default: when a file has "
                                                f"{STREAM_ROWS:,} rows or more).")] = None,
    sketch: Annotated[bool, typer.Option("--sketch", help="Test from mergeable summaries that each task builds from "
                                         "its Parquet row groups (on --executor): exact for categorical columns, "
                                         "within a reported error for numeric ones (default when REFERENCE or "
                                         "CURRENT is a directory).")] = False,
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib models (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP + " Here: any drifted column exits 1.")] = False,
    executor: Annotated[str, typer.Option(help=EXECUTOR_HELP + " Used by --stream (one task per column) and "
                                          "--sketch (one task per group of row groups).")] = "local",
    address: Annotated[str | None, typer.Option(help=ADDRESS_HELP)] = None,
) -> None:
    """Test CURRENT against REFERENCE for drift, column by column.

    Exit 1 when more than a fifth of the columns drifted (the check fails; one drifted column is
    a warning, exit 0, unless --strict), 2 on bad input.
    """
    from stalwart.checks.base import Status
    from stalwart.checks.drift import DataDrift

    check_out_dir(out)
    with user_errors(), executor_option(executor, address):
        if correction not in ("bonferroni", "bh", "none"):
            fail(f"--correction must be bonferroni, bh or none; got {correction!r}")
        corr = None if correction == "none" else correction
        cols = names_option(columns)
        check = DataDrift(reference=reference, method=method, correction=corr, alpha=alpha, columns=cols)
        start = time.perf_counter()
        use_sketch = sketch or Path(reference).is_dir() or Path(current).is_dir()
        if use_sketch and (model is not None or stream):
            fail(f"{'--model' if model is not None else '--stream'} does not go with partitioned data (a directory "
                 "or --sketch): the sketch path never loads a table; pass Parquet files without --sketch for it")
        rows = [None, None] if use_sketch else [_parquet_rows(reference), _parquet_rows(current)]
        both_parquet = None not in rows
        if stream and not both_parquet:
            fail("--stream reads Parquet files; REFERENCE and CURRENT must both be .parquet")
        if stream and model is not None:
            fail("--model needs the data in memory to predict on it; drop --stream (or --model)")
        use_stream = stream if stream is not None else (both_parquet and model is None
                                                        and max(rows) >= STREAM_ROWS)
        loaded_model = data = None
        if use_sketch:
            result, data_info = _drift_sketched(reference, current, target, cols, method, corr, alpha)
        elif use_stream:
            result, data_info = _drift_streamed(reference, current, target, cols, method, corr, alpha, seed)
        else:
            from stalwart.data import load_data

            if model is not None:
                from stalwart.models import load_model

                loaded_model = load_model(model, trust=trust)
            data = load_data(current, target=target, modality="tabular")
            result = check.run(loaded_model, data, seed=seed)
            ref = check.reference_for(data)
            data_info = {"reference": {"name": ref.name, "n_samples": len(ref), "fingerprint": ref.fingerprint(),
                                       "source": str(reference)}}
        if result.status is Status.ERROR:
            fail(result.message.removeprefix("the check failed: "))
        if result.status is Status.SKIP:
            fail(f"drift cannot be measured on this data: {result.message}")
        report = _report([result], model=loaded_model, data=data, data_info=data_info, suite="drift", seed=seed,
                         total_s=time.perf_counter() - start)
        report.save(out, strict=strict)
    _print_drift(result)
    if use_sketch:
        _print_sketch(data_info)
    out_console.print(f"report written to {escape(str(out / 'index.html'))}", highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))


def _drift_streamed(reference: str, current: str, target: str | None, cols: list[str] | None, method: str,
                    correction: str | None, alpha: float, seed: int) -> tuple[Any, dict[str, Any]]:
    """The data_drift result of two Parquet files read column by column: the column tests, label
    drift with ``target``, and the figures of the most drifted columns, as in memory."""
    from stalwart.checks.drift import parquet_figures, result_from_drift
    from stalwart.errors import InputError, require
    from stalwart.shift.drift import compare_labels_parquet, detect_drift_parquet

    pq = require("pyarrow.parquet", "parquet")
    names = pq.ParquetFile(reference).schema_arrow.names
    if target is not None and target not in names:
        raise InputError(f"target column {target!r} is not in the reference {reference!r}; it has columns {names}")
    tested = cols if cols is not None else [c for c in names if c != target]
    res = detect_drift_parquet(reference, current, columns=tested, method=method, correction=correction,
                               alpha=alpha, seed=seed)
    labels = compare_labels_parquet(reference, current, target) if target is not None else None
    check_result = result_from_drift(res, reference=reference, method=method, correction=correction, alpha=alpha,
                                     columns=cols, labels=labels, figures=parquet_figures(res, reference, current))
    info = {"name": Path(current).name, "modality": "tabular", "n_samples": int(res.details["n_current"]),
            "fingerprint": "streamed", "streamed": True,
            "reference": {"name": Path(reference).name, "n_samples": int(res.details["n_reference"]),
                          "source": str(reference)}}
    return check_result, info


def _drift_sketched(reference: str, current: str, target: str | None, cols: list[str] | None, method: str,
                    correction: str | None, alpha: float) -> tuple[Any, dict[str, Any]]:
    """The data_drift result of two partitioned Parquet data sets, from mergeable summaries built on
    the executor; ``data_info`` says which path ran and how large its approximation error is."""
    from stalwart.checks.drift import result_from_drift
    from stalwart.errors import InputError, require
    from stalwart.shift.partitioned import compare_labels_partitioned, detect_drift_partitioned, parquet_files

    pq = require("pyarrow.parquet", "parquet")
    names = pq.read_schema(parquet_files(reference, "REFERENCE")[0]).names
    if target is not None and target not in names:
        raise InputError(f"target column {target!r} is not in the reference {reference!r}; it has columns {names}")
    tested = cols if cols is not None else [c for c in names if c != target]
    res = detect_drift_partitioned(reference, current, columns=tested, method=method, correction=correction,
                                   alpha=alpha)
    labels = compare_labels_partitioned(reference, current, target) if target is not None else None
    check_result = result_from_drift(res, reference=reference, method=method, correction=correction, alpha=alpha,
                                     columns=cols, labels=labels)
    approx = res.details["approximation"]
    info = {"name": Path(current).name, "modality": "tabular", "n_samples": int(res.details["n_current"]),
            "fingerprint": "sketched", "drift_path": "sketch",
            "label_drift": None if labels is None else _label_path(labels),
            "sketch": {**res.details["sketch"], "max_error": res.details["max_error"],
                       "exact_columns": sorted(c for c, a in approx.items() if a["exact"]),
                       "approximation": approx},
            "reference": {"name": Path(reference).name, "n_samples": int(res.details["n_reference"]),
                          "source": str(reference)}}
    return check_result, info


def _label_path(labels: dict[str, Any]) -> dict[str, Any]:
    """How the partitioned path measured label drift: exact class counts, or sketched values with
    the intervals that hold the exact KS statistic, p-value and Wasserstein distance."""
    if labels["classification"]:
        return {"how": "class counts (exact)", "classes": int(labels["reference_counts"].index.union(
            labels["current_counts"].index).size), "exact": True}
    return {"how": "KS and Wasserstein from the sketches", **labels["approximation"]}


def _print_sketch(info: dict[str, Any]) -> None:
    sk = info["sketch"]
    err = sk["max_error"]
    parts = sk["partitions"]
    approx = [c for c in sk["approximation"] if c not in sk["exact_columns"]]
    line = (f"path: mergeable summaries of {parts['reference']} + {parts['current']} Parquet files in {sk['tasks']} "
            f"tasks on the {sk['executor']} executor; ")
    if not approx:
        line += "every statistic is exact"
    else:
        line += (f"{len(approx)} numeric column(s) approximate: statistics within {err['statistic']:.2g} of the exact "
                 "ones" + (f", histogram bins within {err['bin_error']:.2g} of a sample" if err["bin_error"] else "")
                 + " (per column in report.json)")
    out_console.print(escape(line), highlight=False)
    label = info.get("label_drift")
    if label:
        line = f"label drift: from {label['how']}"
        if not label["exact"]:
            lo, hi = label["p_value"]
            line += f"; p-value within [{lo:.3g}, {hi:.3g}]"
        out_console.print(escape(line), highlight=False)


def _print_drift(result: Any) -> None:
    rows = result.tables["columns"]
    drifted = [r for r in rows if r["drifted"]]
    status = result.status.value
    judged = [r for r in rows if r["test"] != "too_few_samples"]
    names = ", ".join(str(r["column"]) for r in drifted[:10]) + (" ..." if len(drifted) > 10 else "")
    title = (f"data drift: {len(drifted)} of {len(judged)} columns drifted{': ' + escape(names) if drifted else ''} "
             f"[{STATUS_STYLE.get(status, '')}]{status}[/]")
    if not drifted:
        out_console.print(title, highlight=False)
    else:
        table = Table(title=title, title_justify="left")
        for col, justify in (("column", "left"), ("kind", "left"), ("test", "left"), ("statistic", "right"),
                             ("p-value", "right"), ("threshold", "right")):
            table.add_column(col, justify=justify)
        for r in drifted:
            p = "–" if r["p_value"] is None else f"{r['p_value']:.3g}"
            table.add_row(escape(str(r["column"])), escape(str(r["kind"])), escape(str(r["test"])),
                          f"{r['statistic']:.4g}", p, f"{r['threshold']:.3g}")
        out_console.print(table)
    others = {k: m for k, m in result.metrics.items() if k not in ("share_drifted", "drifted_columns")}
    for name, metric in others.items():
        out_console.print(f"  {escape(name)} = {metric.format()}", highlight=False)
    if result.message:
        out_console.print(escape(result.message), highlight=False)


@app.command()
def ood(
    model: Annotated[str, typer.Argument(help="Model file: .skops, .onnx, TorchScript .pt (pickle/joblib with --trust).")],
    in_data: Annotated[str, typer.Argument(help="In-distribution data: .csv, .parquet or .npz.")],
    out_data: Annotated[str, typer.Argument(help="Out-of-distribution data of the same kind and columns.")],
    target: Annotated[str | None, typer.Option(help="Label column of the in-distribution table (dropped from "
                                               "OUT_DATA when it has one).")] = None,
    detectors: Annotated[str | None, typer.Option(help="Comma-separated detectors: max_softmax, max_logit, energy, "
                                                  "mahalanobis, knn_distance, isolation_forest.")] = None,
    layer: Annotated[str | None, typer.Option(help="Torch models (eager or TorchScript): the submodule, named as in "
                                              "model.named_modules() (e.g. head.1), whose output is the feature "
                                              "space of mahalanobis and knn_distance; default: the input of the "
                                              "last Linear layer (penultimate activations).")] = None,
    max_samples: Annotated[int, typer.Option(min=2, help="In-distribution rows used (half fit, half held out).")] = 1000,
    out: Annotated[Path, typer.Option(help="Directory for index.html, report.json, report.md, junit.xml.")] = Path("ood-report"),
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    trust: Annotated[bool, typer.Option("--trust", help="Allow loading pickle/joblib files (runs code in them).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help=STRICT_HELP)] = False,
) -> None:
    """Judge OOD detectors for MODEL on held-out IN_DATA vs real OUT_DATA; print AUROC and FPR95."""
    from stalwart.checks.ood import OODDetection
    from stalwart.data import load_data
    from stalwart.models import load_model

    check_out_dir(out)
    with user_errors():
        names = names_option(detectors, "--detectors", "max_softmax,energy") if detectors is not None else None
        check = OODDetection(detectors=names, ood_data=out_data, layer=layer, max_samples=max_samples)
        loaded = load_model(model, trust=trust)
        data = load_data(in_data, target=target)
        result, seconds = run_one_check(check, loaded, data, seed, unusable="the OOD detectors cannot run on this data")
        report = _report([result], model=loaded, data=data, data_info={"ood_data": str(out_data)}, suite="ood",
                         seed=seed, total_s=seconds)
        report.save(out, strict=strict)
    table = Table(title=f"OOD detection: {escape(loaded.name)} on {escape(data.name)} vs {escape(Path(out_data).name)} "
                  f"[{STATUS_STYLE.get(result.status.value, '')}]{result.status.value}[/]", title_justify="left")
    for col in ("detector", "AUROC (95% CI)", "FPR95 (95% CI)", "AUPR", "note"):
        table.add_column(col, justify="left" if col in ("detector", "note") else "right")
    for r in result.tables["detectors"]:
        if r["status"] != "ok":
            table.add_row(escape(r["detector"]), "–", "–", "–", escape(r["reason"] or ""))
            continue
        table.add_row(escape(r["detector"]), f"{r['auroc']:.3f} [{r['auroc_low']:.3f}, {r['auroc_high']:.3f}]",
                      f"{r['fpr95']:.3f} [{r['fpr95_low']:.3f}, {r['fpr95_high']:.3f}]", f"{r['aupr']:.3f}", "")
    out_console.print(table)
    out_console.print(escape(result.message), highlight=False)
    if result.status.value in ("FAIL", "WARN"):
        err_console.print(f"[yellow]the OOD condition {'failed' if result.status.value == 'FAIL' else 'warned'}[/]")
    out_console.print(f"report written to {escape(str(out / 'index.html'))}", highlight=False)
    raise typer.Exit(exit_code(report.status.value, strict))
