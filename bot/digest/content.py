"""The daily change digest: what changed per team's namespaces in one period, posted once per period.

A period is the interval between two fire times of the digest schedule (cron in the configured
time zone; by default weekdays 09:00), named by its end: "Mon 2026-05-04 09:00 Europe/Berlin". So
Monday's digest covers the weekend. `DigestSender.send_due(now)` posts the digest of the latest
period that has ended, to every team that has not had it yet: a row in `digests_sent (channel,
period)` (`bot.store.digests`) is claimed in a transaction before posting, which makes a second bot (or a restart around
09:00) skip it, and is released if posting fails. Run at start, the same call sends a digest missed
while the bot was down, with its period named in the title.

No Slack here: the digest is typed parts of plain text (a title, sections of lines, the command that
shows more and the namespaces it covers), and `post(digest)` is whatever the caller hands in: in the
bot, `bot.slack.digest.SlackDigests`, which escapes every part before it lays the digest out.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.clock import Clock, utcnow
from bot.model import Change, ChangeKind
from bot.store.changes import ChangeStore
from bot.store.digests import DigestLedger
from bot.store.events import EventStore
from bot.text import clip

log = logging.getLogger(__name__)

DEFAULT_CRON = "0 9 * * mon-fri"
LINES_PER_SECTION = 5
MORE_COMMAND = "changes -n <namespace> --since 24h"
"""What the footer suggests typing for more (plain text: `<namespace>` is a placeholder the renderer escapes)."""


@dataclass(frozen=True, slots=True)
class DigestTeam:
    """A team's channel and the namespaces (globs) it cares about (from permissions.yaml, or configured)."""

    channel: str
    namespaces: tuple[str, ...] = ("*",)

    def covers(self, namespace: str | None) -> bool:
        return namespace is None or any(fnmatch.fnmatchcase(namespace, p) for p in self.namespaces)


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert for the digest: the alerting work provides these (see `AlertProvider`)."""

    namespace: str | None
    text: str


AlertProvider = Callable[[datetime, datetime], Iterable[AlertLine]]
"""(start, end) → the alerts raised in that window. Optional: the digest works without alerting."""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled list of plain-text lines (names, summaries and event messages from the cluster)."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """One team's digest of one period, as plain-text parts: a renderer escapes and lays them out."""

    channel: str
    period: str
    title: str
    sections: tuple[Section, ...]
    namespaces: tuple[str, ...] = ()
    """The team's namespaces (globs); empty: all namespaces."""
    more: str = MORE_COMMAND
    """The `/k8s` command that shows more."""

    @property
    def empty(self) -> bool:
        return not self.sections

    @property
    def scope(self) -> str:
        return ", ".join(self.namespaces) if self.namespaces else "all namespaces"

    @property
    def footer(self) -> str:
        return f"More: /k8s {self.more}  ({self.scope})"

    def text(self) -> str:
        """The digest as plain text (logs and tests; Slack gets `bot.slack.digest.render_digest`)."""
        parts = [self.title]
        for section in self.sections:
            parts.append("")
            parts.append(section.title)
            parts += [f"• {line}" for line in section.lines]
        parts += ["", self.footer]
        return "\n".join(parts)


