"""Events as evidence: Warning events of some objects, de-duplicated, newest first."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.kube.snapshot import Snapshot
from bot.model import KubeObject, ObjectRef


@dataclass(frozen=True, slots=True)
class EventSummary:
    reason: str
    message: str
    count: int
    last_seen: str

    def line(self) -> str:
        times = f" ×{self.count}" if self.count > 1 else ""
        when = f", last {self.last_seen}" if self.last_seen else ""
        return f"event {self.reason}{times}{when}: {self.message}"


def last_seen(event: KubeObject) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def summarize(
    events: Iterable[KubeObject], *, reasons: frozenset[str] | None = None, warnings_only: bool = True
) -> list[EventSummary]:
    """Group events by (reason, message) summing counts; newest first."""
    groups: dict[tuple[str, str], EventSummary] = {}
    for event in events:
        if warnings_only and event.get("type") != "Warning":
            continue
        reason = str(event.get("reason") or "")
        if reasons is not None and reason not in reasons:
            continue
        message = " ".join(str(event.get("message") or event.get("note") or "").split())
        count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
        seen = last_seen(event)
        key = (reason, _shape(message))
        old = groups.get(key)
        if old:
            groups[key] = EventSummary(reason, message, old.count + count, max(old.last_seen, seen))
        else:
            groups[key] = EventSummary(reason, message, count, seen)
    return sorted(groups.values(), key=lambda s: s.last_seen, reverse=True)


_OBJECT_NAMES = re.compile(r"\b[a-z0-9]([-a-z0-9]*[a-z0-9])?-[a-z0-9]{5}\b|\([0-9a-f-]{36}\)")


def _shape(message: str) -> str:
    """The message with pod names and uids blanked, so one failure on many pods groups as one."""
    return _OBJECT_NAMES.sub("<name>", message)


def event_lines(
    snapshot: Snapshot, refs: Iterable[ObjectRef], *, limit: int = 4, reasons: frozenset[str] | None = None
) -> list[str]:
    return [s.line() for s in summarize(snapshot.events_for(refs), reasons=reasons)[:limit]]
