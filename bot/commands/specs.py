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
    """Changes the cluster: planned and previewed first, applied only once confirmed."""
    changes_bot_state: bool = False
    """Changes what the bot itself does (a silence), without a confirmation step."""
    slow: bool = False  # posts a placeholder ("Looking into checkout…") before answering
    leading: str | None = None
    """A flag the first positional word fills (`can-i rollback checkout` → --verb rollback)."""
    target_is_object: bool = True
    """The target names the object the verb acts on, so a cluster-scoped kind (`node/x`) makes it act
    cluster-wide. False for `can-i`, whose target is what another verb would act on."""

    @property
    def is_action(self) -> bool:
        """Changes something (the cluster, or the bot's own state): an action, not a read. Actions are
        refused when Slack cannot confirm that the person's account is active."""
        return self.mutating or self.changes_bot_state

    def flag_named(self, name: str) -> FlagSpec | None:
        for spec in self.flags:
            if name in (spec.name, spec.short):
                return spec
        return None


NAMESPACE_FLAG = FlagSpec("namespace", "str", "namespace (default: the channel's)", short="n")
