"""Model adapters: ``wrap`` turns anything a team ships into a :class:`Model`.

Members are imported on first use: data-only work (tabular drift) never loads torch.
"""

from stalwart._lazy import lazy_module

_EXPORTS = {
    "Model": ".base",
    "FunctionModel": ".function",
    "torch_mirror": ".mirrors",
    "SklearnModel": ".sklearn",
    "TorchModel": ".torch",
    "OnnxModel": ".onnx",  # onnxruntime is imported only when this is used
    **dict.fromkeys(("SUPPORTED_EXTENSIONS", "load_model", "wrap"), ".wrap"),
}
__all__ = sorted(set(_EXPORTS) - {"OnnxModel"})
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
