"""Analyzers: pure functions that look at one fetched object and say what is wrong with it.

Each module handles one kind and marks its functions with `@analyzes("Kind")`. An analyzer gets the
object and the request's `Snapshot` (everything else in the namespace, already fetched) and returns
Findings. Analyzers never call the API, so they are tested with plain dicts and a namespace of 500
pods costs no more requests than one of 5. `AnalyzerRegistry.discover()` collects every module of
this package (the production default); tests build `AnalyzerRegistry.of(...)` with their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot import discovery
from bot.kube.snapshot import Snapshot
from bot.model import Finding, KubeObject

Analyzer = Callable[[KubeObject, Snapshot], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class _Kind:
    """The label `@analyzes` attaches: which kind a function analyzes."""

    kind: str
    needs: tuple[str, ...] = ()


def analyzes(kind: str, *, needs: tuple[str, ...] = ()) -> Callable[[Analyzer], Analyzer]:
    """Mark `func` as an analyzer of objects of `kind` (collected by `AnalyzerRegistry.discover`).

    `needs` names the other kinds it reads from the snapshot beyond the target's own objects
    (`("Service", "ConfigMap")`), so whoever gathers the snapshot knows what to fetch or hold.
    """

    def label(func: Analyzer) -> Analyzer:
        return discovery.mark(func, _Kind(kind, tuple(needs)))

    return label


@dataclass
class AnalyzerRegistry:
    """Which analyzers run on which kind."""

    by_kind: dict[str, list[Analyzer]] = field(default_factory=dict)
    needed: set[str] = field(default_factory=set)

    def add(self, kind: str, analyzer: Analyzer, needs: tuple[str, ...] = ()) -> None:
        self.by_kind.setdefault(kind, []).append(analyzer)
        self.needed.update(needs)

    def for_kind(self, kind: str) -> list[Analyzer]:
        return list(self.by_kind.get(kind, ()))

    def kinds(self) -> list[str]:
        return sorted(self.by_kind)

    def needs(self) -> list[str]:
        """Every kind some analyzer reads beyond the object it is given (see `analyzes(needs=)`)."""
        return sorted(self.needed)

    @classmethod
    def of(cls, analyzers: Iterable[tuple[str, Analyzer]]) -> AnalyzerRegistry:
        registry = cls()
        for kind, analyzer in analyzers:
            registry.add(kind, analyzer)
        return registry

    @classmethod
    def discover(cls, package: str = __name__) -> AnalyzerRegistry:
        """Every analyzer marked with `@analyzes` in the modules of `package`."""
        registry = cls()
        for func, label in discovery.marked(package):
            if isinstance(label, _Kind):
                registry.add(label.kind, func, label.needs)
        return registry
