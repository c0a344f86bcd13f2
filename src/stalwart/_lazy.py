"""Package ``__init__`` files that import their members on first use.

A package lists its public names and the module each comes from; nothing is imported until a
name is used. ``import stalwart.checks`` (or ``stalwart.shift``) for tabular drift therefore
does not import torch, which only the image and attack modules need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_module"]


def lazy_module(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in ``exports``
    (name -> module, relative like ``".base"`` or absolute); a loaded name is cached in the
    package's ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name], package)
        value = getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | {k for k in namespace if not k.startswith("_")})

    return __getattr__, __dir__
