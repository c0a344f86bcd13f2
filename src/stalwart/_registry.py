"""A small named registry per kind of plug-in (attacks, perturbations, detectors, checks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from stalwart.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; third parties register through an entry-point group."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._items: dict[str, type[T]] = {}
        self._plugins_loaded = False

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{cls.__name__} needs a class attribute 'name' to be registered as a {self.kind}")
        if name in self._items and self._items[name] is not cls:
            article = "an" if self.kind[:1] in "aeiou" else "a"
            raise ConfigError(f"{article} {self.kind} named {name!r} is already registered "
                              f"({self._items[name].__name__}); give {cls.__name__} another class attribute "
                              "'name' to register it beside that one.")
        self._items[name] = cls
        return cls

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=self.group):
            cls = ep.load()
            self._items.setdefault(getattr(cls, "name", ep.name), cls)

    def get(self, name: str) -> type[T]:
        self._load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name (a list, a dict) is unknown too
            raise ConfigError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}"
            ) from None

    def names(self, where: Callable[[type[T]], bool] | None = None) -> list[str]:
        self._load_plugins()
        return sorted(n for n, c in self._items.items() if where is None or where(c))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items
