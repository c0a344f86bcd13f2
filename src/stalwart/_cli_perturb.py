"""The `stalwart perturb` command; it registers on the app in :mod:`stalwart.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stalwart._cli_app import SEED_HELP, app
from stalwart._cli_support import check_out_file, escape, fail, out_console, user_errors

_MODALITIES = ("tabular", "image", "text")
_CSV_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}


@app.command("perturb")
def perturb_command(
    data: Annotated[str | None, typer.Argument(help="Data file: .csv, .parquet or .npz.")] = None,
    perturbation: Annotated[str | None, typer.Option(help="Registered perturbation name (see --list).")] = None,
    severity: Annotated[int, typer.Option(help="Severity 1 (mild) .. 5 (severe).")] = 3,
    out: Annotated[Path | None, typer.Option(help="Output file, in the input's format.")] = None,
    target: Annotated[str | None, typer.Option(help="Label column (CSV/Parquet) or array (NPZ); kept as is.")] = None,
    seed: Annotated[int, typer.Option(min=0, help=SEED_HELP)] = 0,
    modality: Annotated[str | None, typer.Option(help="tabular, image or text (inferred when omitted); "
                                                 "with --list, list only that modality.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the registered perturbations and exit.")] = False,
) -> None:
    """Write a perturbed copy of DATA (same format, labels unchanged), or --list the perturbations."""
    from stalwart import perturb

    if modality is not None and modality not in _MODALITIES:
        fail(f"--modality must be one of {', '.join(_MODALITIES)}; got {modality!r}")
    if list_:
        _print_list(modality)
        return
    if data is None or perturbation is None or out is None:
        missing = [n for n, v in (("DATA", data), ("--perturbation", perturbation), ("--out", out)) if v is None]
        fail(f"missing {', '.join(missing)}: write `stalwart perturb DATA --perturbation NAME --out FILE`, or "
             "`stalwart perturb --list`")
    if not 1 <= severity <= 5:
        fail(f"--severity must be an integer 1..5; got {severity}")
    from stalwart.data.loaders import SUPPORTED_EXTENSIONS, file_kind

    kind_in = file_kind(Path(data))
    same_kind = {ext: k for ext, k in SUPPORTED_EXTENSIONS.items() if k == kind_in} or SUPPORTED_EXTENSIONS
    check_out_file(out, same_kind, inputs=(data,))  # written in the input's own format
    with user_errors():
        from stalwart.data import load_data

        dataset = load_data(data, target=target, modality=modality)
        known = perturb.names(dataset.modality)
        if perturbation not in known:
            where = "is not registered" if perturbation not in perturb.names() else \
                f"is for {perturb.PERTURBATIONS.get(perturbation).modality} data"
            fail(f"--perturbation {perturbation!r} {where}; {dataset.modality} perturbations: {', '.join(known)}")
        p = perturb.get(perturbation)
        x_new = p.apply(dataset.x, severity, seed, dataset.schema)
        summary = _write(Path(data), kind_in, out, dataset, x_new)
    table = Table(title=f"{escape(perturbation)} @ severity {severity} on {escape(dataset.name)} ({dataset.modality})",
                  title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out_console.print(table)
    out_console.print(f"perturbed data written to {escape(str(out))}", highlight=False)


def _print_list(modality: str | None) -> None:
    from stalwart import perturb

    table = Table(title="registered perturbations", title_justify="left")
    for col in ("name", "modality", "description"):
        table.add_column(col, overflow="fold")
    for name in perturb.names(modality):
        cls = perturb.PERTURBATIONS.get(name)
        table.add_row(escape(name), cls.modality, escape(cls.description))
    out_console.print(table)


def _write(src: Path, kind: str | None, out: Path, dataset: Any, x_new: Any) -> dict[str, Any]:
    """Write the perturbed data in the input's format; return what changed."""
    import numpy as np
    import pandas as pd

    from stalwart._io import atomic_write

    if kind == "npz":
        with np.load(src, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        key = dataset.meta.get("x_key") or "x"
        old = arrays[key]
        arrays[key] = np.asarray(x_new).astype(old.dtype) if dataset.modality != "text" else \
            np.asarray(x_new, dtype=str)
        with atomic_write(out) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return _changes(old, arrays[key], dataset.modality)
    frame = pd.read_csv(src) if kind == "csv" else pd.read_parquet(src, engine="pyarrow")
    frame = frame.rename(columns=str) if not all(isinstance(c, str) for c in frame.columns) else frame
    before = frame.copy()
    if dataset.modality == "text":
        col = dataset.meta["text_column"]
        frame[col] = list(x_new)
        cols = [col]
    else:
        new = x_new if isinstance(x_new, pd.DataFrame) else pd.DataFrame(x_new, columns=dataset.x.columns)
        cols = list(new.columns)
        for c in cols:
            frame[c] = new[c].to_numpy()
    with atomic_write(out) as tmp:
        if kind == "csv":
            compression = _CSV_COMPRESSION.get(out.suffix.lower())
            frame.to_csv(tmp, index=False, compression=compression)
        else:
            frame.to_parquet(tmp, engine="pyarrow", index=False)
    return _changes(before[cols], frame[cols], dataset.modality)


def _changes(old: Any, new: Any, modality: str) -> dict[str, Any]:
    """Rows and cells changed and the mean absolute change of the changed numeric cells."""
    import numpy as np
    import pandas as pd

    if modality == "text":
        a = np.asarray(pd.DataFrame(old).to_numpy() if not isinstance(old, np.ndarray) else old, dtype=object)
        b = np.asarray(pd.DataFrame(new).to_numpy() if not isinstance(new, np.ndarray) else new, dtype=object)
        changed = (a != b).reshape(len(a), -1)
        return {"rows": len(a), "rows changed": int(changed.any(axis=1).sum())}
    if isinstance(old, pd.DataFrame):
        a_obj, b_obj = old.to_numpy(dtype=object), new.to_numpy(dtype=object)
        na_a, na_b = pd.isna(old).to_numpy(), pd.isna(new).to_numpy()
        changed = ~((a_obj == b_obj) | (na_a & na_b))
        numeric = [c for c in old.columns if pd.api.types.is_numeric_dtype(old[c])
                   and pd.api.types.is_numeric_dtype(new[c])]
        diff = np.abs(new[numeric].to_numpy(dtype=float) - old[numeric].to_numpy(dtype=float))
        mask = changed[:, [list(old.columns).index(c) for c in numeric]] & np.isfinite(diff)
    else:
        a, b = np.asarray(old, dtype=np.float64), np.asarray(new, dtype=np.float64)
        diff = np.abs(b - a)
        changed = (diff > 0).reshape(len(a), -1)
        mask = changed
        diff = diff.reshape(len(a), -1)
    unit = "images" if modality == "image" else "rows"
    return {unit: len(changed), f"{unit} changed": int(changed.any(axis=1).sum()),
            "values changed": int(changed.sum()), "values": int(changed.size),
            "mean abs change (changed values)": float(diff[mask].mean()) if mask.any() else 0.0}
