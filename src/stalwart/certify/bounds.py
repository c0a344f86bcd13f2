"""Bound propagation: certified radii for ReLU networks, by interval (IBP) and linear (CROWN) bounds.

Both bound the logit margins ``z_y - z_j`` (true class against every other) over every input in
the threat model's ball around ``x``; when every lower bound is positive, no input in the ball
changes the prediction. A certified radius is the largest eps at which that holds (bisection).

- **IBP** (Gowal et al., 2018): intervals pushed through each layer; the last layer is folded
  into the margins ("elision"), which makes it exact on linear models.
- **CROWN** (Zhang et al., 2018): linear bounds propagated backwards from the margins, with the
  triangle relaxation's upper line and the adaptive lower slope (1 where ``u > -l``, else 0) for
  every unstable ReLU; pre-activation bounds of each layer come from CROWN itself (and are never
  looser than the interval through the layer). The margin bound is the larger of CROWN's and
  IBP's, so CROWN never certifies less than IBP; on trained networks it certifies much more.

On a linear model both are exact: the certified radius is ``min_j margin_j / ||w_y - w_j||_*``
(the dual norm: L1 for L-infinity balls, L2 for L2 balls).

Networks: ``torch.nn.Sequential`` (nested) of ``Linear``, ``Conv2d``, ``AvgPool2d``, ``MaxPool2d``, ``Flatten``,
``BatchNorm1d/2d`` (eval mode), ``ReLU``, ``Identity`` and ``Dropout`` (eval), an optional final
``Softmax``/``LogSoftmax`` (it does not change which class wins); and the exact torch mirrors of
scikit-learn linear models and ReLU/identity MLPs (:func:`stalwart.models.torch_mirror`). Every
affine part is turned into a matrix once per call (in float64), so very wide convolutions are
refused with a pointer to randomized smoothing, which needs no access to the layers. CROWN's
backward pass works on each sample's unstable ReLUs only, and takes a lone convolution backwards
by its adjoint (the gradient of conv2d), not by its dense matrix.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
import torch

from stalwart._validation import (
    check_array,
    check_choice,
    check_labels,
    check_lengths,
    check_positive,
    labels_to_index,
    param_error,
)
from stalwart.certify.base import CertificationResult, Certifier, register
from stalwart.errors import ConfigError, InputError, ModelError

__all__ = ["IBP", "CROWN", "network_layers", "margin_bounds"]

#: the largest dense matrix (entries) built for one affine layer
MAX_DENSE = 50_000_000
#: a margin counts as certified only above this (the model itself computes in float32)
TOLERANCE = 1e-6

Layers = list[tuple[torch.Tensor, torch.Tensor]]


# -- the network as affine maps with ReLUs between them -------------------------------------------
def network_layers(model: Any, sample_shape: tuple[int, ...]) -> Layers:
    """``[(W1, b1), ..., (WL, bL)]`` (float64) with ``f(x) = WL relu(... relu(W1 x + b1) ...) + bL``
    on flattened inputs, the logits' argmax equal to the model's; :class:`ModelError` for a
    model whose layers cannot be bounded."""
    module = _module_of(model)
    ops: list[Any] = []
    shape = _walk(module, tuple(sample_shape), ops)
    if "final" in ops:
        if ops.index("final") != len(ops) - 1:
            raise ModelError("a Softmax, LogSoftmax or Sigmoid inside the network cannot be bounded (only as its "
                             "last layer); certify it with randomized smoothing (stalwart.certify."
                             "RandomizedSmoothing).")
        ops.pop()
    if int(np.prod(shape)) == 1 and ops and ops[-1] != "relu":  # one logit z: classes [0, z]
        w, b = ops[-1]
        ops[-1] = (torch.cat([torch.zeros_like(w), w]), torch.cat([torch.zeros_like(b), b]))
    return _merge(ops, int(np.prod(sample_shape)))


def _module_of(model: Any) -> torch.nn.Module:
    from stalwart.models.sklearn import SklearnModel
    from stalwart.models.torch import TorchModel

    if isinstance(model, torch.nn.Module):
        return model
    if isinstance(model, TorchModel):
        return model.module
    if isinstance(model, SklearnModel):
        if model.mirror is None:
            raise ModelError(f"{model.name} has no exact torch mirror (supported: linear classifiers and ReLU or "
                             "identity MLPs), so its layers cannot be bounded; certify it with randomized smoothing "
                             "(stalwart.certify.RandomizedSmoothing), which needs only predictions.")
        return model.mirror
    name = getattr(model, "name", type(model).__name__)
    raise ModelError(f"bound propagation needs the network's layers; {name} gives only predictions. Certify it "
                     "with randomized smoothing (stalwart.certify.RandomizedSmoothing), which works on any model.")


def _dense(fn: Any, shape: tuple[int, ...], what: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Matrix and offset of the affine map ``fn`` on samples of ``shape`` (from the unit vectors)."""
    n_in = int(np.prod(shape))
    with torch.no_grad():
        try:
            zero = fn(torch.zeros((1, *shape), dtype=torch.float64))
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{what} cannot take samples of shape {shape} ({' '.join(str(exc).split())[:200]}); "
                             "pass x in the shape the model takes.") from None
        out_shape = tuple(zero.shape[1:])
        if n_in * int(np.prod(out_shape)) > MAX_DENSE:
            raise ModelError(f"{what} maps {n_in} values to {int(np.prod(out_shape))}: too large for dense bound "
                             "propagation here; certify this model with randomized smoothing "
                             "(stalwart.certify.RandomizedSmoothing) instead.")
        basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
        cols = torch.cat([fn(chunk) for chunk in basis.split(512)]) - zero
    return cols.reshape(n_in, -1).T.contiguous(), zero.reshape(-1), out_shape


