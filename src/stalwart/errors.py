"""Exceptions raised by stalwart.

Every error a user can cause derives from :class:`StalwartError` and from the matching
built-in, so ``except ValueError`` keeps working::

    StalwartError
    ├── InputError(ValueError)          bad data: shape, NaN, empty, unknown column, labels
    ├── ModelError(ValueError)          a model that cannot do what was asked, or cannot load
    ├── ConfigError(ValueError)         a bad parameter, preset, suite file or threat model
    └── MissingDependencyError(ImportError)   an optional extra is not installed

Messages name the argument, what was wrong and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "StalwartError",
    "InputError",
    "ModelError",
    "ConfigError",
    "MissingDependencyError",
]


class StalwartError(Exception):
    """Base class of every error stalwart raises on purpose."""


class InputError(StalwartError, ValueError):
    """The data handed to stalwart is unusable as given."""


class ModelError(StalwartError, ValueError):
    """The model cannot be wrapped, loaded or asked for what was requested."""


class ConfigError(StalwartError, ValueError):
    """A parameter, preset, suite file or threat model is invalid."""


class MissingDependencyError(StalwartError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module!r} is needed for this feature but is not installed; "
            f"install it with: pip install 'stalwart[{extra}]'"
        ) from exc
