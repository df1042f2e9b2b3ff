"""The daily change digest: what changed per team's namespaces in one period, posted once per period.

A period is the interval between two fire times of the digest schedule (cron in the configured
time zone; by default weekdays 09:00), named by its end: "Mon 2026-05-04 09:00 Europe/Berlin". So
Monday's digest covers the weekend. `DigestSender.send_due(now)` posts the digest of the latest
period that has ended, to every team that has not had it yet: a row in `digests_sent (channel,
period)` (`bot.store.digests`) is claimed in a transaction before posting, which makes a second bot (or a restart around
09:00) skip it, and is released if posting fails. Run at start, the same call sends a digest missed
while the bot was down, with its period named in the title.

A bot serving several clusters sends each team one digest covering all of them, grouped by cluster
(in the configured order): a team's namespaces may differ per cluster, and a cluster where the team
has no namespaces adds nothing to its digest. The default channel gets, in each cluster, what no
team's channel claims. With one cluster the digest is not grouped.

No Slack here: the digest is typed parts of plain text (a title, sections of lines, the command that
shows more and the namespaces it covers), and `post(digest)` is whatever the caller hands in: in the
bot, `bot.slack.digest.SlackDigests`, which escapes every part before it lays the digest out.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.clock import Clock, utcnow
from bot.model import DEFAULT_CLUSTER, Change, ChangeKind
from bot.store.changes import ChangeStore
from bot.store.digests import DigestLedger
from bot.store.events import EventStore, WarningEvent
from bot.text import clip

log = logging.getLogger(__name__)

DEFAULT_CRON = "0 9 * * mon-fri"
LINES_PER_SECTION = 5
MORE_COMMAND = "changes -n <namespace> --since 24h"
"""What the footer suggests typing for more (plain text: `<namespace>` is a placeholder the renderer escapes)."""
MORE_IN_CLUSTER = "changes -n <namespace> --cluster <cluster> --since 24h"
"""The same, when the digest covers several clusters."""

Globs = tuple[str, ...]
PerCluster = tuple[tuple[str, Globs], ...]
"""(cluster name, namespace globs) pairs."""


@dataclass(frozen=True, slots=True)
class DigestTeam:
    """A team's channel and the namespaces (globs) it cares about (from permissions.yaml, or configured).

    `namespaces` apply in every cluster unless `per_cluster` is given: then each named cluster has its
    own globs, and a cluster it does not name (or names with none) adds nothing to the digest. `unless`
    holds, per cluster, the globs other teams claim: the default channel's digest leaves those out."""

    channel: str
    namespaces: Globs = ("*",)
    per_cluster: PerCluster | None = None
    unless: PerCluster = ()

    def globs_in(self, cluster: str | None) -> Globs:
        """The namespace globs this team covers in `cluster` (None: the digest's only cluster)."""
        if self.per_cluster is None:
            return self.namespaces
        return next((globs for name, globs in self.per_cluster if name == cluster), ())

    def claimed_in(self, cluster: str | None) -> Globs:
        """The globs other teams claim in `cluster`, left out of this digest."""
        return next((globs for name, globs in self.unless if name == cluster), ())

    def serves(self, cluster: str | None) -> bool:
        """Whether anything of `cluster` can be in this team's digest."""
        return bool(self.globs_in(cluster))

    def covers(self, namespace: str | None, cluster: str | None = None) -> bool:
        """Whether the team's digest shows what happened in `namespace` (None: cluster-scoped, such as a
        Node) of `cluster`."""
        if not self.serves(cluster):
            return False
        if namespace is None:
            return True
        return _matches(namespace, self.globs_in(cluster)) and not _matches(namespace, self.claimed_in(cluster))


def _matches(namespace: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(namespace, p) for p in globs)


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert for the digest: the alerting work provides these (see `AlertProvider`)."""

    namespace: str | None
    text: str
    cluster: str = DEFAULT_CLUSTER
    """The cluster the alert is about."""


AlertProvider = Callable[[datetime, datetime], Iterable[AlertLine]]
"""(start, end) → the alerts raised in that window. Optional: the digest works without alerting."""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled list of plain-text lines (names, summaries and event messages from the cluster)."""

    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterPart:
    """One cluster's part of a digest that covers several: its sections and the team's globs there."""

    cluster: str
    sections: tuple[Section, ...]
    namespaces: Globs = ()
    """The team's namespaces (globs) in this cluster; empty: all namespaces."""

    @property
    def heading(self) -> str:
        return f"Cluster {self.cluster}" + ("" if self.sections else ": nothing to report")

    @property
    def scope(self) -> str:
        return f"{self.cluster}: {_scope(self.namespaces)}"


@dataclass(frozen=True, slots=True)
class Digest:
    """One team's digest of one period, as plain-text parts: a renderer escapes and lays them out.

    A digest of one cluster has `sections`; one covering several clusters has `clusters` instead (each
    with its own sections), in the configured order."""

    channel: str
    period: str
    title: str
    sections: tuple[Section, ...]
    namespaces: Globs = ()
    """The team's namespaces (globs); empty: all namespaces."""
    more: str = MORE_COMMAND
    """The `/k8s` command that shows more."""
    clusters: tuple[ClusterPart, ...] = ()
    """Per cluster, when the digest covers several."""

    @property
    def empty(self) -> bool:
        return not self.sections and not any(part.sections for part in self.clusters)

    @property
    def scope(self) -> str:
        if self.clusters:
            return "; ".join(part.scope for part in self.clusters)
        return _scope(self.namespaces)

    @property
    def footer(self) -> str:
        return f"More: /k8s {self.more}  ({self.scope})"

    def text(self) -> str:
        """The digest as plain text (logs and tests; Slack gets `bot.slack.digest.render_digest`)."""
        parts = [self.title]
        for heading, sections in [(None, self.sections), *((p.heading, p.sections) for p in self.clusters)]:
            if heading is not None:
                parts += ["", f"== {heading} =="]
            for section in sections:
                parts.append("")
                parts.append(section.title)
                parts += [f"• {line}" for line in section.lines]
        parts += ["", self.footer]
        return "\n".join(parts)