def _walk(module: torch.nn.Module, shape: tuple[int, ...], ops: list[Any]) -> tuple[int, ...]:
    """Append ``module``'s affine maps (W, b) and "relu" markers to ``ops``; the output shape."""
    from stalwart.models import mirrors

    nn = torch.nn
    if isinstance(module, torch.jit.ScriptModule):
        return _walk_script(module, shape, ops)
    if isinstance(module, nn.Sequential):
        for child in module:
            shape = _walk(child, shape, ops)
        return shape
    if isinstance(module, (nn.Identity, nn.Dropout)):
        return shape
    if isinstance(module, nn.ReLU):
        ops.append("relu")
        return shape
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)):
        ops.append("final")  # monotone: the same class wins (allowed only last, see network_layers)
        return shape
    if isinstance(module, nn.Flatten):
        if module.start_dim not in (1, -len(shape) - 1) or module.end_dim != -1:
            raise ModelError(f"{module} flattens only part of a sample; bound propagation supports Flatten() "
                             "over the whole sample. Use Flatten() or certify with randomized smoothing.")
        return (int(np.prod(shape)),)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.training:
        raise ModelError(f"{module} is in training mode; call model.eval() before certifying.")
    if isinstance(module, nn.Linear) and len(shape) != 1:
        raise ModelError(f"{module} is applied to samples of shape {shape}; bound propagation needs flat inputs "
                         "to Linear layers (add nn.Flatten() before it).")
    if isinstance(module, mirrors._MLP):
        if module.activation not in ("relu", "identity"):
            raise ModelError(f"an MLP with {module.activation!r} activations cannot be bounded here (ReLU and "
                             "identity only); certify it with randomized smoothing (stalwart.certify."
                             "RandomizedSmoothing).")
        for i in range(module.n_layers):
            w, b = getattr(module, f"w{i}").double(), getattr(module, f"b{i}").double()
            ops.append((w.T.contiguous(), b))
            if i < module.n_layers - 1 and module.activation == "relu":
                ops.append("relu")
        return (int(ops[-1][0].shape[0]),)
    if isinstance(module, mirrors._Linear):
        ops.append((module.weight.double(), module.bias.double()))  # "ovr" logits: log sigmoid, monotone
        return (int(module.weight.shape[0]),)
    if isinstance(module, mirrors._Affine) and module.clamp is not None:
        raise ModelError("a MinMaxScaler(clip=True) step cannot be bounded; certify with randomized smoothing "
                         "(stalwart.certify.RandomizedSmoothing).")
    if isinstance(module, nn.MaxPool2d):
        return _max_pool(shape, module.kernel_size, module.stride, module.padding, module.dilation,
                         module.ceil_mode or module.return_indices, ops)
    if not type(module).__module__.startswith("torch.nn") and not isinstance(
            module, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, mirrors._Affine)):
        return _walk_traced(module, shape, ops)  # a module with its own forward: read its graph
    if not isinstance(module, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d, mirrors._Affine)):
        raise ModelError(f"bound propagation does not support the layer {type(module).__name__} ({module}); "
                         "supported: Linear, Conv2d, AvgPool2d, MaxPool2d, BatchNorm (eval), Flatten, ReLU, Identity, Dropout. "
                         "Certify this model with randomized smoothing (stalwart.certify.RandomizedSmoothing).")
    w, b, out_shape = _dense(lambda t: _as64(module, t), shape, type(module).__name__)
    if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        ops.append(_ConvLayer(w, b, module.weight.detach().double(), shape, out_shape, module.stride, module.padding,
                             module.dilation, module.groups))
    else:
        ops.append((w, b))
    return out_shape


