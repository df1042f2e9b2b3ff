"""Analyzers: pure functions that look at one fetched object and say what is wrong with it.

Each module handles one kind and registers its functions with `@analyzes("Kind")`. An analyzer
gets the object and the request's `Snapshot` (everything else in the namespace, already fetched)
and returns Findings. Analyzers never call the API, so they are tested with plain dicts and a
namespace of 500 pods costs no more requests than one of 5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.kube.snapshot import Snapshot
from bot.model import Finding, KubeObject

Analyzer = Callable[[KubeObject, Snapshot], Iterable[Finding]]
ANALYZERS: dict[str, list[Analyzer]] = {}


def analyzes(kind: str) -> Callable[[Analyzer], Analyzer]:
    """Register `func` as an analyzer of objects of `kind`."""

    def register(func: Analyzer) -> Analyzer:
        ANALYZERS.setdefault(kind, []).append(func)
        return func

    return register


def analyzers_for(kind: str) -> list[Analyzer]:
    load_all()
    return list(ANALYZERS.get(kind, ()))


def load_all() -> None:
    """Import every analyzer module so their decorators run (idempotent)."""
    from bot.analyzers import (  # noqa: F401
        deployment,
        hpa,
        job,
        node,
        pod,
        replicaset,
        service,
        workload,
    )
