"""Model adapters: ``wrap`` turns anything a team ships into a :class:`Model`."""

from stalwart.models.base import Model
from stalwart.models.function import FunctionModel
from stalwart.models.mirrors import torch_mirror
from stalwart.models.sklearn import SklearnModel
from stalwart.models.torch import TorchModel
from stalwart.models.wrap import SUPPORTED_EXTENSIONS, load_model, wrap

__all__ = [
    "Model",
    "wrap",
    "load_model",
    "SUPPORTED_EXTENSIONS",
    "SklearnModel",
    "TorchModel",
    "FunctionModel",
    "torch_mirror",
]


def __getattr__(name: str):
    # onnxruntime is an optional extra, so OnnxModel is imported only when asked for
    if name == "OnnxModel":
        from stalwart.models.onnx import OnnxModel

        return OnnxModel
    raise AttributeError(f"module 'stalwart.models' has no attribute {name!r}")