def _walk_traced(module: torch.nn.Module, shape: tuple[int, ...], ops: list[Any]) -> tuple[int, ...]:
    """A module with its own ``forward``: its torch.fx graph, which must be a chain of the layers
    :func:`_walk` takes, relu calls and flattening (``flatten(x, 1)``, ``x.view(x.size(0), -1)``)."""
    import operator

    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow and the like
        raise ModelError(f"{type(module).__name__}.forward cannot be traced into a chain of layers "
                         f"({' '.join(str(exc).split())[:160]}); certify it with randomized smoothing "
                         "(stalwart.certify.RandomizedSmoothing).") from None

    def refuse(why: str) -> ModelError:
        return ModelError(f"{type(module).__name__}.forward {why}, which bound propagation does not support; "
                          "use randomized smoothing (stalwart.certify.RandomizedSmoothing) for this model.")

    sizes: set[Any] = set()  # nodes that only read the batch size (x.size(0), x.shape[0])
    previous = None
    for node in graph.nodes:
        if node.op == "placeholder":
            previous = node
            continue
        if node.op == "output":
            break
        if (node.op == "call_method" and node.target == "size") or (
                node.op == "call_function" and node.target in (getattr, operator.getitem)):
            sizes.add(node)
            continue
        inputs = [n for n in node.all_input_nodes if n not in sizes]
        if inputs != [previous]:
            raise refuse(f"is not a chain of layers (node {node.name} takes {[n.name for n in inputs]}: a skip "
                         "connection or a branch)")
        args = node.args[1:]
        if node.op == "call_module":
            shape = _walk(module.get_submodule(node.target), shape, ops)
        elif (node.op == "call_function" and node.target in (torch.relu, torch.nn.functional.relu)) or (
                node.op == "call_method" and node.target == "relu"):
            ops.append("relu")
        elif node.target in (torch.flatten, "flatten") and tuple(args) in ((1,), ()) and not node.kwargs:
            shape = (int(np.prod(shape)),)
        elif node.op == "call_method" and node.target in ("view", "reshape") and len(args) == 2 and (
                (args[0] in sizes or args[0] == -1) and args[1] == -1 or args[0] == -1 and args[1] == np.prod(shape)):
            shape = (int(np.prod(shape)),)
        else:
            what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", node.target)
            raise refuse(f"calls {what}")
        previous = node
    return shape


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _max_pool(shape: tuple[int, ...], kernel: Any, stride: Any, padding: Any, dilation: Any, unusual: bool,
              ops: list[Any]) -> tuple[int, ...]:
    """Append MaxPool2d as affine maps and ReLUs: each window's maximum by a tournament of
    ``max(a, b) = relu(a - b) + relu(b) - relu(-b)`` (exact; ceil(log2(window)) ReLU layers), so
    IBP and CROWN bound it with their ReLU relaxations. Padding (minus infinity) joins no window."""
    import torch.nn.functional as F  # noqa: N812

    if unusual or len(shape) != 3:
        raise ModelError(f"bound propagation supports MaxPool2d on C x H x W feature maps without ceil_mode or "
                         f"return_indices; got one on samples of shape {shape}. Certify this model with randomized "
                         "smoothing (stalwart.certify.RandomizedSmoothing).")
    k, st, pad, dil = _pair(kernel), _pair(stride if stride is not None else kernel), _pair(padding), _pair(dilation)
    c, h, w = shape
    n_in = c * h * w
    index = F.pad(torch.arange(n_in, dtype=torch.float64).reshape(c, 1, h, w), (pad[1], pad[1], pad[0], pad[0]),
                  value=-1.0)
    cols = F.unfold(index, k, dilation=dil, stride=st)  # c x window x positions
    oh = (h + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) // st[0] + 1
    ow = (w + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) // st[1] + 1
    windows = [[int(v) for v in col if v >= 0] for col in cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).tolist()]
    # each output's candidates, as positions in the current vector (the input first)
    cands, width = windows, n_in
    while any(len(cs) > 1 for cs in cands):
        up_rows: list[tuple[int, int, float]] = []  # (unit, position, coefficient) of the map before the ReLU
        down_rows: list[tuple[int, int, float]] = []  # (new candidate, unit, coefficient) after it
        new_cands, unit, cand = [], 0, 0
        for cs in cands:
            mine = []
            for i in range(0, len(cs) - 1, 2):  # max(a, b) = relu(a - b) + relu(b) - relu(-b)
                a, b = cs[i], cs[i + 1]
                up_rows += [(unit, a, 1.0), (unit, b, -1.0), (unit + 1, b, 1.0), (unit + 2, b, -1.0)]
                down_rows += [(cand, unit, 1.0), (cand, unit + 1, 1.0), (cand, unit + 2, -1.0)]
                unit, cand = unit + 3, cand + 1
                mine.append(cand - 1)
            if len(cs) % 2:  # the odd one passes: relu(a) - relu(-a)
                a = cs[-1]
                up_rows += [(unit, a, 1.0), (unit + 1, a, -1.0)]
                down_rows += [(cand, unit, 1.0), (cand, unit + 1, -1.0)]
                unit, cand = unit + 2, cand + 1
                mine.append(cand - 1)
            new_cands.append(mine)
        if unit * max(width, cand) > MAX_DENSE:
            raise ModelError(f"MaxPool2d on {shape} needs {unit} x {width} matrices: too large for dense bound "
                             "propagation here; certify this model with randomized smoothing "
                             "(stalwart.certify.RandomizedSmoothing) instead.")
        ops += [(_sparse_dense(up_rows, unit, width), torch.zeros(unit, dtype=torch.float64)), "relu",
                (_sparse_dense(down_rows, cand, unit), torch.zeros(cand, dtype=torch.float64))]
        cands, width = new_cands, cand
    pick = [(o, cs[0], 1.0) for o, cs in enumerate(cands)]
    ops.append((_sparse_dense(pick, len(cands), width), torch.zeros(len(cands), dtype=torch.float64)))
    return (c, oh, ow)


