"""A target's timeline as data: events on lanes between two times, the culprit marked. Pure: no I/O.

Lanes, top to bottom in the picture:

* `changes` — recorded changes of the target and what it uses (who, what); the diagnosis's culprit
  is marked (`culprit: true`), added from the culprit itself when no recorded change matches it.
* `pods` — container restarts (the last termination of each container) and readiness transitions.
* `warnings` — Warning Events of the target's objects (the last time each was seen, with its count).
* `alerts` — the bot's alerts on the target: fired, resolved.
* `external` — change records whose `source` is not Kubernetes (a CI deploy, a feature flag), when
  the change records carry one; none do until such sources are ingested.

`Timeline.to_json()` is the `timeline` verb's JSON contract:
`{"cluster", "target", "from", "to", "events": [{"at", "lane", "text", "actor", "culprit"}]}`.
`describe_in_words` says what the picture shows, for its alt text and for the answer's lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.model import Change, CulpritChange, KubeObject, ObjectRef, parse_time
from bot.text import brief, clip

LANES: tuple[str, ...] = ("changes", "pods", "warnings", "alerts", "external")
LANE_TITLES: dict[str, str] = {
    "changes": "Changes",
    "pods": "Pod restarts / readiness",
    "warnings": "Warning events",
    "alerts": "Alerts",
    "external": "External",
}
KUBERNETES_SOURCES = frozenset({"", "kubernetes", "k8s", "cluster"})
"""A change record's `source` that means "seen on the API server" (anything else is external)."""
MAX_PER_LANE = 400
"""A busy workload keeps its newest events per lane; the picture stays readable and quick to draw."""
TEXT_CHARS = 200
ALT_TEXT_CHARS = 1000
"""Slack's alt text for an image is short; the answer's lines carry the rest."""


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened: when, on which lane, what (plain text, unescaped), who, and whether it
    is the change the diagnosis blames."""

    at: datetime
    lane: str
    text: str
    actor: str | None = None
    culprit: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "lane": self.lane,
            "text": self.text,
            "actor": self.actor,
            "culprit": self.culprit,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TimelineEvent:
        at = parse_time(data.get("at")) or datetime.fromtimestamp(0, UTC)
        return cls(at, str(data.get("lane")), str(data.get("text") or ""), data.get("actor"), bool(data.get("culprit")))


@dataclass(frozen=True, slots=True)
class Timeline:
    cluster: str
    target: ObjectRef
    start: datetime
    end: datetime
    """The right edge: "now" when the timeline was built."""
    events: tuple[TimelineEvent, ...] = ()
    left_out: int = 0
    """Events beyond `MAX_PER_LANE` (the oldest of a lane), not drawn and not in `events`."""

    def lane(self, name: str) -> list[TimelineEvent]:
        return [e for e in self.events if e.lane == name]

    @property
    def culprit(self) -> TimelineEvent | None:
        return next((e for e in self.events if e.culprit), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "target": self.target.to_json(),
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        """The timeline a JSON answer (or an alert's outbox row) carries, to draw it again."""
        target = data.get("target") or {}
        end = parse_time(data.get("to")) or datetime.now(UTC)
        return cls(
            cluster=str(data.get("cluster") or ""),
            target=ObjectRef(str(target.get("kind") or ""), target.get("namespace"), str(target.get("name") or "")),
            start=parse_time(data.get("from")) or end,
            end=end,
            events=tuple(TimelineEvent.from_json(e) for e in data.get("events") or [] if isinstance(e, dict)),
        )


@dataclass(frozen=True, slots=True)
class AlertMark:
    """What the timeline needs of one alert (the store's AlertRecord has more)."""

    title: str
    fired_at: datetime
    resolved_at: datetime | None = None
    category: str = ""


def build_timeline(
    *,
    cluster: str,
    target: ObjectRef,
    start: datetime,
    end: datetime,
    changes: Iterable[Change] = (),
    pods: Iterable[KubeObject] = (),
    events: Iterable[KubeObject] = (),
    alerts: Iterable[AlertMark] = (),
    culprit: CulpritChange | None = None,
) -> Timeline:
    """The timeline of `target` in [start, end] from what the caller gathered (any order).

    `events` are Event objects as the API serves them (Warnings only are kept); `changes` may carry a
    `source` attribute (external change records): those go on the `external` lane.
    """
    found: list[TimelineEvent] = []
    found += change_events(changes, culprit)
    found += pod_events(pods)
    found += warning_events(events)
    found += alert_events(alerts)
    inside = [e for e in found if start <= e.at <= end]
    blamed_unrecorded = culprit is not None and not any(e.culprit for e in inside)
    if blamed_unrecorded and culprit is not None and culprit.at is not None and start <= culprit.at <= end:
        inside.append(culprit_event(culprit))  # blamed from the revision history, not from a recorded change
    kept, left_out = _newest_per_lane(inside)
    return Timeline(cluster, target, start, end, tuple(sorted(kept, key=_order)), left_out)


def _order(event: TimelineEvent) -> tuple[datetime, int, str]:
    return (event.at, LANES.index(event.lane) if event.lane in LANES else len(LANES), event.text)


def _newest_per_lane(events: list[TimelineEvent]) -> tuple[list[TimelineEvent], int]:
    by_lane: dict[str, list[TimelineEvent]] = {}
    for event in events:
        by_lane.setdefault(event.lane, []).append(event)
    kept: list[TimelineEvent] = []
    left_out = 0
    for lane_events in by_lane.values():
        lane_events.sort(key=lambda e: (e.culprit, e.at), reverse=True)  # the culprit is never left out
        kept += lane_events[:MAX_PER_LANE]
        left_out += max(0, len(lane_events) - MAX_PER_LANE)
    return kept, left_out


# -- lanes ------------------------------------------------------------------------------------------


def source_of(change: Change) -> str:
    """Where a change record came from: "" for the API server's watch (today's records carry no
    `source`), else what the record says ("ci", "flags", ...)."""
    source = getattr(change, "source", None)
    return "" if source is None else str(source)


def change_events(changes: Iterable[Change], culprit: CulpritChange | None) -> list[TimelineEvent]:
    changes = list(changes)
    out: list[TimelineEvent] = []
    blamed = _blamed(changes, culprit)
    for change in changes:
        source = source_of(change)
        external = source.lower() not in KUBERNETES_SOURCES
        where = f"{change.ref.kind}/{change.ref.name}"
        text = f"{source}: {where}: {change.summary}" if external else f"{where}: {change.summary}"
        if change is blamed and culprit is not None:  # name the field the diagnosis blames, not the whole edit
            out.append(replace(culprit_event(culprit), at=change.at, actor=change.actor or culprit.actor))
            continue
        out.append(
            TimelineEvent(change.at, "external" if external else "changes", clip(text, TEXT_CHARS), change.actor)
        )
    return out


def _blamed(changes: Sequence[Change], culprit: CulpritChange | None) -> Change | None:
    """The recorded change the culprit stands for: same object and field, the same time or revision
    (the newest such change when several match)."""
    if culprit is None:
        return None
    candidates = [
        c
        for c in changes
        if c.ref == culprit.ref
        and (any(f.path == culprit.path for f in c.fields) or not c.fields)
        and (c.at == culprit.at or (culprit.revision is not None and c.revision == culprit.revision))
    ]
    if not candidates:
        candidates = [c for c in changes if c.ref == culprit.ref and any(f.path == culprit.path for f in c.fields)]
    return max(candidates, key=lambda c: (c.at, c.id or 0)) if candidates else None


def culprit_event(culprit: CulpritChange) -> TimelineEvent:
    """The blamed change as an event: the object, the field that matters, before → after."""
    values = f"{brief(culprit.before, 60)} → {brief(culprit.after, 60)}"
    text = f"{culprit.ref.kind}/{culprit.ref.name}: {culprit.path}: {values}"
    at = culprit.at or datetime.fromtimestamp(0, UTC)
    return TimelineEvent(at, "changes", clip(text, TEXT_CHARS), culprit.actor, culprit=True)


def pod_events(pods: Iterable[KubeObject]) -> list[TimelineEvent]:
    """Each container's last termination (a restart when the container runs again or waits to), and
    each pod's readiness transition, with the times the API reports."""
    out: list[TimelineEvent] = []
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name") or "?")
        status = pod.get("status") or {}
        for container in list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or []):
            out += _container_events(name, container)
        for condition in status.get("conditions") or []:
            if condition.get("type") != "Ready":
                continue
            at = parse_time(condition.get("lastTransitionTime"))
            if at is None:
                continue
            if condition.get("status") == "True":
                text = f"pod {name} ready"
            else:
                why = condition.get("reason") or "not ready"
                text = f"pod {name} not ready ({why})"
            out.append(TimelineEvent(at, "pods", clip(text, TEXT_CHARS)))
    return out


