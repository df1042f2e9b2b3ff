"""What an integration receiver answers, and the shape every receiver has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Outcome:
    """An HTTP status and the JSON object answered with it."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def refused(cls, problem: str, *, status: int = 400) -> Outcome:
        """Nothing was stored; `problem` says what to fix, in one sentence."""
        return cls(status, {"ok": False, "error": problem})

    @classmethod
    def accepted(cls, **details: Any) -> Outcome:
        return cls(200, {"ok": True, **details})


class Receiver(Protocol):
    """Takes one parsed JSON body (any JSON value: the receiver validates it) and answers."""

    def receive(self, payload: Any) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class Receivers:
    """The receivers the HTTP edge serves, by path; a missing one is not served (404)."""

    alertmanager: Receiver | None = None
    """`POST /integrations/alertmanager`: Alertmanager's webhook payload, version 4."""
    changes: Receiver | None = None
    """`POST /integrations/changes`: one external change event."""