def _sparse_dense(entries: list[tuple[int, int, float]], rows: int, cols: int) -> torch.Tensor:
    out = torch.zeros(rows, cols, dtype=torch.float64)
    if entries:
        r, q, v = zip(*entries, strict=True)
        out.index_put_((torch.tensor(r), torch.tensor(q)), torch.tensor(v, dtype=torch.float64), accumulate=True)
    return out


def _walk_script(module: Any, shape: tuple[int, ...], ops: list[Any]) -> tuple[int, ...]:
    """A TorchScript module (``torch.jit.script``/``trace`` of the layers :func:`_walk` takes),
    read layer by layer from its parameters and attributes."""
    import torch.nn.functional as F  # noqa: N812

    kind = getattr(module, "original_name", type(module).__name__)
    try:
        if kind == "Sequential":
            for _, child in module.named_children():
                shape = _walk(child, shape, ops)
            return shape
        if kind in ("Identity", "Dropout"):
            return shape
        if kind == "ReLU":
            ops.append("relu")
            return shape
        if kind in ("Softmax", "LogSoftmax", "Sigmoid"):
            ops.append("final")
            return shape
        if kind == "Flatten":
            return (int(np.prod(shape)),)
        if kind == "MaxPool2d":
            return _max_pool(shape, module.kernel_size, module.stride, module.padding, module.dilation,
                             module.ceil_mode or module.return_indices, ops)
        if kind == "Linear":
            if len(shape) != 1:
                raise ModelError(f"a Linear layer is applied to samples of shape {shape}; bound propagation needs "
                                 "flat inputs to Linear layers (add nn.Flatten() before it).")
            w = module.weight.detach().double()
            b = module.bias.detach().double() if module.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
            ops.append((w, b))
            return (int(w.shape[0]),)
        if kind == "Conv2d":
            w = module.weight.detach().double()
            b = module.bias.detach().double() if module.bias is not None else None
            stride, padding, dilation, groups = module.stride, module.padding, module.dilation, module.groups

            def fn(t: torch.Tensor) -> torch.Tensor:
                return F.conv2d(t, w, b, stride, padding, dilation, groups)
        elif kind == "AvgPool2d":
            k, stride, pad = module.kernel_size, module.stride, module.padding

            def fn(t: torch.Tensor) -> torch.Tensor:
                return F.avg_pool2d(t, k, stride, pad)
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            mean, var = module.running_mean.double(), module.running_var.double()
            gamma, beta = module.weight.detach().double(), module.bias.detach().double()
            eps = float(module.eps)

            def fn(t: torch.Tensor) -> torch.Tensor:
                return F.batch_norm(t, mean, var, gamma, beta, False, 0.0, eps)
        else:
            raise ModelError(f"bound propagation does not support the TorchScript layer {kind}; supported: Linear, "
                             "Conv2d, AvgPool2d, MaxPool2d, BatchNorm (eval), Flatten, ReLU, Identity, Dropout. Certify this "
                             "model with randomized smoothing (stalwart.certify.RandomizedSmoothing).")
    except (AttributeError, RuntimeError) as exc:
        raise ModelError(f"the TorchScript layer {kind} does not expose what bound propagation reads ({exc}); save "
                         "the eager module (torch.save of the state dict) or certify with randomized smoothing "
                         "(stalwart.certify.RandomizedSmoothing).") from None
    w, b, out_shape = _dense(fn, shape, kind)
    if kind == "Conv2d" and not isinstance(padding, str):
        ops.append(_ConvLayer(w, b, module.weight.detach().double(), shape, out_shape, stride, padding, dilation, groups))
    else:
        ops.append((w, b))
    return out_shape


def _as64(module: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    """``module(t)`` in float64 without changing the module (parameters cast on the fly)."""
    from torch.func import functional_call

    params = {k: v.double() for k, v in module.named_parameters()}
    buffers = {k: (v.double() if v.is_floating_point() else v) for k, v in module.named_buffers()}
    return functional_call(module, {**params, **buffers}, (t,))


class _ConvLayer(tuple):
    """A network layer ``(W, b)`` that is one ``Conv2d``: the dense ``W`` for the forward side, and
    the kernel, so that the backward pass applies ``W``'s transpose as the convolution's adjoint
    (the gradient of conv2d with respect to its input) instead of a dense product."""

    def __new__(cls, w: torch.Tensor, b: torch.Tensor, *args: Any) -> _ConvLayer:
        return super().__new__(cls, (w, b))

    def __init__(self, w: torch.Tensor, b: torch.Tensor, kernel: torch.Tensor, in_shape: tuple[int, ...],
                 out_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any, groups: int) -> None:
        self.kernel, self.in_shape, self.out_shape = kernel, tuple(in_shape), tuple(out_shape)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)

    def transpose_apply(self, g: torch.Tensor) -> torch.Tensor:
        """``g @ W`` for g (..., n_out), by the convolution's adjoint."""
        lead = g.shape[:-1]
        flat = g.reshape(-1, *self.out_shape)
        out = torch.nn.grad.conv2d_input((flat.shape[0], *self.in_shape), self.kernel, flat, self.stride,
                                         self.padding, self.dilation, self.groups)
        return out.reshape(*lead, -1)