def _container_events(pod: str, container: dict[str, Any]) -> list[TimelineEvent]:
    last = (container.get("lastState") or {}).get("terminated") or {}
    restarts = int(container.get("restartCount") or 0)
    at = parse_time(last.get("finishedAt"))
    if at is None or restarts <= 0:
        return []
    reason = last.get("reason") or "terminated"
    code = last.get("exitCode")
    exit_text = f", exit {code}" if code is not None else ""
    text = f"pod {pod} container {container.get('name')} restarted ({reason}{exit_text}; {restarts} restarts)"
    return [TimelineEvent(at, "pods", clip(text, TEXT_CHARS))]


def warning_events(events: Iterable[KubeObject]) -> list[TimelineEvent]:
    out: list[TimelineEvent] = []
    for event in events:
        if event.get("type") != "Warning":
            continue
        series = event.get("series") or {}
        at = (
            parse_time(event.get("lastTimestamp"))
            or parse_time(series.get("lastObservedTime"))
            or parse_time(event.get("eventTime"))
            or parse_time((event.get("metadata") or {}).get("creationTimestamp"))
        )
        if at is None:
            continue
        involved = event.get("involvedObject") or event.get("regarding") or {}
        count = int(event.get("count") or series.get("count") or 1)
        times = f" (×{count})" if count > 1 else ""
        message = str(event.get("message") or event.get("note") or "")
        text = f"{event.get('reason')} on {involved.get('kind')}/{involved.get('name')}{times}: {message}"
        out.append(TimelineEvent(at, "warnings", clip(text, TEXT_CHARS)))
    return out


