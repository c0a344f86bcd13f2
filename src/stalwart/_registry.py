"""One registry contract for every kind of plug-in: attacks, perturbations, detectors, checks.

Each kind's package exposes the same three functions, backed by one :class:`Registry`:

- ``register`` — a class decorator; the class declares its ``name`` and what callers need
  (``modality``, ``white_box``, ``kind``, ``category``, ...);
- ``get(name, *args, **params)`` — an instance, its parameters bound and checked against the
  constructor (an unknown parameter is a :class:`~stalwart.errors.ConfigError` listing the
  accepted ones);
- ``names(**attrs)`` — the registered names, filtered by class attributes
  (``perturb.names(modality="image")``, ``attacks.names(white_box=False)``).

The registry finds its built-ins itself: on first use it imports every public module of its
package (adding a built-in is one new file), then the entry points of its group (third-party
packages: ``[project.entry-points."stalwart.attacks"]``). A class registered from anywhere else
with the decorator works everywhere the kind is used: checks, suites and the command line look
plug-ins up here instead of listing them.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, Generic, TypeVar

from stalwart.errors import ConfigError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Names to classes for one kind of plug-in.

    Parameters
    ----------
    kind : what the plug-ins are, for messages ("attack", "perturbation", ...)
    group : the entry-point group third-party packages register in
    package : the package whose public modules hold the built-ins (imported on first use)
    """

    def __init__(self, kind: str, group: str, package: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self.package = package
        self._items: dict[str, type[T]] = {}
        self._loaded = False

    # -- registering ------------------------------------------------------------------------
    def register(self, cls: type[T]) -> type[T]:
        """Register ``cls`` under its class attribute ``name`` (usable as a decorator)."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{getattr(cls, '__name__', cls)!r} needs a class attribute 'name' (a non-empty str) "
                              f"to be registered as {self._article()} {self.kind}")
        if name in self._items and self._items[name] is not cls:
            raise ConfigError(f"{self._article()} {self.kind} named {name!r} is already registered "
                              f"({self._items[name].__name__}); give {cls.__name__} another class attribute "
                              "'name' to register it beside that one.")
        self._items[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Forget ``name`` (for tests that register a plug-in for a while)."""
        self._items.pop(name, None)

    def _article(self) -> str:
        return "an" if self.kind[:1] in "aeiou" else "a"

    def _load(self) -> None:
        """Import the built-ins (every public module of the package), then the entry points."""
        if self._loaded:
            return
        self._loaded = True
        if self.package is not None:
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")
        for ep in metadata.entry_points(group=self.group):
            cls = ep.load()
            self._items.setdefault(getattr(cls, "name", ep.name), cls)

    # -- looking up -------------------------------------------------------------------------
    def get(self, name: str) -> type[T]:
        """The class registered as ``name``."""
        self._load()
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} names are strings: pass a {self.kind} name (a str); got {name!r}. Known: "
                              f"{', '.join(self.names())}")
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}.{hint}") from None

    def create(self, name: str, *args: Any, **params: Any) -> T:
        """An instance of ``name``, with ``params`` checked against its constructor first."""
        cls = self.get(name)
        sig = inspect.signature(cls)
        accepted = [p.name for p in sig.parameters.values()
                    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)][len(args):]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = sorted(set(params) - set(accepted))
        if unknown and not takes_any:
            valid = f"pass only these parameters: {accepted}" if accepted else \
                f"it takes none: call get({name!r}) alone"
            raise ConfigError(f"{self.kind} {name!r} got unknown parameter(s) {unknown}; {valid}")
        try:
            sig.bind(*args, **params)
        except TypeError as exc:
            raise ConfigError(f"{self.kind} {name!r} cannot be made from the arguments given ({exc}); its parameters "
                              f"are {accepted}.") from None
        return cls(*args, **params)

    def names(self, where: Callable[[type[T]], bool] | None = None, **attrs: Any) -> list[str]:
        """Registered names, sorted; ``attrs`` keep the classes whose attributes match
        (equal, or containing the value when the attribute is a tuple/list/set)."""
        self._load()

        def matches(cls: type[T]) -> bool:
            for key, want in attrs.items():
                have = getattr(cls, key, None)
                if isinstance(have, (tuple, list, set, frozenset)) and not isinstance(want, (tuple, list, set)):
                    if want not in have:
                        return False
                elif have != want:
                    return False
            return where is None or where(cls)
        return sorted(n for n, c in self._items.items() if matches(c))

    def check_names(self, owner: object | str, param: str, value: Any, *, allow_empty: bool = False,
                    **attrs: Any) -> list[str]:
        """``value`` as a list of registered names (matching ``attrs``), repeats dropped; else the
        :class:`ConfigError` every parameter that takes plug-in names gives."""
        from stalwart._validation import param_error

        if isinstance(value, str) or not isinstance(value, Sequence) or (not value and not allow_empty) \
                or not all(isinstance(v, str) for v in value):
            raise param_error(owner, param, f"a {'' if allow_empty else 'non-empty '}list of {self.kind} names",
                              value)
        known = self.names(**attrs)
        unknown = [v for v in value if v not in known]
        if unknown:
            owner_name = owner if isinstance(owner, str) else type(owner).__name__
            which = f" ({', '.join(f'{k}={v!r}' for k, v in attrs.items())})" if attrs else ""
            raise ConfigError(f"{owner_name}({param}=...) names unknown {self.kind}(s) {unknown}; known{which}: "
                              f"{known}")
        return list(dict.fromkeys(value))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name in self._items