def _scope(namespaces: Globs) -> str:
    return ", ".join(namespaces) if namespaces else "all namespaces"


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
    clusters: Sequence[str] = (),
) -> Digest:
    """The digest of `period` for `team`: one section per kind of change, lines grouped by namespace.

    `clusters`: the clusters the bot serves, in order (the stores may hold every cluster's rows: each
    row names its own). Of several, the digest is grouped by cluster; empty: the stores' rows, ungrouped."""
    everything = changes.query(since=period.start, until=period.end, limit=5000)
    node_events = events.since(period.start, end=period.end, involved_kind="Node", limit=20 * max(1, len(clusters)))
    raised = _alerts_in(alerts, period) if alerts is not None else None
    when = f"Daily digest for {period.name}"
    title = f"{when} (sent late: I was not running then)" if late else when
    if len(clusters) > 1:
        parts = tuple(
            ClusterPart(
                name,
                _sections(team, name, everything, node_events, raised),
                namespaces=_shown(team, name),
            )
            for name in clusters
            if team.serves(name)
        )
        digest = Digest(team.channel, period.name, title, (), more=MORE_IN_CLUSTER, clusters=parts)
    else:
        only = clusters[0] if clusters else None
        if only is not None:  # rows of a cluster no longer configured are not this digest's
            everything = [c for c in everything if c.cluster == only]
            node_events = [e for e in node_events if e.cluster == only]
        sections = _sections(team, only, everything, node_events, raised)
        digest = Digest(team.channel, period.name, title, sections, namespaces=_shown(team, only))
    if digest.empty:
        return replace(digest, title=title + ": no deploys, rollbacks, scale or config changes")
    return digest


UNCLAIMED = "namespaces no team claims"


def _shown(team: DigestTeam, cluster: str | None) -> Globs:
    """A team's globs in `cluster` as the footer names them (everything: none named)."""
    if team.claimed_in(cluster):
        return (UNCLAIMED,)
    globs = team.globs_in(cluster)
    return globs if globs != ("*",) else ()


def _sections(
    team: DigestTeam,
    cluster: str | None,
    everything: Sequence[Change],
    node_events: Sequence[WarningEvent],
    raised: Sequence[AlertLine] | str | None,
) -> tuple[Section, ...]:
    """The team's sections of what happened in `cluster` (None: every row given)."""

    def here(c: Change) -> bool:
        return cluster is None or c.cluster == cluster

    found = [c for c in everything if here(c) and not c.external and team.covers(c.ref.namespace, c.cluster)]
    external = [c for c in everything if here(c) and c.external and team.covers(_namespace_of(c), c.cluster)]
    sections: list[Section] = []
    for title, kinds in SECTIONS:
        lines = _grouped([c for c in found if c.kind in kinds and c.ref.namespace], _change_line)
        if lines:
            sections.append(Section(f"{title} ({_count(found, kinds)})", lines))
    if external:
        lines = _grouped(external, _external_line, namespace_of=lambda c: _namespace_of(c) or "cluster")
        sections.append(Section(f"Changes from outside the cluster ({len(external)})", lines))
    events = [e for e in node_events if (cluster is None or e.cluster == cluster) and team.covers(None, e.cluster)]
    node_lines = _node_lines(found, events)
    if node_lines:
        sections.append(Section("Nodes", node_lines))
    if raised is not None:
        alert_lines = _alert_lines(team, cluster, raised)
        if alert_lines:
            sections.append(Section("Alerts", alert_lines))
    return tuple(sections)


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


def _node_lines(found: Sequence[Change], events: Sequence[WarningEvent]) -> tuple[str, ...]:
    lines = [
        f"{c.ref.name}: {c.summary}"
        for c in found
        if c.ref.kind == "Node" and c.kind in (ChangeKind.NODE_CONDITION, ChangeKind.SPEC)
    ]
    for event in events[:20]:
        lines.append(f"{event.involved.name}: {event.reason} ×{event.count}: {clip(event.message, 100)}")
    return tuple(lines[:LINES_PER_SECTION])


UNAVAILABLE = "(alerts unavailable)"


def _alerts_in(alerts: AlertProvider, period: Period) -> list[AlertLine] | str:
    """The alerts of the period, or UNAVAILABLE when they could not be read."""
    try:
        return list(alerts(period.start, period.end))
    except Exception:  # alerting is optional here: the digest still goes out
        log.exception("alerts for the digest failed")
        return UNAVAILABLE


def _alert_lines(team: DigestTeam, cluster: str | None, raised: Sequence[AlertLine] | str) -> tuple[str, ...]:
    if isinstance(raised, str):
        return (raised,)
    found = [a for a in raised if (cluster is None or a.cluster == cluster) and team.covers(a.namespace, a.cluster)]
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
        clusters: Sequence[str] = (),
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
        self.clusters = tuple(clusters)
        """The clusters the bot serves, in order: of several, each digest is grouped by cluster."""
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
                team,
                period=period,
                changes=self.changes,
                events=self.events,
                alerts=self.alerts,
                late=late,
                clusters=self.clusters,
            )
            self.post(digest)
        except Exception:
            self.ledger.release(team.channel, period.name)  # not sent: the next run (or restart) tries again
            log.exception("digest for %s (%s) failed", team.channel, period.name)
            return None
        log.info("digest for %s sent (%s)", team.channel, period.name)
        return digest
