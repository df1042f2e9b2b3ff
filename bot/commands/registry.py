"""The verb registry: which verbs one bot knows, found by one discovery mechanism.

A verb module declares a `VerbSpec` (`specs`) and marks its function with `@verb(spec)`; `VerbRegistry.discover()`
(the production default: every module of `bot.verbs`) builds a registry instance from the marked
functions. The registry is passed to the parser and the command path; nothing global is mutated, so a
test builds `VerbRegistry.of(...)` with exactly the verbs it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot import discovery
from bot.commands.context import VerbFunc
from bot.commands.specs import VerbSpec

VERBS_PACKAGE = "bot.verbs"


def verb(spec: VerbSpec) -> Callable[[VerbFunc], VerbFunc]:
    """Mark `func` as the implementation of `spec` (collected by `VerbRegistry.discover`)."""

    def label(func: VerbFunc) -> VerbFunc:
        return discovery.mark(func, spec)

    return label


@dataclass
class VerbRegistry:
    """The verbs one bot knows: name → spec and implementation."""

    specs: dict[str, VerbSpec] = field(default_factory=dict)
    funcs: dict[str, VerbFunc] = field(default_factory=dict)

    def add(self, spec: VerbSpec, func: VerbFunc) -> None:
        if spec.name in self.specs:
            raise ValueError(f"verb {spec.name!r} registered twice")
        self.specs[spec.name] = spec
        self.funcs[spec.name] = func

    def names(self) -> frozenset[str]:
        return frozenset(self.specs)

    @classmethod
    def of(cls, verbs: Iterable[tuple[VerbSpec, VerbFunc]]) -> VerbRegistry:
        registry = cls()
        for spec, func in verbs:
            registry.add(spec, func)
        return registry

    @classmethod
    def discover(cls, package: str = VERBS_PACKAGE) -> VerbRegistry:
        """Every verb marked with `@verb` in the modules of `package`."""
        return cls.of((label, func) for func, label in discovery.marked(package) if isinstance(label, VerbSpec))