def _merge(ops: list[Any], n_in: int) -> Layers:
    """Consecutive affine maps composed, ReLUs between them (an identity map where a ReLU comes
    first or last; a ReLU right after a ReLU changes nothing)."""
    layers: Layers = []
    current: tuple[torch.Tensor, torch.Tensor] | None = None
    width = n_in

    def identity() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.eye(width, dtype=torch.float64), torch.zeros(width, dtype=torch.float64)

    for op in ops:
        if op == "relu":
            if current is None and layers:
                continue
            layers.append(current if current is not None else identity())
            current = None
            continue
        w, b = op
        current = op if current is None else (w @ current[0], w @ current[1] + b)  # a lone conv keeps its kernel
        width = int(w.shape[0])
    layers.append(current if current is not None else identity())
    return layers


# -- the bounds -------------------------------------------------------------------------------------
class _InputSet:
    """The ball ``{x : ||(x - x0) / s||_p <= eps} ∩ [lo, hi]`` (s = 0 fixes a feature)."""

    def __init__(self, x0: torch.Tensor, eps: torch.Tensor, norm: str, scale: torch.Tensor,
                 lo: torch.Tensor | None, hi: torch.Tensor | None) -> None:
        self.x0, self.eps, self.norm, self.scale = x0, eps.reshape(-1, 1), norm, scale
        if norm == "linf":
            reach = self.eps * scale
            self.xl, self.xu = x0 - reach, x0 + reach
            if lo is not None:
                self.xl, self.xu = torch.maximum(self.xl, lo), torch.minimum(self.xu, hi)

    def lower(self, a: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
        """min over the set of ``a @ x + const`` (a: B x S x n)."""
        if self.norm == "linf":
            return const + (a.clamp(min=0) @ self.xl.unsqueeze(-1)).squeeze(-1) \
                + (a.clamp(max=0) @ self.xu.unsqueeze(-1)).squeeze(-1)
        centre = (a @ self.x0.unsqueeze(-1)).squeeze(-1)
        return const + centre - self.eps * (a * self.scale).norm(dim=-1)

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A box holding the set (for IBP)."""
        if self.norm == "linf":
            return self.xl, self.xu
        reach = self.eps * self.scale
        return self.x0 - reach, self.x0 + reach


def _relaxation(lo: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower slope, upper slope, upper intercept) of ReLU between ``lo`` and ``up``."""
    active, inactive = lo >= 0, up <= 0
    unstable = ~(active | inactive)
    width = (up - lo).clamp_min(1e-30)
    up_slope = torch.where(active, torch.ones_like(lo), torch.where(unstable, up / width, torch.zeros_like(lo)))
    up_int = torch.where(unstable, -up * lo / width, torch.zeros_like(lo))
    low_slope = torch.where(active | (unstable & (up > -lo)), torch.ones_like(lo), torch.zeros_like(lo))
    return low_slope, up_slope, up_int


class _Relaxed:
    """One ReLU layer's relaxation for a batch, in the form the backward pass uses: the mask of
    active neurons (slope 1 whatever the sign of the coefficient) and, gathered per sample and
    padded to the batch's largest count, the unstable neurons' indices, slopes and upper
    intercepts (the padding takes stable neurons, whose own slopes are exact)."""

    def __init__(self, lo: torch.Tensor, up: torch.Tensor) -> None:
        self.active = (lo >= 0).to(lo.dtype)
        unstable = (lo < 0) & (up > 0)
        u = int(unstable.sum(dim=1).max()) if unstable.numel() else 0
        self.index = None
        if u:
            # each sample's unstable neurons first (a stable sort keeps their order), u of them
            self.index = torch.sort(unstable.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :u]
            self.low, self.up, self.up_int = _relaxation(lo.gather(1, self.index), up.gather(1, self.index))

    def apply(self, g: torch.Tensor, const: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients ``g`` (B x S x n) on the ReLU's output turned into a lower bound on its
        input: (coefficients, constant)."""
        out = g * self.active.unsqueeze(1)
        if self.index is not None:
            at = self.index.unsqueeze(1).expand(-1, g.shape[1], -1)
            gu = g.gather(2, at)  # B x S x u
            const = const + (gu.clamp(max=0) @ self.up_int.unsqueeze(-1)).squeeze(-1)
            out.scatter_(2, at, gu * torch.where(gu > 0, self.low.unsqueeze(1), self.up.unsqueeze(1)))
        return out, const

    def apply_product(self, g: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        """``apply`` followed by the product with the layer before, ``[W | b]`` (n x (m + 1)), as
        ``g @ (active * [W | b])`` plus the unstable columns' share; the last column of the result
        holds the constant's increment (the upper intercepts included)."""
        out = g @ (self.active.unsqueeze(-1) * augmented)
        if self.index is not None:
            at = self.index.unsqueeze(1).expand(-1, g.shape[1], -1)
            gu = g.gather(2, at)  # B x S x u; padded (stable) columns get slope - active = 0
            slope = torch.where(gu > 0, self.low.unsqueeze(1), self.up.unsqueeze(1))
            slope = slope - self.active.gather(1, self.index).unsqueeze(1)
            out = out + (gu * slope) @ augmented[self.index]
            out[..., -1] += (gu.clamp(max=0) @ self.up_int.unsqueeze(-1)).squeeze(-1)
        return out


def _backward(g: torch.Tensor, const: torch.Tensor, layers: Layers, augmented: list[torch.Tensor], k: int,
              relaxed: list[_Relaxed], box: _InputSet) -> torch.Tensor:
    """Lower bound over the input set of ``g @ relu(z_(k-1)) + const`` (g: B x S x n_(k-1)), by
    CROWN's backward pass through layers k-1, ..., 0. ``augmented[i]`` is ``[W_i | b_i]``, so one
    product carries the coefficients and the constant."""
    for i in range(k - 1, -1, -1):
        layer = layers[i]
        if not isinstance(layer, _ConvLayer) and g.shape[1] > augmented[i].shape[1]:
            # more rows than the layer has inputs: the active mask goes into each sample's copy of
            # [W | b] rather than into every row
            both = relaxed[i].apply_product(g, augmented[i])
            g, const = both[..., :-1], const + both[..., -1]
            continue
        g, const = relaxed[i].apply(g, const)
        if isinstance(layer, _ConvLayer):
            const = const + g @ layer[1]
            g = layer.transpose_apply(g)
        else:
            both = g @ augmented[i]
            g, const = both[..., :-1], const + both[..., -1]
    return box.lower(g, const)


def _crown(layers: Layers, spec: torch.Tensor, box: _InputSet) -> torch.Tensor:
    """CROWN's margin bound (``spec``: B x S x classes). Pre-activation bounds of each layer start
    from the interval through it; CROWN then tightens, in each sample, only the neurons the
    interval leaves unstable there (for the others the ReLU relaxation is exact whatever their
    bounds). Each sample's unstable neurons are gathered into its own rows, so the work follows
    the per-sample count, not the batch's union, and no sample's bounds depend on its batch."""
    augmented = [torch.cat([w, b.unsqueeze(1)], dim=1) for w, b in layers]
    w0, b0 = layers[0]
    bounds = (box.lower(w0, b0), -box.lower(-w0, -b0))  # the first layer's bounds are exact
    relaxed = [_Relaxed(*bounds)]
    for k in range(1, len(layers) - 1):
        lo, up = _interval_step(layers[k], bounds)
        unstable = (lo < 0) & (up > 0)
        counts = unstable.sum(dim=1)
        m = int(counts.max()) if counts.numel() else 0
        if m:
            order = torch.sort(unstable.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :m]
            signed = torch.cat([augmented[k], -augmented[k]])  # +row and -row: lower and upper bounds
            rows = signed[torch.cat([order, order + lo.shape[1]], dim=1)]  # B x 2m x (n_(k-1) + 1)
            both = _backward(rows[..., :-1], rows[..., -1], layers, augmented, k, relaxed, box)
            valid = torch.arange(m) < counts.unsqueeze(1)
            lo_m, up_m = lo.gather(1, order), up.gather(1, order)
            lo = lo.scatter(1, order, torch.where(valid, torch.maximum(lo_m, both[:, :m]), lo_m))
            up = up.scatter(1, order, torch.where(valid, torch.minimum(up_m, -both[:, m:]), up_m))
        bounds = (lo, up)
        relaxed.append(_Relaxed(lo, up))
    top = spec @ augmented[-1]
    return _backward(top[..., :-1], top[..., -1], layers, augmented, len(layers) - 1, relaxed, box)


def _interval_step(layer: tuple[torch.Tensor, torch.Tensor], prev: tuple[torch.Tensor, torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    w, b = layer
    lo, up = prev[0].clamp(min=0), prev[1].clamp(min=0)
    mid, rad = (up + lo) / 2, (up - lo) / 2
    centre, reach = mid @ w.T + b, rad @ w.abs().T
    return centre - reach, centre + reach


def _ibp(layers: Layers, spec: torch.Tensor, box: _InputSet) -> torch.Tensor:
    w1, b1 = layers[0]
    if len(layers) == 1:  # linear: the margins' exact bound
        return box.lower(spec @ w1, spec @ b1)
    bounds = (box.lower(w1, b1), -box.lower(-w1, -b1))  # the first layer's bounds are exact
    for layer in layers[1:-1]:
        bounds = _interval_step(layer, bounds)
    w, b = layers[-1]
    a, const = spec @ w, spec @ b  # the last layer folded into the margins
    lo, up = bounds[0].clamp(min=0), bounds[1].clamp(min=0)
    return const + (a.clamp(min=0) @ lo.unsqueeze(-1)).squeeze(-1) + (a.clamp(max=0) @ up.unsqueeze(-1)).squeeze(-1)


def margin_bounds(layers: Layers, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, norm: str,
                  scale: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor | None,
                  method: str = "crown") -> torch.Tensor:
    """Lower bounds of ``z_y - z_j`` (B x (classes - 1)) over each sample's ball."""
    n_classes = layers[-1][0].shape[0]
    eye = torch.eye(n_classes, dtype=torch.float64)
    rows = [torch.cat([eye[:j], eye[j + 1:]]) for j in range(n_classes)]
    others = torch.stack(rows)[labels]  # B x (K-1) x K
    spec = eye[labels].unsqueeze(1) - others
    box = _InputSet(x, eps, norm, scale, lo, hi)
    if method == "ibp":
        return _ibp(layers, spec, box)
    # both are sound lower bounds: CROWN keeps the better of the two, so it is never looser than IBP
    return torch.maximum(_crown(layers, spec, box), _ibp(layers, spec, box))


# -- the certifiers ---------------------------------------------------------------------------------
class _BoundCertifier(Certifier):
    method: ClassVar[str] = ""
    requires: ClassVar[str] = "torch"

    def __init__(self, norm: str = "linf", *, bounds: Any = None, mutable: Any = None, unit: str = "raw",
                 max_eps: float = 1.0, steps: int = 20, batch_size: int = 32) -> None:
        check_choice(self, "norm", norm, ("linf", "l2"))
        check_choice(self, "unit", unit, ("raw", "range"))
        check_positive(self, "max_eps", max_eps)
        if not math.isfinite(float(max_eps)):
            raise param_error(self, "max_eps", "a finite number > 0", max_eps)
        check_positive(self, "steps", steps, integer=True)
        check_positive(self, "batch_size", batch_size, integer=True)
        if bounds is not None:
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                raise param_error(self, "bounds", "None or a pair (lower, upper)", bounds)
            lo, hi = (np.asarray(v, dtype=np.float64) for v in bounds)
            if np.isnan(lo).any() or np.isnan(hi).any() or np.any(lo > hi):
                raise param_error(self, "bounds", "a pair with lower <= upper and no NaN", bounds)
        if unit == "range" and (bounds is None or not np.all(np.isfinite(np.asarray(bounds, dtype=float)))):
            raise ConfigError(f"{type(self).__name__}(unit='range') measures eps as a fraction of each feature's "
                              "range: pass finite bounds=(lower, upper).")
        if mutable is not None and np.asarray(mutable).dtype != bool:
            raise param_error(self, "mutable", "a boolean mask (False: the feature may not change)", mutable)
        self.norm = norm  # type: ignore[misc] - per instance for these certifiers
        self.bounds = bounds
        self.mutable = mutable
        self.unit = unit
        self.max_eps = float(max_eps)
        self.steps = int(steps)
        self.batch_size = int(batch_size)

    @classmethod
    def from_threat(cls, threat: Any, **params: Any) -> _BoundCertifier:
        """The certifier for an attack's :class:`~stalwart.attacks.ThreatModel` (norm, bounds,
        mutable mask and eps unit); ``max_eps`` defaults to twice the threat's eps."""
        if threat.norm not in ("linf", "l2"):
            raise ConfigError(f"bound propagation certifies linf and l2 balls; the threat model's norm is "
                              f"{threat.norm!r}. Use ThreatModel(norm='linf' or 'l2').")
        params.setdefault("max_eps", max(2.0 * float(threat.eps), 1e-6))
        return cls(threat.norm, bounds=threat.bounds, mutable=threat.mutable, unit=threat.unit, **params)

    def params(self) -> dict[str, Any]:
        out = super().params()
        for key in ("bounds", "mutable"):
            if out[key] is not None:
                out[key] = np.asarray(out[key], dtype=object if key == "bounds" else bool).tolist()
        return out

    # -- entry points ------------------------------------------------------------------------------
    def verified(self, model: Any, x: Any, y: Any, eps: float) -> np.ndarray:
        """Whether each sample's margin to every other class is provably positive over the
        whole ball of radius ``eps`` (False where the model already errs on ``x``)."""
        ok = isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool) \
            and math.isfinite(float(eps)) and eps >= 0
        if not ok:
            raise param_error(f"{type(self).__name__}.verified", "eps", "a finite number >= 0", eps)
        run = self.prepare(model, x, y)
        return self.verify(run, np.full(len(run["x"]), float(eps)))

    def certify(self, model: Any, x: Any, y: Any = None) -> CertificationResult:
        """The certified radius of each sample (bisection up to ``max_eps``, ``steps`` halvings);
        0 where the prediction at ``x`` is wrong (or, without ``y``, is the one certified)."""
        start = time.perf_counter()
        run = self.prepare(model, x, y)
        n = len(run["x"])
        good = self.verify(run, np.zeros(n))
        low, high = np.zeros(n), np.full(n, self.max_eps)
        top = self.verify(run, high) & good
        low[top] = self.max_eps
        todo = good & ~top
        for _ in range(self.steps):
            mid = (low + high) / 2
            ok = self.verify(run, mid) & todo
            low = np.where(ok, mid, low)
            high = np.where(todo & ~ok, mid, high)
        classes = np.asarray(run["model"].classes)
        pred = classes[run["labels"]]
        return CertificationResult(
            certifier=self.name, norm=self.norm, prediction=pred, abstained=~good, radius=np.where(good, low, 0.0),
            y=run["y"], details={"at_max_eps": top}, params=self.params(), queries=0,
            time_s=time.perf_counter() - start, largest_batch=min(self.batch_size, n))

    # -- the problem, prepared once, verified at many eps --------------------------------------------
    def prepare(self, model: Any, x: Any, y: Any) -> dict[str, Any]:
        """The checked problem (network layers, inputs, labels, input set) that :meth:`verify`
        takes, so that several eps reuse one conversion of the network."""
        from stalwart.models import wrap

        wrapped = wrap(model)
        if wrapped.task != "classification":
            raise ModelError(f"bound propagation certifies classifiers; {wrapped.name} is a {wrapped.task} model. "
                             "Pass a classifier.")
        xs = check_array(x, "x", dtype=np.float64)
        if xs.ndim < 2:
            raise InputError(f"x must have one row per sample (2-D or more); got shape {xs.shape}. "
                             "Use x.reshape(1, -1) for a single sample.")
        sample = tuple(xs.shape[1:])
        layers = network_layers(wrapped, sample)
        classes = wrapped.known_classes(xs.astype(np.float32))
        n_classes = layers[-1][0].shape[0]
        if classes is None or len(classes) != n_classes:
            raise ModelError(f"the network returns {n_classes} logits but the model has classes {classes}; "
                             "pass a model whose classes match its outputs.")
        flat = torch.as_tensor(xs.reshape(len(xs), -1))
        if y is None:
            ys = None
            with torch.no_grad():
                labels = _forward(layers, flat).argmax(dim=1).numpy()
        else:
            ys = check_labels(y, classes, "y")
            check_lengths("x", xs, "y", ys)
            labels = labels_to_index(ys, np.asarray(classes))
        lo = hi = None
        scale = np.ones(sample)
        if self.bounds is not None:
            lo, hi = (np.broadcast_to(np.asarray(b, dtype=np.float64), sample) for b in self.bounds)
            if self.unit == "range":
                scale = hi - lo
            if np.any(xs < lo - 1e-6) or np.any(xs > hi + 1e-6):
                raise InputError("x lies outside the certifier's bounds; pass bounds=(lower, upper) that hold the "
                                 "data (its real range), or rescale x.")
        if self.mutable is not None:
            try:
                scale = scale * np.broadcast_to(np.asarray(self.mutable, dtype=bool), sample)
            except ValueError:
                raise ConfigError(f"mutable has shape {np.shape(self.mutable)}, which does not fit one sample of "
                                  f"shape {sample}; give one value per feature.") from None

        def flat_t(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.as_tensor(np.array(a, dtype=np.float64).reshape(-1))
        return {"model": wrapped, "layers": layers, "x": flat, "labels": np.asarray(labels), "y": ys,
                "scale": flat_t(scale), "lo": flat_t(lo), "hi": flat_t(hi)}

    def verify(self, run: dict[str, Any], eps: np.ndarray) -> np.ndarray:
        """Whether each sample of a problem from :meth:`prepare` is certified at its own eps (an array)."""
        out = np.zeros(len(run["x"]), dtype=bool)
        labels = torch.as_tensor(run["labels"])
        eps_t = torch.as_tensor(eps, dtype=torch.float64)
        with torch.no_grad():
            for s in range(0, len(run["x"]), self.batch_size):
                sl = slice(s, s + self.batch_size)
                low = margin_bounds(run["layers"], run["x"][sl], labels[sl], eps_t[sl], self.norm, run["scale"],
                                    run["lo"], run["hi"], self.method)
                out[sl] = (low > TOLERANCE).all(dim=1).numpy()
        return out


def _forward(layers: Layers, x: torch.Tensor) -> torch.Tensor:
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = x.clamp(min=0)
    return x


@register
class CROWN(_BoundCertifier):
    """Certified radii by CROWN's backward linear bounds (Zhang et al., 2018); see the module doc.

    Parameters
    ----------
    norm : {"linf", "l2"}
    bounds : valid input range (lower, upper), scalars or per-feature; the L-infinity ball is
        intersected with it (the L2 ball is not: still sound, a little looser)
    mutable : bool mask; features marked False never change
    unit : "raw" (eps in the data's units) or "range" (a fraction of each feature's range)
    max_eps, steps : the radius is searched in [0, max_eps] with ``steps`` bisections
    batch_size : samples bounded at once

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart.certify import CROWN
    >>> net = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])); _ = net.bias.zero_()
    >>> res = CROWN("l2").certify(net, np.array([[0.5, 0.2]]), [0])
    >>> round(float(res.radius[0]), 4)  # exact: the boundary x0 = 0 is 0.5 away
    0.5
    """

    name: ClassVar[str] = "crown"
    method: ClassVar[str] = "crown"


@register
class IBP(_BoundCertifier):
    """Certified radii by interval bound propagation (Gowal et al., 2018), the last layer folded
    into the margins; cheaper and looser than :class:`CROWN` (same parameters)."""

    name: ClassVar[str] = "ibp"
    method: ClassVar[str] = "ibp"
