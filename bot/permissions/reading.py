"""What one person may read of what the bot serves from its own records.

The change history was recorded with the bot's own identity; before any of it is shown, the person's
right to read each kind there is asked (`PermissionEngine.may_read`: the same SubjectAccessReview as
for actions, or for people mapped to no identity, the bot's own reads minus Secrets). One `ReadAccess`
lives for one request and asks at most once per kind and namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.kube.kinds import KINDS
from bot.model import Decision, Subject

if TYPE_CHECKING:
    from bot.permissions.engine import PermissionEngine

TERMINAL = Decision(True, "no permissions.yaml: the kubeconfig's own identity reads")


class ReadAccess:
    """May this person read objects of a kind in a namespace? Decided once per (kind, namespace)."""

    def __init__(self, engine: PermissionEngine | None, subject: Subject) -> None:
        self.engine = engine
        self.subject = subject
        self._decided: dict[tuple[str, str | None, str | None], Decision] = {}

    def decision(self, kind: str, namespace: str | None, name: str | None = None) -> Decision:
        """`kind` (e.g. "Secret") in `namespace` (None, and every cluster-scoped kind: in all
        namespaces); with `name`, that one object only."""
        known = KINDS.get(kind)
        scope = namespace if known is not None and known.namespaced else None
        key = (kind, scope, name)
        decided = self._decided.get(key)
        if decided is None:
            if self.engine is None:
                decided = TERMINAL
            elif known is None:
                decided = Decision(False, f"{kind} is not a kind the bot knows how to authorize")
            else:
                decided = self.engine.may_read(self.subject, known, scope, name)
            self._decided[key] = decided
        return decided

    def allowed(self, kind: str, namespace: str | None, name: str | None = None) -> bool:
        return self.decision(kind, namespace, name).allowed
