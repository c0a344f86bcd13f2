"""stalwart: measure, improve, document and monitor the robustness of ML models.

The public API::

    import stalwart
    model = stalwart.wrap(fitted_pipeline_or_torch_module_or_onnx_path)
    data = stalwart.datasets.load("breast_cancer")
    report = stalwart.scan(model, data, suite="standard")
    report.save("out/")

Names are imported on first use, so ``import stalwart`` (and ``stalwart --version``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "wrap": "stalwart.models",
    "load_model": "stalwart.models",
    "Model": "stalwart.models",
    "Dataset": "stalwart.data",
    "Schema": "stalwart.data",
    "load_data": "stalwart.data",
    "scan": "stalwart._scan",
    "Suite": "stalwart.suite",
    "Report": "stalwart.report",
}
_SUBMODULES = ("attacks", "checks", "data", "datasets", "defend", "errors", "models", "perturb", "report", "shift",
               "testing")

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"stalwart.{name}")
    else:
        raise AttributeError(f"module 'stalwart' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
