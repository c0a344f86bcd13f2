"""`stalwart harden`: adversarial (or noise) training of a TorchScript model, with before/after numbers and,
with ``--compare``, the accuracy/robustness trade-off of several methods."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stalwart._cli_app import SEED_HELP, app
from stalwart._cli_support import (
    check_out_dir,
    check_out_file,
    escape,
    fail,
    out_console,
    progress,
    user_errors,
)

#: command-line name -> stalwart.defend.tradeoff method; these may be written as the hardened model
METHODS = {"pgd-at": "pgd", "trades": "trades", "fast-at": "fast", "noise": "noise", "distill": "distill"}
#: also comparable (not written): bit-depth squeezing of images
COMPARE = {**METHODS, "squeeze": "squeeze"}
NOT_TORCH = ("stalwart harden trains torch networks saved as TorchScript (.pt saved with torch.jit.save); {what}")


def _compare_option(text: str | None, method: str) -> list[str]:
    if text is None:
        return [method]
    names = [v.strip() for v in text.split(",") if v.strip()]
    wrong = [v for v in names if v not in COMPARE]
    if not names or wrong:
        fail(f"--compare must be a comma-separated list of {', '.join(COMPARE)}; got {text!r}")
    return list(dict.fromkeys([method, *names]))


@app.command()
def harden(
    model: Annotated[str, typer.Argument(help="TorchScript model file (.pt, .pth) of a classifier (images or "
                                         "tables).")],
    data: Annotated[str, typer.Argument(help="Labelled data: images (.npz with x and y) or a table (.csv, .parquet "
                                        "with --target); 20% are held out for the before/after numbers.")],
    out: Annotated[Path, typer.Option(help="Where to write the hardened TorchScript model (.pt).")],
    target: Annotated[str | None, typer.Option(help="Label column of a table.")] = None,
    method: Annotated[str, typer.Option(help="pgd-at, trades, fast-at, noise (Gaussian, for smoothing) or distill "
                                        "(defensive distillation: a student of MODEL's architecture with fresh "
                                        "weights; attacked on its logits it is rarely more robust).")] = "pgd-at",
    compare: Annotated[str | None, typer.Option(help="Also harden copies with these methods and show the "
                                                "accuracy/robustness trade-off, e.g. pgd-at,trades,noise (also "
                                                "fast-at, distill; squeeze for images). --method's model is the one "
                                                "written.")
                       ] = None,
    report: Annotated[Path | None, typer.Option(help="Directory for a before/after report (index.html, "
                                                "report.json, ...) with the trade-off table and chart.")] = None,
    eps: Annotated[float, typer.Option(help="Budget as a fraction of each feature's (or the pixel) range (noise: "
                                       "its sigma).")] = 0.03,
    norm: Annotated[str, typer.Option(help="linf or l2 (noise: l2).")] = "linf",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
    steps: Annotated[int, typer.Option(min=1, help="Attack steps per training batch (pgd-at, trades).")] = 10,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Training batch size.")] = 128,
    temperature: Annotated[float, typer.Option(help="distill: the temperature teacher and student are trained at.")
                           ] = 20.0,
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
) -> None:
    """Train MODEL against attacks (or noise) on DATA; write the hardened model and its before/after numbers."""
    import numpy as np
    import torch

    from stalwart._io import atomic_write
    from stalwart._validation import labels_to_index
    from stalwart.attacks import ThreatModel
    from stalwart.checks import CheckResult, Status
    from stalwart.checks.adversarial import tabular_box
    from stalwart.checks.tradeoff import tradeoff_measurement
    from stalwart.data import load_data
    from stalwart.defend import tradeoff
    from stalwart.models import TorchModel, load_model
    from stalwart.models.compat import check_compatible
    from stalwart.report import Report

    check_out_file(out, {".pt": "torchscript", ".pth": "torchscript"}, inputs=(model, data))
    summary_path = out.with_name(out.name + ".json")
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    names = _compare_option(compare, method)
    if report is not None:
        check_out_dir(report, "--report")
    if norm not in ("linf", "l2"):
        fail(f"--norm must be linf or l2; got {norm!r}")
    norm = "l2" if method == "noise" else norm  # Gaussian noise is measured in l2
    if not temperature > 0 or not math.isfinite(temperature):
        fail(f"--temperature must be a positive number; got {temperature}")
    if not (0 < eps < 1):
        fail(f"--eps must be a fraction of each feature's range between 0 and 1; got {eps}")
    with user_errors():
        loaded = load_model(model)
        if not isinstance(loaded, TorchModel):
            family = type(loaded).__name__
            what = ("a scikit-learn model is refitted, not trained against attacks: in Python, fit "
                    "stalwart.defend.AugmentedClassifier(estimator) (augmentation with stalwart's perturbations) "
                    "or stalwart.defend.importance_weighted_fit (covariate shift), then measure it with "
                    "stalwart attack." if "Sklearn" in family else
                    "an ONNX graph cannot be trained here: harden the model in the framework that produced it "
                    "(torch: stalwart.defend.adversarial_training) and export it again." if "Onnx" in family else
                    "train other models in Python with stalwart.defend.adversarial_training.")
            fail(NOT_TORCH.format(what=what))
        if not isinstance(loaded.module, torch.jit.ScriptModule):
            fail(NOT_TORCH.format(what="a torch.export program cannot be trained; save the module with "
                                  "torch.jit.save(torch.jit.script(net)) or train it in Python with "
                                  "stalwart.defend.adversarial_training."))
        if loaded.output_kind != "logits":
            fail("stalwart harden trains networks that return logits; this model returns probabilities. Save the "
                 "network without its final softmax.")
        dataset = load_data(data, target=target)
        if dataset.y is None:
            fail("stalwart harden needs labels: pass --target LABEL for a table, or an .npz with x and y.")
        if dataset.modality == "tabular":
            if "squeeze" in names:
                fail("--compare squeeze (bit-depth squeezing) is for images; leave it out for a table.")
            dataset = check_compatible(loaded, dataset)  # columns matched as every command does
            x, bounds, mutable = tabular_box(dataset)
            what = "rows"
        elif dataset.modality == "image":
            x = np.asarray(dataset.x, dtype=np.float32)
            bounds, mutable = dataset.schema.value_range or (float(x.min()), float(x.max())), None
            what = "images"
        else:
            fail("stalwart harden takes images (.npz) or tables (.csv, .parquet); text models are hardened with "
                 "augmentation in Python (stalwart.defend.TextAugmenter).")
        classes = loaded.known_classes(x)
        y = labels_to_index(np.asarray(dataset.y), np.asarray(classes))
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = max(len(x) // 5, 1)
        test, train = order[:n_test], order[n_test:]
        threat = ThreatModel(norm, eps, bounds, mutable, unit="range")
        options = [{"method": COMPARE[name], "name": name, **({"temperature": temperature} if name == "distill" else {})}
                   for name in names]
        with progress() as update:
            result = tradeoff(loaded.module, x[train], y[train], x[test], y[test], threat, options=options,
                              epochs=epochs, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                              progress=lambda name, i, n: update(f"hardening: {name}" if i else "before", i, n))
        rows = {r["option"]: r for r in result.rows}
        before, after = rows["baseline"], rows[method]
        with atomic_write(out) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript in, TorchScript out
            written = result.models[method]
            torch.jit.save(written.module if isinstance(written, TorchModel) else written, str(tmp))

        def numbers(row: dict[str, Any]) -> dict[str, float]:
            return {"clean_accuracy": row["clean_accuracy"], "robust_accuracy": row["robust_accuracy"]}
        summary = {"model": str(model), "data": str(data), "method": method, "norm": norm, "eps": eps,
                   "eps_unit": "fraction of each feature's range", "held_out_samples": int(n_test),
                   "before": numbers(before), "after": numbers(after),
                   "training": result.training[method].to_dict(), "tradeoff": result.to_dict()["rows"]}
        with atomic_write(summary_path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
        if report is not None:
            measured = tradeoff_measurement(result, eps_text=f"{norm} eps {eps:g} of each range")
            params = {"method": method, "compare": names, "norm": norm, "eps": eps, "epochs": epochs, "steps": steps,
                      "lr": lr, "batch_size": batch_size}
            check = CheckResult(check="hardening_tradeoff", category="adversarial", status=Status.PASS,
                                metrics=dict(measured.metrics), tables=dict(measured.tables),
                                curves=dict(measured.curves), message="measured (no conditions)",
                                time_s=sum(r["time_s"] for r in result.rows), params=params,
                                headline_metric="best_robust_accuracy")
            Report.from_run(model=loaded, data=dataset, results=[check],
                            suite={"name": "harden", "checks": [{"check": check.check, "params": params}]},
                            seed=seed, total_s=check.time_s).save(report)
    table = Table(title=f"Hardening ({escape(method)}, {norm} eps {eps:g}) on {n_test} held-out {what}",
                  title_justify="left")
    for col in ("", "clean accuracy", "robust accuracy (evaluate, fast)", "Pareto", "training s"):
        table.add_column(col, justify="left" if not col else "right")
    for row in result.rows:
        name = "before" if row["baseline"] else ("after" if row["option"] == method else row["option"])
        table.add_row(escape(name), f"{row['clean_accuracy']:.3f}", f"{row['robust_accuracy']:.3f}",
                      "yes" if row["pareto"] else "", f"{row['time_s']:.1f}")
    out_console.print(table)
    trained = result.training[method]
    out_console.print(escape(f"distilled at temperature {trained.temperature:g}: teacher and student {epochs} epochs "
                             "each; robust accuracy measured on the student's logits" if method == "distill" else
                             f"training: {trained.stopped}; best epoch {trained.best_epoch}"), highlight=False)
    out_console.print(f"hardened model written to {escape(str(out))}; numbers in {escape(str(summary_path))}",
                      highlight=False)
    if report is not None:
        out_console.print(f"report written to {escape(str(report / 'index.html'))}", highlight=False)
