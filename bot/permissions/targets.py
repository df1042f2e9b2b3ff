"""What a command targets and where it acts: pure helpers the permission decisions and the verbs share.

Kept apart from the engine (which loads permissions.yaml's models) so the command path can import
them cheaply.
"""

from __future__ import annotations

from bot.kube.kinds import KINDS, Kind, kind_named
from bot.model import Command

# Which kinds each action accepts; the first is the default for a bare name.
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "rollback": ("Deployment",),
    "scale": ("Deployment", "StatefulSet"),
    "restart": ("Deployment", "StatefulSet", "DaemonSet"),
}
# What a bare name means to verbs that take any kind but default to one (`silence checkout`).
BARE_NAME_KINDS: dict[str, str] = {**{verb: kinds[0] for verb, kinds in ACTION_KINDS.items()}, "silence": "Deployment"}


def target_kind(command: Command, *, verb: str | None = None) -> tuple[Kind | None, str | None]:
    """(Kind, name) named by the command's target; a bare name of an action defaults to its first kind."""
    verb = verb or command.verb
    if not command.target:
        return None, None
    word, _, name = command.target.rpartition("/")
    kind = kind_named(word) if word else None
    if kind is None and verb in BARE_NAME_KINDS:
        kind = KINDS[BARE_NAME_KINDS[verb]]
    return kind, name


def acted_namespace(command: Command, namespace: str | None) -> str | None:
    """Where `command` acts, so where it is decided: None (cluster-wide, which needs a grant on "*")
    when its target names a cluster-scoped kind (Node, Namespace), else `namespace` (the `-n`, the
    target's `ns/`, or the channel's or configured default, as the command path resolved it)."""
    kind, _ = target_kind(command)
    return None if kind is not None and not kind.namespaced else namespace
