"""Model adapters: ``wrap`` turns anything a team ships into a :class:`Model`.

Members are imported on first use: data-only work (tabular drift) never loads torch.
"""

from stalwart._lazy import lazy_module

# bound now, not lazily: the function ``wrap`` shares its name with its module, and importing
# the module later would otherwise leave ``stalwart.models.wrap`` pointing at the module
from stalwart.models.wrap import SUPPORTED_EXTENSIONS, load_model, wrap  # noqa: E402

_EXPORTS = {
    "Model": ".base",
    "FunctionModel": ".function",
    "torch_mirror": ".mirrors",
    "SklearnModel": ".sklearn",
    "TorchModel": ".torch",
    "OnnxModel": ".onnx",  # onnxruntime is imported only when this is used
}
__all__ = ["FunctionModel", "Model", "SUPPORTED_EXTENSIONS", "SklearnModel", "TorchModel", "load_model", "torch_mirror",
           "wrap"]
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
