"""Name → component registries: every configurable component is chosen by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to builders; an unknown name raises ``ValueError`` listing the choices.

    >>> losses = Registry[Callable]("loss")
    >>> @losses.register("ce")
    ... def ce(): ...

    ``modules`` names the modules whose definitions register into it; they are imported on the
    registry's first use, so the package that holds the registry stays cheap to import.
    """

    def __init__(self, kind: str, modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self._items: dict[str, T] = {}

    def _load(self) -> None:
        for module in self.modules:
            importlib.import_module(module)

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