def alert_events(alerts: Iterable[AlertMark]) -> list[TimelineEvent]:
    out: list[TimelineEvent] = []
    for alert in alerts:
        out.append(TimelineEvent(alert.fired_at, "alerts", clip(f"alert fired: {alert.title}", TEXT_CHARS)))
        if alert.resolved_at is not None:
            out.append(TimelineEvent(alert.resolved_at, "alerts", clip(f"alert resolved: {alert.title}", TEXT_CHARS)))
    return out


def redacted(timeline: Timeline, redact: Callable[[str], str]) -> Timeline:
    """The timeline with every text and actor passed through `redact` (a `Redactor.text`)."""
    return replace(
        timeline,
        events=tuple(
            replace(e, text=redact(e.text), actor=redact(e.actor) if e.actor else e.actor) for e in timeline.events
        ),
    )


# -- words ------------------------------------------------------------------------------------------


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M")


def title_of(timeline: Timeline) -> str:
    target = timeline.target
    where = f" in {target.namespace}" if target.namespace else ""
    return (
        f"Timeline of {target.kind} {target.name}{where}, {timeline.start:%Y-%m-%d %H:%M} → "
        f"{timeline.end:%H:%M} UTC (now)"
    )


def describe_in_words(timeline: Timeline, *, limit: int = ALT_TEXT_CHARS) -> str:
    """What the picture shows, in plain words: the period, how many events on each lane, the culprit
    and the newest change (the picture's alt text)."""
    parts = [title_of(timeline) + "."]
    counts = [f"{len(timeline.lane(lane))} {LANE_TITLES[lane].lower()}" for lane in LANES if timeline.lane(lane)]
    parts.append(("Lanes: " + ", ".join(counts) + ".") if counts else "Nothing happened in that time.")
    culprit = timeline.culprit
    if culprit is not None:
        who = f" by {culprit.actor}" if culprit.actor else ""
        parts.append(f"Likely culprit, highlighted: {culprit.text}{who} at {_clock(culprit.at)} UTC.")
    changes = [e for e in timeline.lane("changes") if not e.culprit]
    if changes:
        newest = changes[-1]
        who = f" by {newest.actor}" if newest.actor else ""
        parts.append(f"Latest other change: {newest.text}{who} at {_clock(newest.at)} UTC.")
    alerts = timeline.lane("alerts")
    if alerts:
        parts.append(f"Latest alert event: {alerts[-1].text} at {_clock(alerts[-1].at)} UTC.")
    return clip(" ".join(parts), limit)


def lines_of(timeline: Timeline, *, shown: int = 30) -> list[str]:
    """The timeline as text lines, newest first (the answer's lines; Slack and the terminal)."""
    lines = [describe_in_words(timeline, limit=2000)]
    newest = sorted(timeline.events, key=_order, reverse=True)
    for event in newest[:shown]:
        who = f" ({event.actor})" if event.actor else ""
        mark = "⚑ culprit: " if event.culprit else ""
        lines.append(f"{event.at:%H:%M:%S}  [{event.lane}] {mark}{event.text}{who}")
    if len(newest) > shown:
        lines.append(f"… {len(newest) - shown} older events in the picture and the JSON answer")
    if timeline.left_out:
        lines.append(f"({timeline.left_out} older events of busy lanes left out)")
    return lines
