"""The one discovery mechanism for the bot's plug-ins (verbs, analyzers).

A plug-in module marks its functions with a decorator (`bot.commands.registry.verb`,
`bot.diagnosis.analyzers.analyzes`) that only attaches a label to the function; nothing global is
filled. `marked(package)` imports every module of the package and returns the marked functions with
their labels, and the registries' `discover()` builds a fresh instance from them. Tests build their
own registries from the functions they want instead of mutating a shared one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__k8sbot_plugin__"


def mark(func: F, label: object) -> F:
    """Attach `label` to `func` (a function may carry several labels, e.g. two kinds)."""
    labels = [*getattr(func, _MARK, ()), label]
    setattr(func, _MARK, tuple(labels))
    return func


def labels_of(func: Callable[..., Any]) -> tuple[Any, ...]:
    return tuple(getattr(func, _MARK, ()))


def marked(package: str) -> list[tuple[Callable[..., Any], Any]]:
    """(function, label) for every marked function of every module of `package`, in a stable order
    (module name, then definition order)."""
    root = importlib.import_module(package)
    found: list[tuple[Callable[..., Any], Any]] = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(module).values():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                found += [(value, label) for label in labels_of(value)]
    return found
