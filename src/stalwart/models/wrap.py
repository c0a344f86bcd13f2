"""``wrap`` and ``load_model``: the one door from a user's model to a :class:`Model`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stalwart.errors import InputError, ModelError
from stalwart.models.base import Model, Task

__all__ = ["wrap", "load_model", "SUPPORTED_EXTENSIONS"]

#: file extensions :func:`load_model` understands, and whether they need ``trust=True``
SUPPORTED_EXTENSIONS = {
    ".skops": "scikit-learn model saved with skops (safe)",
    ".onnx": "ONNX graph (safe)",
    ".pt": "TorchScript module (safe); a pickled nn.Module needs trust=True",
    ".pth": "TorchScript module (safe); a pickled nn.Module needs trust=True",
    ".pt2": "torch.export program (safe)",
    ".pkl": "pickle (needs trust=True)",
    ".pickle": "pickle (needs trust=True)",
    ".joblib": "joblib pickle (needs trust=True)",
}

_SAFE_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _is_onnx_session(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "InferenceSession" and cls.__module__.startswith("onnxruntime")


def wrap(obj: Any, *, classes: Any = None, task: Task | None = None,
         input_bounds: tuple[float, float] | None = None, batch_size: int | None = None,
         device: Any = None) -> Model:
    """Wrap a model as a :class:`~stalwart.models.base.Model`.

    Parameters
    ----------
    obj : object
        A :class:`Model` (returned as is), a fitted scikit-learn estimator or Pipeline, a
        ``torch.nn.Module`` (TorchScript too), an ONNX file path or
        ``onnxruntime.InferenceSession``, or a callable mapping an (n, ...) array to
        probabilities (n, k), logits (n, k), labels (n,) or regression values (n,).
    classes : array-like, optional
        Labels of the output columns (default: the model's own, else ``0..k-1``).
    task : {"classification", "regression"}, optional
        Default: inferred (callables default to classification).
    input_bounds : tuple of float, optional
        Declared valid input range ``(lo, hi)``; attacks use it as their default bounds.
    batch_size : int, optional
        Samples per call into the underlying model.
    device : str or torch.device, optional
        Torch models only: where to run them.

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        If ``obj`` is of an unsupported kind or is an unfitted estimator.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> import stalwart.models as sm
    >>> model = sm.wrap(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    >>> model.predict([[0.9]]).tolist()
    [1]
    """
    if isinstance(obj, Model):
        return obj
    _check_wrap_args(task, input_bounds, batch_size)
    if device is not None and not _is_torch_module(obj):
        raise ModelError("wrap(device=...) applies to torch modules only; leave it unset for "
                         f"{type(obj).__name__}.")
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.suffix.lower() != ".onnx":
            raise ModelError(
                f"wrap() got the path {str(obj)!r}; only .onnx paths are wrapped directly. "
                "Use load_model(path) for .skops, .pt, .pkl and other files."
            )
        return _wrap_onnx(path, classes, task, input_bounds, batch_size)
    if _is_onnx_session(obj):
        return _wrap_onnx(obj, classes, task, input_bounds, batch_size)

    from stalwart.models.sklearn import SklearnModel, is_sklearn_estimator

    if is_sklearn_estimator(obj):
        return SklearnModel(obj, classes=classes, task=task, batch_size=batch_size,
                            input_bounds=input_bounds)
    if _is_torch_module(obj):
        if task == "regression":
            raise ModelError("torch modules are wrapped as classifiers; for a torch regressor wrap "
                             "a function: wrap(lambda x: module(torch.as_tensor(x)).numpy(), "
                             "task='regression').")
        from stalwart.models.torch import TorchModel

        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        return TorchModel(obj, classes=classes, device=device, input_bounds=input_bounds, **kwargs)
    if callable(obj) and not isinstance(obj, type):
        from stalwart.models.function import FunctionModel

        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        return FunctionModel(obj, classes=classes, task=task or "classification",
                             input_bounds=input_bounds, **kwargs)
    raise ModelError(
        f"cannot wrap an object of type {type(obj).__module__}.{type(obj).__qualname__}. Supported: "
        "a fitted scikit-learn estimator or Pipeline, a torch.nn.Module, an ONNX path or "
        "onnxruntime.InferenceSession, or a callable returning probabilities, logits or labels."
    )


def _check_wrap_args(task: Any, input_bounds: Any, batch_size: Any) -> None:
    """Refuse bad ``wrap`` arguments here, before an adapter misreads them."""
    from stalwart._validation import check_param, check_positive, param_error

    check_param("wrap", "task", task, task in (None, "classification", "regression"),
                "'classification', 'regression' or None (inferred from the model)")
    if batch_size is not None:
        check_positive("wrap", "batch_size", batch_size, integer=True)
    if input_bounds is None:
        return
    if isinstance(input_bounds, (str, bytes)) or not isinstance(input_bounds, (tuple, list)) or len(input_bounds) != 2:
        raise param_error("wrap", "input_bounds", "a pair (lower, upper), e.g. (0.0, 1.0)", input_bounds)
    try:
        lo, hi = (np.asarray(b, dtype=float) for b in input_bounds)
        ordered = not np.any(np.asarray(lo > hi))
    except (TypeError, ValueError):
        raise param_error("wrap", "input_bounds", "a pair of numbers (lower, upper), e.g. (0.0, 1.0)",
                          input_bounds) from None
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise param_error("wrap", "input_bounds", "a pair of numbers without NaN (use -inf/inf for no bound)",
                          input_bounds)
    if not ordered:
        raise param_error("wrap", "input_bounds", "a pair with lower <= upper", input_bounds)


def _wrap_onnx(src: Any, classes: Any, task: Task | None, input_bounds: Any,
               batch_size: int | None) -> Model:
    from stalwart.models.onnx import OnnxModel

    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    return OnnxModel(src, classes=classes, task=task, input_bounds=input_bounds, **kwargs)


def _untrusted_message(path: Path, what: str) -> str:
    return (f"loading {path} runs arbitrary code ({what}); pass trust=True (CLI: --trust) only for "
            "files you trust, or save the model with skops")


def _load_skops(path: Path, trust: bool) -> Any:
    from stalwart.errors import require

    sio = require("skops.io", "skops")
    try:
        untrusted = list(sio.get_untrusted_types(file=path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means a broken file
        raise ModelError(f"{path} is not a readable skops file: {exc}. Check the file is whole, or save the "
                         "model again with skops.io.dump(model, path).") from None
    if not trust:
        unsafe = [t for t in untrusted if not t.startswith(_SAFE_SKOPS_PREFIXES)]
        if unsafe:
            raise ModelError(
                f"{path} contains types outside scikit-learn/numpy/scipy that skops does not trust: "
                f"{unsafe}. Inspect them; if you trust the file, load it with trust=True "
                "(CLI: --trust)."
            )
    return sio.load(path, trusted=untrusted)


def _load_torch(path: Path, trust: bool) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated upstream but still what many teams ship
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception:  # noqa: BLE001 - not TorchScript; maybe a state_dict or a pickled module
        pass
    try:
        # weights_only unpickling runs no code, so it is safe without trust
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a pickled nn.Module needs the full unpickler
        if not trust:
            raise ModelError(_untrusted_message(
                path, "it is not TorchScript, so torch would unpickle it")) from None
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
        except (ImportError, AttributeError) as exc:  # the pickle names code that is not installed
            raise _unpickle_error(path, exc) from None
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{path} could not be loaded as TorchScript nor as a pickled module: {exc}. "
                             "Check the file is whole; save the model with torch.jit.save or torch.export "
                             "(safe to load) or pass a file torch.save wrote.") from None
    if isinstance(obj, dict):
        raise ModelError(
            f"{path} holds a state_dict, not a model; build the module, call "
            "module.load_state_dict(torch.load(path)), then wrap(module)."
        )
    return obj


def _unpickle_error(path: Path, exc: BaseException) -> ModelError:
    """What went wrong unpickling ``path``, and what to do about it."""
    if isinstance(exc, ImportError):
        module = getattr(exc, "name", None) or str(exc)
        return ModelError(
            f"{path} cannot be loaded: it refers to a class from the module {module!r}, which is not installed "
            f"({type(exc).__name__}: {exc}). Install the package the model was saved with (the same version), "
            "or save the model with skops or ONNX, which need no code to load.")
    if isinstance(exc, AttributeError):
        return ModelError(
            f"{path} cannot be loaded: it refers to a class or function the installed packages lack ({exc}). "
            "Install the package versions the model was saved with, or save it with skops or ONNX.")
    return ModelError(
        f"{path} is not a readable pickle ({type(exc).__name__}: {exc}); the file is truncated, corrupt or "
        "not a pickle. Save the model again (skops is safer than pickle) and check the file was copied whole.")


def _load_export(path: Path, **wrap_kwargs: Any) -> Model:
    """A ``torch.export`` program as a TorchModel. Its input's per-sample shape, and its batch size
    when it was exported without a dynamic batch dimension, come from the program itself."""
    import logging

    import torch

    from stalwart.models.torch import TorchModel

    quiet = logging.getLogger("torch")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # torch logs its own traceback for an unreadable file; ours is the message
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a program we can read
        raise ModelError(f"{path} is not a loadable torch.export program: {' '.join(str(exc).split())[:300]}. "
                         "Check the file is whole, or save the program again with torch.export.save(program, "
                         "path).") from None
    finally:
        quiet.setLevel(level)
    if wrap_kwargs.get("task") == "regression":
        return wrap(program.module(), **wrap_kwargs)  # refused there, with the way out
    module = program.module()
    user = {spec.arg.name for spec in program.graph_signature.input_specs
            if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT}
    shapes = [node.meta["val"].shape for node in module.graph.nodes
              if node.op == "placeholder" and node.name in user and "val" in node.meta]
    kwargs = {k: v for k, v in wrap_kwargs.items() if k in ("classes", "device", "input_bounds", "batch_size")
              and v is not None}
    if len(shapes) == 1:
        dims = list(shapes[0])
        if dims and isinstance(dims[0], int):  # exported with a fixed batch: feed it exactly that many
            kwargs["fixed_batch_size"] = dims[0]
        if len(dims) > 1 and all(isinstance(d, int) for d in dims[1:]):
            kwargs["input_shape"] = tuple(dims[1:])
    return TorchModel(module, **kwargs)


def _load_pickle(path: Path, trust: bool) -> Any:
    if not trust:
        raise ModelError(_untrusted_message(path, "pickle"))
    try:
        if path.suffix.lower() == ".joblib":
            import joblib

            return joblib.load(path)
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - the caller passed trust=True
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - unpickling runs arbitrary code; any failure means an unusable file
        raise _unpickle_error(path, exc) from None


def load_model(path: str | os.PathLike, *, trust: bool = False, **wrap_kwargs: Any) -> Model:
    """Load a model file and wrap it.

    Parameters
    ----------
    path : str or PathLike
        ``.skops`` (scikit-learn via skops), ``.onnx``, ``.pt``/``.pth`` (TorchScript),
        ``.pt2`` (``torch.export``), or ``.pkl``/``.pickle``/``.joblib``.
    trust : bool, default False
        Allow formats that execute code when loaded (pickle, joblib, pickled torch modules) and
        skops files with types from outside scikit-learn/numpy/scipy. Only for files you trust.
    **wrap_kwargs
        Passed to :func:`wrap` (``classes``, ``task``, ``input_bounds``, ``batch_size``, ``device``).

    Returns
    -------
    Model

    Raises
    ------
    InputError
        If the file does not exist.
    ModelError
        If the extension is unknown, the file cannot be read, or it needs ``trust=True``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_model(path=...) must be a file path (str or pathlib.Path); got "
                         f"{type(path).__name__}. To wrap a model object, use wrap(model).")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {str(path)!r} does not exist (or is not a file); check the path.")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise ModelError(
            f"cannot load {path}: unknown extension {ext or '(none)'!r}. Supported: "
            f"{', '.join(sorted(SUPPORTED_EXTENSIONS))}."
        )
    if ext == ".onnx":
        return wrap(str(path), **wrap_kwargs)
    if ext == ".pt2":
        return _load_export(path, **wrap_kwargs)
    if ext == ".skops":
        obj = _load_skops(path, trust)
    elif ext in (".pt", ".pth"):
        obj = _load_torch(path, trust)
    else:
        obj = _load_pickle(path, trust)
    return wrap(obj, **wrap_kwargs)