DigestPoster = Callable[[Digest], object]
"""Sends one digest to its channel (rendering it for the chat service is the poster's job)."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    name: str


# -- schedule arithmetic --------------------------------------------------------------------------


def trigger_for(cron: str, timezone: str) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))


def latest_period(cron: str, timezone: str, now: datetime, *, lookback: timedelta = timedelta(days=8)) -> Period | None:
    """The latest period that has ended by `now`: (previous fire time, latest fire time ≤ now]."""
    trigger = trigger_for(cron, timezone)
    fires: list[datetime] = []
    cursor: datetime | None = trigger.get_next_fire_time(None, now - lookback)
    while cursor is not None and cursor <= now:
        fires.append(cursor)
        cursor = trigger.get_next_fire_time(cursor, cursor + timedelta(seconds=1))
    if not fires:
        return None
    end = fires[-1]
    start = fires[-2] if len(fires) > 1 else end - timedelta(days=1)
    return Period(start=start.astimezone(UTC), end=end.astimezone(UTC), name=end.strftime("%a %Y-%m-%d %H:%M %Z"))


# -- building -------------------------------------------------------------------------------------


SECTIONS: tuple[tuple[str, frozenset[ChangeKind]], ...] = (
    ("Deploys", frozenset({ChangeKind.IMAGE})),
    ("Rollbacks", frozenset({ChangeKind.ROLLBACK})),
    ("Scale changes", frozenset({ChangeKind.SCALE})),
    ("Config changes", frozenset({ChangeKind.CONFIG, ChangeKind.SECRET})),
    ("Restarts", frozenset({ChangeKind.RESTART})),
)


def build_digest(
    team: DigestTeam,
    *,
    period: Period,
    changes: ChangeStore,
    events: EventStore,
    alerts: AlertProvider | None = None,
    late: bool = False,
) -> Digest:
    """The digest of `period` for `team`: one section per kind of change, lines grouped by namespace."""
    everything = changes.query(since=period.start, until=period.end, limit=5000)
    found = [c for c in everything if not c.external and team.covers(c.ref.namespace)]
    external = [c for c in everything if c.external and team.covers(_namespace_of(c))]
    sections: list[Section] = []
    for title, kinds in SECTIONS:
        lines = _grouped([c for c in found if c.kind in kinds and c.ref.namespace], _change_line)
        if lines:
            sections.append(Section(f"{title} ({_count(found, kinds)})", lines))
    if external:
        lines = _grouped(external, _external_line, namespace_of=lambda c: _namespace_of(c) or "cluster")
        sections.append(Section(f"Changes from outside the cluster ({len(external)})", lines))
    node_lines = _node_lines(found, events, period)
    if node_lines:
        sections.append(Section("Nodes", node_lines))
    if alerts is not None:
        alert_lines = _alert_lines(team, alerts, period)
        if alert_lines:
            sections.append(Section("Alerts", alert_lines))
    when = f"Daily digest for {period.name}"
    title = f"{when} (sent late: I was not running then)" if late else when
    if not sections:
        title += ": no deploys, rollbacks, scale or config changes"
    namespaces = team.namespaces if team.namespaces != ("*",) else ()
    return Digest(team.channel, period.name, title, tuple(sections), namespaces=namespaces)


def _count(found: Sequence[Change], kinds: frozenset[ChangeKind]) -> int:
    return sum(1 for c in found if c.kind in kinds and c.ref.namespace)


def _grouped(
    found: Sequence[Change], line: Callable[[Change], str], *, namespace_of: Callable[[Change], str] | None = None
) -> tuple[str, ...]:
    """`namespace: line; line` per namespace, newest first, at most LINES_PER_SECTION lines."""
    by_namespace: dict[str, list[str]] = {}
    for change in found:
        where = namespace_of(change) if namespace_of else change.ref.namespace or ""
        by_namespace.setdefault(where, []).append(line(change))
    lines = []
    for namespace in sorted(by_namespace):
        items = by_namespace[namespace]
        shown = items[:3]
        more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
        lines.append(f"{namespace}: " + "; ".join(shown) + more)
    if len(lines) > LINES_PER_SECTION:
        rest = len(lines) - LINES_PER_SECTION
        lines = [*lines[:LINES_PER_SECTION], f"… and {rest} more namespaces"]
    return tuple(lines)


def _change_line(change: Change) -> str:
    who = f" by {change.actor}" if change.actor else ""
    return f"{change.ref.kind.lower()}/{change.ref.name} {change.summary}{who}"


def _namespace_of(change: Change) -> str | None:
    """An external change's namespace: its object's, or the namespace it is about; None: the cluster."""
    if change.ref.kind == "Namespace":
        return change.ref.name or None
    return change.ref.namespace


def _external_line(change: Change) -> str:
    who = f" by {change.actor}" if change.actor else ""
    about = "" if change.ref.kind == "Namespace" else f"{change.ref.kind.lower()}/{change.ref.name} "
    return f"[{change.source}] {about}{change.summary}{who}"


def _node_lines(found: Sequence[Change], events: EventStore, period: Period) -> tuple[str, ...]:
    lines = [
        f"{c.ref.name}: {c.summary}"
        for c in found
        if c.ref.kind == "Node" and c.kind in (ChangeKind.NODE_CONDITION, ChangeKind.SPEC)
    ]
    for event in events.since(period.start, end=period.end, involved_kind="Node", limit=20):
        lines.append(f"{event.involved.name}: {event.reason} ×{event.count}: {clip(event.message, 100)}")
    return tuple(lines[:LINES_PER_SECTION])


def _alert_lines(team: DigestTeam, alerts: AlertProvider, period: Period) -> tuple[str, ...]:
    try:
        found = [a for a in alerts(period.start, period.end) if team.covers(a.namespace)]
    except Exception:  # alerting is optional here: the digest still goes out
        log.exception("alerts for the digest failed")
        return ("(alerts unavailable)",)
    lines = [f"{a.namespace}: {a.text}" if a.namespace else a.text for a in found]
    if len(lines) > LINES_PER_SECTION:
        lines = [*lines[:LINES_PER_SECTION], f"… and {len(lines) - LINES_PER_SECTION} more"]
    return tuple(lines)


# -- sending exactly once -------------------------------------------------------------------------


class DigestSender:
    """Sends each team's digest once per period."""

    def __init__(
        self,
        ledger: DigestLedger,
        *,
        changes: ChangeStore,
        events: EventStore,
        teams: Sequence[DigestTeam],
        post: DigestPoster,
        cron: str = DEFAULT_CRON,
        timezone: str = "UTC",
        alerts: AlertProvider | None = None,
        clock: Clock = utcnow,
        catch_up_within: timedelta = timedelta(days=1),
    ) -> None:
        self.ledger = ledger
        self.changes = changes
        self.events = events
        self.teams = tuple(teams)
        self.post = post
        self.cron = cron
        self.timezone = timezone
        self.alerts = alerts
        self.clock = clock
        self.catch_up_within = catch_up_within
        trigger_for(cron, timezone)  # a bad cron or zone stops the start here, not at 09:00

    def send_due(self, *, late_after: timedelta = timedelta(minutes=30)) -> list[Digest]:
        """Send the latest ended period's digest to every team that has not had it. Returns what was sent.

        Called by the scheduled job and once at start (catch-up). A period that ended more than
        `catch_up_within` ago is not sent any more; one sent more than `late_after` after its end is
        titled as late.
        """
        now = self.clock()
        period = latest_period(self.cron, self.timezone, now)
        if period is None or now - period.end > self.catch_up_within:
            return []
        sent = []
        for team in self.teams:
            digest = self._send(team, period, late=now - period.end > late_after)
            if digest is not None:
                sent.append(digest)
        return sent

    def _send(self, team: DigestTeam, period: Period, *, late: bool) -> Digest | None:
        if not self.ledger.claim(team.channel, period.name):
            return None
        try:
            digest = build_digest(
                team, period=period, changes=self.changes, events=self.events, alerts=self.alerts, late=late
            )
            self.post(digest)
        except Exception:
            self.ledger.release(team.channel, period.name)  # not sent: the next run (or restart) tries again
            log.exception("digest for %s (%s) failed", team.channel, period.name)
            return None
        log.info("digest for %s sent (%s)", team.channel, period.name)
        return digest
