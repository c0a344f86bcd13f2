"""The activations of one layer of a TorchScript module, which takes no forward hooks.

A TorchScript module (``torch.jit.script`` or ``torch.jit.trace``, saved with ``torch.jit.save``
and loaded by :func:`stalwart.models.load_model`) runs its compiled graph, and refuses Python
forward hooks on its submodules. Its forward graph, though, names every submodule call -- a
``prim::CallMethod[name="forward"]`` on a chain of ``prim::GetAttr`` from ``self`` -- in scripted
and traced modules alike. :func:`cut` copies that graph, makes the value at the wanted call (its
output, or its input for penultimate features) the graph's output, and compiles the copy into a
function of ``(module, x)``; the module itself is not changed. A layer nested in a child
(``head.1`` when ``forward`` calls ``self.head``) is reached in steps: the parent's graph cut at
the child's input, then the child's graph cut at the layer.

The cut needs one value: a submodule called twice (which call?), called only inside an ``if`` or a
loop, or called with several inputs on the way down has none, and raises
:class:`~stalwart.errors.ModelError` that says so and what to do instead.

This reads TorchScript's graph through ``torch._C`` (``Graph.copy``, ``registerOutput``,
``_create_function_from_graph``): stable for years, but not public API. A torch without them
gives the same ModelError, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stalwart.errors import ModelError

__all__ = ["is_script", "module_label", "cut"]

_ADVICE = ("wrap the eager torch.nn.Module instead of its TorchScript file (stalwart.wrap(module)), where "
           "forward hooks reach every layer, or save a model whose forward returns the features you want")


def is_script(net: Any) -> bool:
    """Whether ``net`` is a TorchScript module (scripted, traced or loaded)."""
    import torch

    return isinstance(net, torch.jit.ScriptModule)


def module_label(net: Any) -> str:
    """The class name a user wrote (``original_name`` of a TorchScript module)."""
    return getattr(net, "original_name", None) or type(net).__name__


def _module_path(value: Any, self_id: int) -> str | None:
    """Dotted path of the submodule a graph value holds (a GetAttr chain from ``self``), else None."""
    names: list[str] = []
    while value.unique() != self_id:
        node = value.node()
        if node.kind() != "prim::GetAttr":
            return None  # a module from a list, a function argument, ...: not a fixed path
        names.append(node.s("name"))
        value = node.inputsAt(0)
    return ".".join(reversed(names))


def _calls(graph: Any) -> dict[str, list[tuple[Any, bool]]]:
    """Every submodule call in ``graph``: ``{path: [(node, inside an if/loop), ...]}``."""
    self_id = next(iter(graph.inputs())).unique()
    found: dict[str, list[tuple[Any, bool]]] = {}

    def visit(nodes: Any, nested: bool) -> None:
        for node in nodes:
            if node.kind() == "prim::CallMethod":
                path = _module_path(node.inputsAt(0), self_id)
                if path:
                    found.setdefault(path, []).append((node, nested))
            for block in node.blocks():
                visit(block.nodes(), True)

    visit(graph.nodes(), False)
    return found


def _returning(graph: Any, value: Any, name: str) -> Any:
    """``graph`` (a copy) changed to return ``value``, compiled to a function of (module, x)."""
    import torch

    for _ in range(len(list(graph.outputs()))):
        graph.eraseOutput(0)
    graph.registerOutput(value)
    torch._C._jit_pass_dce(graph)
    return torch._C._create_function_from_graph(name, graph)


def cut(net: Any, path: str, take_input: bool, owner: str) -> Callable[[Any], Any]:
    """A function ``x -> activations`` at submodule ``path`` of TorchScript module ``net``.

    ``take_input`` gives the submodule's input (the penultimate activations when it is the last
    linear layer) instead of its output. Raises ModelError where the graph has no single value
    for it.
    """
    import torch

    if path == "":
        return net
    label = module_label(net)
    steps: list[tuple[Any, Any]] = []
    module, rest, done = net, path.split("."), []
    try:
        while True:
            graph = module.forward.graph.copy()
            calls = _calls(graph)
            depth = next((i for i in range(len(rest), 0, -1) if ".".join(rest[:i]) in calls), 0)
            where = ".".join(done) or label
            if depth == 0:
                raise ModelError(
                    f"{owner}(layer={path!r}): the TorchScript forward of {where} never calls "
                    f"{'.'.join(rest)!r} as a module (it may use its weights directly or call it from a list), "
                    f"so its activations cannot be taken there; name a layer that forward calls, or {_ADVICE}.")
            key = ".".join(rest[:depth])
            full = ".".join(done + rest[:depth])
            found = calls[key]
            if len(found) > 1:
                raise ModelError(
                    f"{owner}(layer={path!r}): the TorchScript forward of {where} calls {full!r} "
                    f"{len(found)} times, so it has no single output to take; name a layer called once, or "
                    f"{_ADVICE}.")
            node, nested = found[0]
            if nested:
                raise ModelError(
                    f"{owner}(layer={path!r}): the TorchScript forward of {where} calls {full!r} only inside "
                    f"an if or a loop, so its output is not always there to take; name a layer outside "
                    f"control flow, or {_ADVICE}.")
            method = node.s("name")
            last = depth == len(rest)
            inputs = node.inputsSize() - 1
            if method != "forward" or ((take_input or not last) and inputs != 1):
                what = (f"{full}.{method}()" if method != "forward" else
                        f"{full} with {inputs} inputs")
                raise ModelError(
                    f"{owner}(layer={path!r}): the TorchScript forward of {where} calls {what}, so there is "
                    f"no single input to follow; name another layer, or {_ADVICE}.")
            value = node.inputsAt(1) if (take_input or not last) else node.output()
            if not isinstance(value.type(), torch._C.TensorType):
                raise ModelError(
                    f"{owner}(layer={path!r}): {full!r} {'takes' if take_input or not last else 'returns'} "
                    f"{value.type()}, not a tensor; name a layer whose output is one tensor.")
            steps.append((module, _returning(graph, value, f"stalwart_features_{len(steps)}")))
            if last:
                break
            for part in rest[:depth]:
                module = getattr(module, part)
            done, rest = done + rest[:depth], rest[depth:]
    except ModelError:
        raise
    except (AttributeError, RuntimeError, TypeError) as exc:  # torch internals moved, or a graph we cannot edit
        raise ModelError(f"{owner}(layer={path!r}): stalwart could not cut the TorchScript graph of {label} at that "
                         f"layer ({type(exc).__name__}: {exc}); {_ADVICE}.") from None

    def features(x: Any) -> Any:
        for mod, fn in steps:
            x = fn(mod._c, x)
        return x

    return features
