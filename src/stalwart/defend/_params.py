"""The one ``__repr__`` of the defences' small parameter objects (squeezers, random transforms)."""

from __future__ import annotations

__all__ = ["ParamsRepr"]


class ParamsRepr:
    """``ClassName(param=value, ...)`` from the attributes the constructor stored."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
