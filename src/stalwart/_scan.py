"""`stalwart.scan`: wrap the model, load the data, run a suite, return the Report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stalwart._validation import check_param
from stalwart.data import Dataset, load_data
from stalwart.errors import InputError
from stalwart.models import Model, load_model, wrap


def scan(model: Any, data: Any, *, suite: Any = "quick", seed: int = 0, target: str | None = None,
         modality: str | None = None, trust: bool = False, sensitive: Any = None,
         progress: Callable[[str, int, int], None] | None = None, executor: Any = None):
    """Scan ``model`` on ``data`` with a suite of checks and return a :class:`~stalwart.report.Report`.

    Parameters
    ----------
    model : a fitted estimator, torch module, ONNX path/session, callable, :class:`Model`, or a
        path to a saved model (``.skops``, ``.onnx``, TorchScript ``.pt``; pickle needs ``trust``)
    data : a :class:`Dataset` or a path to CSV / Parquet / NPZ data (``target`` names the label
        column of a table)
    suite : "quick", "standard", a YAML file path, or a :class:`~stalwart.suite.Suite`
    seed : every random choice derives from it; the same seed gives the same report
    sensitive : column names of the data whose groups the scan compares: adds ``group_metrics``
        and ``group_robustness`` (tabular data) to the suite
    executor : "local", "process", "ray" or an :class:`~stalwart.execute.Executor` (None: the one
        :func:`~stalwart.execute.use_executor` set, else local); on a parallel one the checks run
        at the same time, and the report is the same as the sequential one (timings aside)
    """
    from stalwart.suite import resolve

    # checked first: a bad seed or callback must not surface as a numpy error after the model has loaded
    check_param("scan", "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
                and seed >= 0, "a non-negative integer, e.g. seed=0")
    check_param("scan", "progress", progress, progress is None or callable(progress),
                "None or a callable progress(name, done, total)")
    if executor is not None:  # a bad name (or Ray missing) fails now, not after the model has loaded
        from stalwart.execute import resolve_executor

        resolve_executor(executor)
    if isinstance(model, (str, Path)):
        model = load_model(model, trust=trust)
    model = model if isinstance(model, Model) else wrap(model)
    if not isinstance(data, Dataset):
        if not isinstance(data, (str, Path)):
            raise InputError(
                "data must be a stalwart Dataset or a path to a CSV, Parquet or NPZ file; "
                f"got {type(data).__name__}. Build one with stalwart.Dataset.from_arrays(x, y)."
            )
        data = load_data(data, target=target, modality=modality)
    if data.y is None:
        raise InputError(
            "the data has no labels; scans measure accuracy, so name the label column with "
            "--target (CLI) or target=... (Python)."
        )
    chosen = resolve(suite, data.modality)
    if sensitive is not None:
        from stalwart.checks.groups import GroupPerformance, GroupRobustness
        from stalwart.suite import Suite

        if data.modality != "tabular":
            raise InputError(f"sensitive columns name columns of a table; the data is {data.modality}. Drop "
                             "--sensitive, or pass tabular data.")
        names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        declared = getattr(model, "feature_names", None)
        if declared is not None:  # columns the model does not take stay beside the data, for the groups only
            outside = [c for c in names if c not in declared]
            if outside:
                data = data.with_sensitive(outside)
        extra = [GroupPerformance(sensitive=names), GroupRobustness(sensitive=names)]
        chosen = Suite([*chosen.checks, *extra], name=chosen.name, gate=chosen.gate)
    return chosen.run(model, data, seed=seed, progress=progress, executor=executor)
