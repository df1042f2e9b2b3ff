"""What a verb is, as data: its name, usage, examples and flags (the parser and `help` read these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlagSpec:
    name: str
    kind: str  # "bool" | "int" | "str" | "duration"
    help: str
    short: str | None = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class VerbSpec:
    name: str
    summary: str
    usage: str
    examples: tuple[str, ...] = ()
    flags: tuple[FlagSpec, ...] = ()
    target: str = "optional"  # "none" | "optional" | "required"
    mutating: bool = False
    slow: bool = False  # posts a placeholder ("Looking into checkout…") before answering
    leading: str | None = None
    """A flag the first positional word fills (`can-i rollback checkout` → --verb rollback)."""

    def flag_named(self, name: str) -> FlagSpec | None:
        for spec in self.flags:
            if name in (spec.name, spec.short):
                return spec
        return None


NAMESPACE_FLAG = FlagSpec("namespace", "str", "namespace (default: the channel's)", short="n")
