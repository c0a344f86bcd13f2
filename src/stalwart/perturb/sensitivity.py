"""Which column hurts most? Perturb one column at a time and measure accuracy drop and flip rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stalwart._validation import check_param
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError
from stalwart.perturb.base import Perturbation, get

__all__ = ["column_sensitivity"]


def column_sensitivity(model: Any, data: Dataset, perturbation: str | Perturbation = "feature_noise",
                       severity: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Per-column harm of a tabular perturbation applied to that column alone.

    For each mutable column of ``data.schema`` every *other* column is made immutable, the
    perturbation is applied (with a fresh generator from ``seed``, so every column sees the same
    random stream) and the model re-predicts. Columns the perturbation cannot change (e.g.
    ``feature_noise`` on a categorical column) are reported with ``changed_rows == 0``.

    Parameters
    ----------
    model : Model or anything :func:`stalwart.wrap` accepts
        A classifier or a regressor.
    data : Dataset
        Tabular data; labels are optional (without them only the flip rate is measured).
    perturbation : str or Perturbation, default "feature_noise"
        A tabular perturbation.
    severity : int in 1..5, default 3
    seed : int, default 0

    Returns
    -------
    list of dict, most harmful first
        ``column``, ``changed_rows`` (rows whose value changed), ``flip_rate`` (share of
        predictions that differ from the clean ones; for regression, share that moved by more
        than 1e-9 relative) with ``flip_low``/``flip_high`` (95% Wilson), and with labels
        ``accuracy`` (clean), ``perturbed_accuracy`` and ``accuracy_drop`` (classification) or
        ``rmse``, ``perturbed_rmse`` and ``rmse_increase`` (regression). Sorted by accuracy drop
        (or RMSE increase) when labels exist, then by flip rate.
    """
    from stalwart._stats import wilson_interval
    from stalwart.models.base import Model
    from stalwart.models.wrap import wrap

    if not isinstance(data, Dataset):
        raise InputError(f"column_sensitivity(data=...) must be a stalwart Dataset; got {type(data).__name__}. "
                         "Build one with Dataset.from_arrays(x, y).")
    if data.modality != "tabular":
        raise InputError(f"column_sensitivity needs tabular data; the dataset is {data.modality}.")
    p = get(perturbation) if isinstance(perturbation, str) else perturbation
    if not isinstance(p, Perturbation) or p.modality != "tabular":
        raise ConfigError(f"column_sensitivity(perturbation=...) must be a tabular perturbation; got {perturbation!r}")
    check_param("column_sensitivity", "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool),
                "an integer")
    model = model if isinstance(model, Model) else wrap(model)
    regression = model.task == "regression"
    x, schema, y = data.x, data.schema, data.y
    clean = np.asarray(model.predict(x))
    rows = []
    for col in (c for c in schema.columns if c.mutable):
        only = schema.with_immutable([n for n in schema.names if n != col.name])
        x_pert = p.apply(x, severity, np.random.default_rng(seed), only)
        before = x[col.name].astype(object).to_numpy()
        after = x_pert[col.name].astype(object).to_numpy()
        changed = ~((before == after) | (pd.isna(before) & pd.isna(after)))
        pred = np.asarray(model.predict(x_pert)) if changed.any() else clean
        if regression:
            flips = ~np.isclose(pred.astype(float), clean.astype(float), rtol=1e-9, atol=0.0)
        else:
            flips = pred != clean
        k, n = int(flips.sum()), len(flips)
        low, high = wilson_interval(k, n)
        row: dict[str, Any] = {"column": col.name, "changed_rows": int(changed.sum()), "flip_rate": k / n,
                               "flip_low": float(low), "flip_high": float(high)}
        if y is not None:
            if regression:
                yy = np.asarray(y, dtype=float)
                base = float(np.sqrt(np.mean((clean.astype(float) - yy) ** 2)))
                pert = float(np.sqrt(np.mean((pred.astype(float) - yy) ** 2)))
                row.update(rmse=base, perturbed_rmse=pert, rmse_increase=pert - base)
            else:
                base = float(np.mean(clean == y))
                pert = float(np.mean(pred == y))
                row.update(accuracy=base, perturbed_accuracy=pert, accuracy_drop=base - pert)
        rows.append(row)
    harm = "rmse_increase" if regression else "accuracy_drop"
    rows.sort(key=lambda r: (-r.get(harm, 0.0), -r["flip_rate"]))  # stable: schema order breaks ties
    return rows
