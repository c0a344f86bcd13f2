"""Adapter for PyTorch modules (``torch.nn.Module`` and TorchScript)."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import torch

from stalwart._validation import check_choice, check_positive
from stalwart.errors import InputError, ModelError, StalwartError
from stalwart.models.base import Model, check_finite_output, model_call_error, short_error

__all__ = ["TorchModel", "looks_like_probabilities", "is_torch_model"]

TorchOutput = Literal["auto", "logits", "probabilities"]


def looks_like_probabilities(scores: np.ndarray | torch.Tensor, atol: float = 1e-4) -> bool:
    """Whether every row of a 2-D score array is non-negative and sums to one."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().to("cpu", torch.float64).numpy()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2 or not np.isfinite(scores).all():
        return False
    return bool((scores >= -atol).all() and np.allclose(scores.sum(axis=1), 1.0, atol=atol))


def _module_device(module: torch.nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _module_dtype(module: torch.nn.Module) -> torch.dtype:
    for tensor in module.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _standard_layout(t: torch.Tensor) -> torch.Tensor:
    """``t`` with the strides of a tensor freshly made in its shape (C order, size-1 axes too).

    A module is written for the batches a ``DataLoader`` makes. Images permuted from channels-last
    arrays (the usual numpy path), and even a 1-channel batch whose channel axis has stride 1, make
    torch run every layer channels-last: a module that flattens with ``.view`` then fails, and
    layer speeds change with the caller's strides. A contiguous ``t`` is re-viewed (no copy, and
    gradients pass through); any other is copied once.
    """
    if t.ndim > 2 and t.stride() != _c_strides(t.shape):  # a non-contiguous t differs too
        t = t.contiguous().view(-1).view(t.shape)
    return t


def _c_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _guess_n_outputs(module: torch.nn.Module) -> int | None:
    """Outputs of the last ``nn.Linear`` in registration order (a cheap guess before any call)."""
    last = None
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            last = sub.out_features
    return last


_CONVS = {torch.nn.Conv1d: "L", torch.nn.Conv2d: "H, W", torch.nn.Conv3d: "D, H, W"}


def _first_layer(module: torch.nn.Module, t: torch.Tensor) -> tuple[str, bool] | None:
    """What the module's first layer takes, when it is an ``nn.Linear`` or ``nn.Conv*d``, written as
    a shape, and whether ``t`` does not fit it; None otherwise (a guess from registration order,
    used only to explain a failure)."""
    if isinstance(module, torch.jit.ScriptModule):  # its submodules do not keep their classes
        return None
    first = next((m for m in module.modules() if not list(m.children())), None)
    if isinstance(first, torch.nn.Linear):  # takes (..., in_features)
        return f"(n, {first.in_features})", t.ndim < 2 or int(t.shape[-1]) != first.in_features
    for conv, rest in _CONVS.items():
        if isinstance(first, conv):
            ndim = 2 + len(rest.split(", "))
            return f"(n, {first.in_channels}, {rest})", t.ndim != ndim or int(t.shape[1]) != first.in_channels
    return None


def is_torch_model(model: Any) -> bool:
    """Whether ``model`` is a wrapped torch module (whose layers can give features)."""
    return isinstance(model, TorchModel)


class TorchModel(Model):
    """A PyTorch classifier behind the :class:`~stalwart.models.base.Model` interface.

    Parameters
    ----------
    module : torch.nn.Module
        The network (TorchScript modules work too). It is put in eval mode and moved to
        ``device``. Its output is (n, k) logits or probabilities, or (n, 1) / (n,) binary logits.
    classes : array-like, optional
        Labels of the output columns; default ``arange(n_outputs)``.
    device : str or torch.device, optional
        Where to run; default the device of the module's parameters (CPU if it has none).
    batch_size : int, default 256
        Samples per forward pass in :meth:`predict_proba`.
    input_shape : tuple of int, optional
        Shape of one sample; flat inputs are reshaped to ``(n, *input_shape)``.
    output : {"auto", "logits", "probabilities"}, default "auto"
        What the module returns. ``"auto"`` detects probabilities (non-negative rows that sum
        to one) on the first call; anything else is taken as logits.
    input_bounds : tuple of float, optional
        Declared valid input range ``(lo, hi)``.
    fixed_batch_size : int, optional
        The module only takes batches of exactly this size (a ``torch.export`` program exported
        without a dynamic batch dimension): inputs are cut into batches of that size, the last
        one padded with copies of its last sample, and the padding's outputs dropped.

    Examples
    --------
    >>> import torch
    >>> from stalwart.models.torch import TorchModel
    >>> model = TorchModel(torch.nn.Linear(4, 3), classes=["a", "b", "c"])
    >>> model.predict_proba(torch.zeros(2, 4)).shape
    (2, 3)
    """

    def __init__(self, module: torch.nn.Module, classes: Any = None, device: str | torch.device | None = None,
                 batch_size: int = 256, input_shape: tuple[int, ...] | None = None,
                 output: TorchOutput = "auto",
                 input_bounds: tuple[float, float] | None = None, fixed_batch_size: int | None = None) -> None:
        super().__init__()
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"TorchModel(module=...) must be a torch.nn.Module; got {type(module).__name__}.")
        check_positive(self, "batch_size", batch_size, integer=True)
        check_choice(self, "output", output, ("auto", "logits", "probabilities"))
        if fixed_batch_size is not None:
            check_positive(self, "fixed_batch_size", fixed_batch_size, integer=True)
            batch_size = int(fixed_batch_size)
        self.fixed_batch_size = None if fixed_batch_size is None else int(fixed_batch_size)
        try:
            self.device = _module_device(module) if device is None else torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ModelError(f"TorchModel(device=...) is not a valid torch device: {device!r} ({exc}).") from None
        try:
            module.eval()
        except NotImplementedError:  # torch.export modules are fixed in inference form already
            pass
        self.module = module.to(self.device)
        self.dtype = _module_dtype(module)
        self.batch_size = int(batch_size)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        if self.input_shape is not None and len(self.input_shape) == 1:
            self.n_features = self.input_shape[0]
        self.input_bounds = input_bounds
        self._output = output
        self._binary: bool | None = None
        self._kind_settled = output != "auto"
        self.output_kind = "probabilities" if output == "probabilities" else "logits"
        self.classes = None if classes is None else np.asarray(classes)
        self._classes_guessed = False
        if self.input_shape is not None:
            # one probe on zeros gives (and checks) the output width before the user's first call
            with torch.inference_mode():
                self._inspect(self._forward(torch.zeros((1, *self.input_shape), dtype=self.dtype,
                                                      device=self.device), probe=True), probe=True)
        elif self.classes is None:
            n_out = _guess_n_outputs(module)
            if n_out is not None:
                self.classes = np.arange(max(n_out, 2))
                self._classes_guessed = True

    # -- helpers ------------------------------------------------------------------------------
    def _to_tensor(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            t = x.to(device=self.device, dtype=self.dtype)
        else:
            try:
                arr = np.asarray(x, dtype=np.float64 if self.dtype == torch.float64 else np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"x must be numeric for a torch model; {exc}.") from None
            if not arr.flags.writeable:  # e.g. a pandas copy-on-write view; torch would warn on it
                arr = arr.copy()
            t = torch.from_numpy(arr).to(device=self.device, dtype=self.dtype)
        if t.ndim == 0 or t.shape[0] == 0:
            raise InputError(f"x is empty (shape {tuple(t.shape)}); pass at least one sample to the model.")
        t = _standard_layout(t)
        if self.input_shape is not None and tuple(t.shape[1:]) != self.input_shape:
            per_sample = int(np.prod(self.input_shape))
            if t[0].numel() != per_sample:
                raise InputError(
                    f"x has samples of shape {tuple(t.shape[1:])} ({t[0].numel()} values) but the model "
                    f"expects input_shape {self.input_shape} ({per_sample} values); reshape x."
                )
            t = t.reshape(t.shape[0], *self.input_shape)
        return t

    def _forward(self, t: torch.Tensor, *, probe: bool = False) -> torch.Tensor:
        """The module on ``t``; in exact-size batches (padded, padding dropped) when it needs them."""
        b = self.fixed_batch_size
        if b is None or t.shape[0] == b:
            return self._call(t, probe)
        outs = []
        for chunk in t.split(b):
            n = chunk.shape[0]
            if n < b:
                chunk = torch.cat([chunk, chunk[-1:].expand(b - n, *chunk.shape[1:])])
            outs.append(self._call(chunk, probe)[:n])
        return torch.cat(outs)

    def _call(self, t: torch.Tensor, probe: bool) -> torch.Tensor:
        """``module(t)``; the module failing on this input becomes a stalwart error that names the
        input it takes (a ``probe`` is the zeros of ``input_shape``, checked in the constructor)."""
        try:
            return self.module(t)
        except (StalwartError, MemoryError, torch.cuda.OutOfMemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a module (or TorchScript) raises any type
            first = _first_layer(self.module, t)
            if probe:
                takes = f" (its first layer takes {first[0]})" if first is not None else ""
                raise ModelError(
                    f"TorchModel(input_shape={self.input_shape}) does not fit the module: it fails on zeros of shape "
                    f"{tuple(t.shape)}{takes}. Pass input_shape=<the shape of one sample the module takes>, or "
                    f"leave it unset. The module raised {short_error(exc, limit=1000)}") from None
            if self.input_shape is not None:
                expects = f"(n, {', '.join(map(str, self.input_shape))})"
                mismatch = tuple(t.shape[1:]) != self.input_shape
            elif first is not None:
                expects, mismatch = first
            else:
                expects, mismatch = None, False
            raise model_call_error(self.name, exc, t, expects=expects, mismatch=mismatch) from None

    def _inspect(self, out: torch.Tensor, probe: bool = False) -> None:
        """Settle the output width, the binary case and (for "auto") probabilities vs logits.

        A ``probe`` on zeros settles only the width: whether outputs are probabilities is judged
        on the first real batch.
        """
        if self._binary is not None:
            if not self._kind_settled and not probe:
                self._settle_kind(out)
            return
        if not isinstance(out, torch.Tensor) or out.ndim not in (1, 2):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(
                f"the torch module returned {shape}; a classifier must return a tensor of shape "
                "(n, n_classes) or (n, 1). Wrap it in a module that returns the logits."
            )
        self._binary = out.ndim == 1 or out.shape[1] == 1
        n_out = 2 if self._binary else int(out.shape[1])
        if not probe:
            self._settle_kind(out)
        if self.classes is None or self._classes_guessed:
            self.classes = np.arange(n_out)
            self._classes_guessed = False
        elif self.n_classes != n_out:
            raise ModelError(
                f"classes has {self.n_classes} labels but the module returns {n_out} scores per sample; "
                "pass one label per output column."
            )

    def _settle_kind(self, out: torch.Tensor) -> None:
        if not bool(torch.isfinite(out).all()):
            return  # NaN rows prove nothing about the output kind; the next finite batch decides
        if self._output == "auto" and not self._binary and looks_like_probabilities(out):
            self.output_kind = "probabilities"
        self._kind_settled = True

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        """Turn raw module output into logits whose softmax is the class probabilities."""
        self._inspect(out)
        if self._binary:
            z = out.reshape(-1, 1)
            if self.output_kind == "probabilities":
                p = z.clamp(1e-12, 1 - 1e-12)
                z = torch.log(p) - torch.log1p(-p)
            return torch.cat([torch.zeros_like(z), z], dim=1)
        if self.output_kind == "probabilities":
            return torch.log(out.clamp_min(1e-30))
        return out

    # -- Model interface ----------------------------------------------------------------------
    def _raw_predict(self, x: Any) -> np.ndarray:
        t = self._to_tensor(x)
        with torch.inference_mode():
            logits = self._logits(self._forward(t))
            return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def scores_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (float32, on ``x``'s device) for a tensor batch, without leaving
        torch; counts ``x.shape[0]`` queries. Batches of ``batch_size`` bound peak memory."""
        t = self._to_tensor(x)
        with torch.inference_mode():
            parts = [torch.softmax(self._logits(self._forward(b)).float(), dim=1) for b in t.split(self.batch_size)]
        self.n_queries += int(t.shape[0])
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        if not bool(torch.isfinite(out).all()):
            check_finite_output(out.cpu().numpy(), self.name)
        return out.to(x.device)

    @property
    def differentiable(self) -> bool:
        return True

    @property
    def logits_from_probabilities(self) -> bool:
        return self.output_kind == "probabilities"

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable logits, shape (n, n_classes); counts ``x.shape[0]`` queries.

        For a module that outputs probabilities these are their logarithms (softmax of them is
        the same distribution); for a single-output module they are ``[0, z]``.
        """
        t = self._to_tensor(x)
        out = self._logits(self._forward(t))
        self.n_queries += int(t.shape[0])
        return out

    def _fingerprint_bytes(self) -> bytes:
        h = hashlib.sha256(type(self.module).__qualname__.encode())
        for key, value in self.module.state_dict().items():
            h.update(key.encode())
            h.update(str(value.dtype).encode() + str(tuple(value.shape)).encode())
            h.update(value.detach().to("cpu").contiguous().numpy().tobytes()
                     if value.dtype != torch.bfloat16 else value.float().cpu().numpy().tobytes())
        return h.digest()

    def __repr__(self) -> str:
        return (f"TorchModel(module={type(self.module).__name__}, classes="
                f"{None if self.classes is None else self.classes.tolist()}, device='{self.device}')")
