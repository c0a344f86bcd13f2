"""Copies of torch networks that can be trained, and fresh weights for a network's architecture:
for eager modules and for TorchScript ones (what ``stalwart harden`` loads), which need care of their own."""

from __future__ import annotations

import copy
import io
import math
import warnings

import torch

from stalwart.errors import ModelError

__all__ = ["trainable_copy", "reinitialise"]

#: layers (by class name; a TorchScript layer keeps it as ``original_name``) with PyTorch's default
#: initialisation for a weight of shape out x in x kernel...: Kaiming-uniform with a = sqrt(5), bias
#: uniform in +-1 / sqrt(fan_in)
_FAN_IN_LAYERS = frozenset({"Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                            "ConvTranspose3d"})
#: normalisation layers: weight 1, bias 0, running statistics reset
_NORM_LAYERS = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
                          "InstanceNorm2d", "InstanceNorm3d"})


def _script_copy(net: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript in, TorchScript out
        torch.jit.save(net, buf)
        buf.seek(0)
        return torch.jit.load(buf)


def _outer_scripts(net: torch.nn.Module) -> list[torch.jit.ScriptModule]:
    """The TorchScript modules inside an eager ``net`` that no other TorchScript module contains."""
    found: list[torch.jit.ScriptModule] = []
    for child in net.children():
        if isinstance(child, torch.jit.ScriptModule):
            found.append(child)
        else:
            found.extend(_outer_scripts(child))
    return found


def trainable_copy(net: torch.nn.Module) -> torch.nn.Module:
    """An independent copy of ``net`` whose parameters an optimizer accepts. TorchScript modules,
    alone or inside an eager wrapper, go through save and load: a deep copy of a loaded one has
    parameters that are not leaves, which no optimizer takes (torch 2.x)."""
    if isinstance(net, torch.jit.ScriptModule):
        return _script_copy(net)
    memo = {id(s): _script_copy(s) for s in _outer_scripts(net)}
    return copy.deepcopy(net, memo)


def _kind(layer: torch.nn.Module) -> str:
    return str(getattr(layer, "original_name", None) or type(layer).__name__)


@torch.no_grad()
def reinitialise(net: torch.nn.Module, *, seed: int | None = None) -> torch.nn.Module:
    """Give ``net`` fresh weights, in place, as a newly built network of its architecture would have
    them: ``reset_parameters`` where an eager layer has one, PyTorch's default initialisation by layer
    kind for TorchScript layers (which do not keep the method). A layer with weights of another kind
    is refused by name, never left trained. ``seed`` seeds torch's global generator first."""
    if seed is not None:
        torch.manual_seed(seed)
    for name, layer in net.named_modules():
        own = dict(layer.named_parameters(recurse=False))
        scripted = isinstance(layer, torch.jit.ScriptModule)
        if not scripted and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
            continue
        kind = _kind(layer)
        if kind in _NORM_LAYERS:
            for key, value in layer.named_buffers(recurse=False):
                if key == "running_mean" or key == "num_batches_tracked":
                    value.zero_()
                elif key == "running_var":
                    value.fill_(1.0)
            if "weight" in own:
                own["weight"].fill_(1.0)
            if "bias" in own:
                own["bias"].zero_()
        elif kind in _FAN_IN_LAYERS and "weight" in own:
            weight = own["weight"]
            torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            if "bias" in own and fan_in > 0:
                torch.nn.init.uniform_(own["bias"], -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif own:
            where = f"layer {name!r}" if name else "the network itself"
            raise ModelError(f"cannot give fresh weights to {where} ({kind}): it holds parameters "
                             f"{sorted(own)} and has no reset_parameters. Train from the torch module in Python and "
                             "give that layer a reset_parameters method, or use a method that starts from the "
                             "trained weights (adversarial training).")
    return net
