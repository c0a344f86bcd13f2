"""`stalwart harden`: adversarial (or noise) training of a TorchScript model, with before/after numbers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stalwart._cli_app import SEED_HELP, app
from stalwart._cli_support import check_out_file, escape, fail, out_console, progress, user_errors

METHODS = {"pgd-at": "pgd", "trades": "trades", "fast-at": "fast", "noise": "noise"}


@app.command()
def harden(
    model: Annotated[str, typer.Argument(help="TorchScript model file (.pt, .pth) of an image classifier.")],
    data: Annotated[str, typer.Argument(help="Labelled images (.npz with x and y); 20% are held out for the "
                                        "before/after numbers.")],
    out: Annotated[Path, typer.Option(help="Where to write the hardened TorchScript model (.pt).")],
    method: Annotated[str, typer.Option(help="pgd-at, trades, fast-at or noise (Gaussian, for smoothing).")] = "pgd-at",
    eps: Annotated[float, typer.Option(help="Budget as a fraction of the pixel range (noise: its sigma).")] = 0.03,
    norm: Annotated[str, typer.Option(help="linf or l2 (noise: l2).")] = "linf",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 10,
    steps: Annotated[int, typer.Option(min=1, help="Attack steps per training batch (pgd-at, trades).")] = 10,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Training batch size.")] = 128,
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
) -> None:
    """Train MODEL against attacks (or noise) on DATA; write the hardened model and its before/after numbers."""
    import numpy as np
    import torch

    from stalwart._io import atomic_write
    from stalwart._validation import labels_to_index
    from stalwart.attacks import ThreatModel, evaluate
    from stalwart.data import load_data
    from stalwart.defend import adversarial_training
    from stalwart.models import TorchModel, load_model

    check_out_file(out, {".pt": "torchscript", ".pth": "torchscript"}, inputs=(model, data))
    summary_path = out.with_name(out.name + ".json")
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    if norm not in ("linf", "l2"):
        fail(f"--norm must be linf or l2; got {norm!r}")
    norm = "l2" if method == "noise" else norm  # Gaussian noise is measured in l2
    if not (0 < eps < 1):
        fail(f"--eps must be a fraction of the pixel range between 0 and 1; got {eps}")
    with user_errors():
        loaded = load_model(model)
        if not isinstance(loaded, TorchModel) or not isinstance(loaded.module, torch.jit.ScriptModule):
            fail("stalwart harden trains TorchScript models (.pt saved with torch.jit.save); train other models "
                 "in Python with stalwart.defend.adversarial_training.")
        dataset = load_data(data)
        if dataset.modality != "image" or dataset.y is None:
            fail("stalwart harden takes labelled images (an .npz with x and y); for tables use "
                 "stalwart.defend.adversarial_training in Python.")
        x = np.asarray(dataset.x, dtype=np.float32)
        lo, hi = dataset.schema.value_range or (float(x.min()), float(x.max()))
        classes = loaded.known_classes(x)
        y = labels_to_index(np.asarray(dataset.y), np.asarray(classes))
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = max(len(x) // 5, 1)
        test, train = order[:n_test], order[n_test:]
        raw_eps = eps * (hi - lo)
        threat = ThreatModel(norm, raw_eps, (lo, hi))

        def measure(net: Any) -> dict[str, float]:
            ev = evaluate(net, x[test], y[test], threat, level="fast", eps_curve=[], seed=seed, sanity=False)
            return {"clean_accuracy": float(ev.clean_correct.mean()), "robust_accuracy": float(ev.robust_accuracy)}

        net = loaded.module
        with progress() as update:
            update("before", 0, 3)
            before = measure(net)
            update("training", 1, 3)
            result = adversarial_training(net, x[train], y[train], threat, method=METHODS[method], epochs=epochs,
                                          steps=steps, lr=lr, batch_size=batch_size, seed=seed)
            update("after", 2, 3)
            after = measure(net)
            update("after", 3, 3)
        with atomic_write(out) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript in, TorchScript out
            torch.jit.save(net, str(tmp))
        summary = {"model": str(model), "data": str(data), "method": method, "norm": norm, "eps": eps,
                   "eps_unit": "fraction of the pixel range", "held_out_samples": int(n_test), "before": before,
                   "after": after, "training": result.to_dict()}
        with atomic_write(summary_path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    table = Table(title=f"Hardening ({escape(method)}, {norm} eps {eps:g}) on {n_test} held-out images",
                  title_justify="left")
    for col in ("", "clean accuracy", "robust accuracy (evaluate, fast)"):
        table.add_column(col, justify="left" if not col else "right")
    for name, row in (("before", before), ("after", after)):
        table.add_row(name, f"{row['clean_accuracy']:.3f}", f"{row['robust_accuracy']:.3f}")
    out_console.print(table)
    out_console.print(escape(f"training: {result.stopped}; best epoch {result.best_epoch}"), highlight=False)
    out_console.print(f"hardened model written to {escape(str(out))}; numbers in {escape(str(summary_path))}",
                      highlight=False)
