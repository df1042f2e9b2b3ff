"""Verb implementations. Each module registers itself with `bot.commands.verb`; `load_all` imports them."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def load_all() -> None:
    """Import every verb module once, so the registry knows every verb."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
