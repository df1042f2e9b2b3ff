"""The composition root: every long-lived component, built once, with explicit arguments.

`build_core` makes the bot without its Slack connection (what `ask`, `watch`, `run` and the operator
commands share); it is given the Slack Web API client when there is one, for the user-group directory
and the audit channel. `build_background` adds what `k8sbot run` runs beside the Slack connection:
the change tracker's watchers, the alert engine and the digest scheduler. Nothing here is looked up
by name later: each component gets the others it needs as constructor arguments, and mypy checks it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from slack_sdk import WebClient

from bot.alerting.engine import ALERT_KINDS, AlertEngine, AlertSettings
from bot.alerting.external import ClusterLabel
from bot.alerting.grouping import Timing
from bot.alerting.sending import OutboxSender
from bot.changes.recording import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter
from bot.changes.tracking import ChangeTracker
from bot.clock import Clock, utcnow
from bot.commands.context import CommandServices, Placement
from bot.commands.registry import VerbRegistry
from bot.commands.routing import ClusterRouter
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.digest.content import AlertLine, DigestSender, DigestTeam
from bot.errors import ClusterUnavailable, ConfigError
from bot.integrations.alertmanager import AlertmanagerReceiver
from bot.integrations.external import ExternalChanges
from bot.integrations.receiving import Receivers
from bot.kube.cache import CACHE_KINDS, WatchCache
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.kube.reachability import Reachability
from bot.kube.watching import WatchedKind
from bot.permissions.engine import PermissionEngine
from bot.permissions.identity import Directory
from bot.permissions.policy import Policy, PolicyFile
from bot.redaction import RedactionRules, Redactor
from bot.settings import ClusterConfig, Settings
from bot.slack.alerts import BlockKitAlerts, SlackAlertPoster
from bot.slack.audit import AuditChannel
from bot.slack.blocks import AnswerRenderer
from bot.slack.buttons import StoredButtonValues
from bot.slack.client import Poster
from bot.slack.digest import SlackDigests
from bot.slack.directory import SlackDirectory
from bot.store.alerts import AlertStore
from bot.store.audit import AuditLog
from bot.store.buttons import ButtonCommands
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.digests import DigestLedger
from bot.store.events import EventStore
from bot.store.inbox import AlertInbox
from bot.store.outbox import Outbox

log = logging.getLogger(__name__)

WATCHED_KINDS = (*DEFAULT_KINDS, *ALERT_KINDS)
"""What `k8sbot run` watches: the change tracker's kinds plus what alerting needs (Pods)."""


def watched_kinds(*, cache: bool) -> tuple[WatchedKind, ...]:
    """`WATCHED_KINDS`, and with the watch cache: Events of every type (a Deployment's scaling events
    are Normal ones) and the kinds only the cache needs (EndpointSlices, quotas, PVCs)."""
    if not cache:
        return WATCHED_KINDS
    kinds = [WatchedKind(w.kind, mode=w.mode) if w.kind == "Event" else w for w in WATCHED_KINDS]
    held = {w.kind for w in kinds}
    return (*kinds, *(WatchedKind(k, mode="objects") for k in CACHE_KINDS if k not in held))


@dataclass(frozen=True)
class ClusterCore:
    """One cluster's part of the bot: its client, change recorder, watch cache, the stores scoped to it,
    its permission engine and command services, and whether it answers."""

    name: str
    kube: KubeClient
    changes: ChangeStore
    events: EventStore
    alerts: AlertStore
    audit: AuditLog
    recorder: ChangeRecorder
    permissions: PermissionEngine | None
    commands: CommandServices
    reachability: Reachability
    inbox: AlertInbox
    """Alertmanager's alerts about this cluster as received (any replica writes, the leader's alert
    engine of this cluster reads)."""
    cache: WatchCache | None = None
    """The watch cache (`watch_cache`), fed by this cluster's watchers while they run."""


@dataclass(frozen=True)
class Core:
    """The bot without its Slack connection: one store, the clusters, the command path."""

    settings: Settings
    database: Database
    clusters: tuple[ClusterCore, ...]
    """Every configured cluster, in the configured order; the first is home: it holds the Lease."""
    router: ClusterRouter
    """Which cluster a command is for, and its command services (bot.commands.routing)."""
    outbox: Outbox
    redactor: Redactor
    """The one redaction: the configured rules with this database's secret fingerprint."""
    buttons: ButtonCommands
    """Commands too long for a button's value, kept for the click."""
    renderer: AnswerRenderer
    """How answers become Slack messages (the cluster's name, buttons through `buttons`)."""
    poster: Poster | None
    """The bot's Slack poster, when a Slack client was given."""
    clock: Clock

    @property
    def home(self) -> ClusterCore:
        """The first cluster: where the Lease is held, and the one cluster of a single-cluster bot."""
        return self.clusters[0]

    def cluster(self, name: str) -> ClusterCore:
        return next(c for c in self.clusters if c.name == name)

    # The home cluster's parts, by the names a single-cluster bot has always used.
    @property
    def kube(self) -> KubeClient:
        return self.home.kube

    @property
    def changes(self) -> ChangeStore:
        return self.home.changes

    @property
    def events(self) -> EventStore:
        return self.home.events

    @property
    def alerts(self) -> AlertStore:
        return self.home.alerts

    @property
    def audit(self) -> AuditLog:
        return self.home.audit

    @property
    def recorder(self) -> ChangeRecorder:
        return self.home.recorder

    @property
    def permissions(self) -> PermissionEngine | None:
        return self.home.permissions

    @property
    def commands(self) -> CommandServices:
        return self.home.commands

    @property
    def cache(self) -> WatchCache | None:
        return self.home.cache

    @property
    def inbox(self) -> AlertInbox:
        return self.home.inbox


def build_redactor(settings: Settings, *, fingerprint: Callable[[str], str]) -> Redactor:
    """The built-in redaction rules plus `redact_keys` / `redact_token_prefixes`, marking hidden values
    with the database's keyed fingerprint (so `changes`, `why` and alerts show the same marker)."""
    rules = RedactionRules.with_extras(keys=settings.redact_keys, token_prefixes=settings.redact_token_prefixes)
    return Redactor(rules, fingerprint=fingerprint)


def check_permissions_file(settings: Settings) -> Path:
    path = Path(settings.permissions)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"K8SBOT_PERMISSIONS: cannot read {path} (set K8SBOT_PERMISSIONS to your permissions.yaml).")
    return path


def connect_kube(settings: Settings) -> KubeClient:
    """The single cluster's client; an unconfigured one (every call explains why) when there is none."""
    try:
        return KubeClient.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    except ClusterUnavailable as e:
        log.info("%s", e)
        return UnconfiguredKubeClient(str(e))


def connect_cluster(entry: ClusterConfig) -> KubeClient:
    """One entry of `clusters`: a kubeconfig (and context) that cannot be loaded stops the start."""
    try:
        return KubeClient.from_kubeconfig(entry.kubeconfig, context=entry.context)
    except ClusterUnavailable as e:
        raise ConfigError(f"clusters: {entry.name}: {e}") from None


def build_core(
    settings: Settings,
    *,
    permissions: bool,
    slack: WebClient | None = None,
    kube: KubeClient | None = None,
    verbs: VerbRegistry | None = None,
    directory: Directory | None = None,
    clock: Clock = utcnow,
) -> Core:
    """Everything but the Slack connection. With `permissions`, permissions.yaml is loaded (and
    validated) now, so a bad file stops the start with its file:line error. `slack` gives the
    permission engine Slack's user groups and the audit log its channel; `kube` replaces the
    kubeconfig's client of a single-cluster bot, `verbs` the discovered verbs and `directory`
    Slack's user groups (tests)."""
    entries = settings.cluster_configs()
    if kube is not None and len(entries) > 1:
        raise ValueError("`kube` replaces the client of a single-cluster bot only")
    database = Database(settings.db, legacy_cluster=settings.legacy_cluster)
    retention = timedelta(days=settings.retention_days)
    fingerprints = ChangeStore(database, retention=retention, clock=clock, cluster=entries[0].name)  # one key per file
    redactor = build_redactor(settings, fingerprint=fingerprints.fingerprint)
    poster = Poster(slack) if slack is not None else None
    announce = (  # of several clusters, each audit line names its own
        AuditChannel(poster, settings.audit_channel, name_cluster=len(entries) > 1)
        if poster is not None and settings.audit_channel
        else None
    )
    buttons = ButtonCommands(database, retention=retention, clock=clock)
    verbs = verbs or VerbRegistry.discover()
    policy_file: PolicyFile | None = None
    if permissions:
        policy_file = PolicyFile(check_permissions_file(settings), verbs=verbs.names())
        if directory is None and slack is not None:
            directory = SlackDirectory(slack)
    analyzers = AnalyzerRegistry.discover()
    names = tuple(entry.name for entry in entries)
    clusters: list[ClusterCore] = []
    for entry in entries:
        if kube is not None:
            client = kube
        elif settings.clusters:
            client = connect_cluster(entry)
        else:
            client = connect_kube(settings)
        changes = ChangeStore(database, retention=retention, clock=clock, cluster=entry.name)
        events = EventStore(database, retention=retention, clock=clock, cluster=entry.name)
        audit = AuditLog(database, announce=announce, clock=clock, cluster=entry.name)
        engine: PermissionEngine | None = None
        if policy_file is not None:  # one engine per cluster, sharing the file and Slack's user groups
            first = clusters[0].permissions if clusters else None
            engine = (
                first.for_cluster(entry.name, kube=client)
                if first is not None
                else PermissionEngine(policy_file, kube=client, directory=directory, cluster=entry.name)
            )
        recorder = ChangeRecorder(
            changes,
            events,
            namespaces=NamespaceFilter(tuple(settings.watch_namespaces), tuple(settings.ignore_namespaces)),
            redactor=redactor,
            clock=clock,
        )
        alerts = AlertStore(database, clock=clock, cluster=entry.name)
        cache = WatchCache(allows=recorder.namespaces.allows) if settings.watch_cache else None
        commands = CommandServices(
            kube=client,
            audit=audit,
            changes=changes,
            alerts=alerts,
            verbs=verbs,
            analyzers=analyzers,
            permissions=engine,
            placement=Placement(
                entry.name, dict(settings.channel_namespaces), settings.default_namespace, clusters=names
            ),
            redactor=redactor,
            clock=clock,
            cache=cache,
        )
        clusters.append(
            ClusterCore(
                name=entry.name,
                kube=client,
                changes=changes,
                events=events,
                alerts=alerts,
                audit=audit,
                recorder=recorder,
                permissions=engine,
                commands=commands,
                reachability=Reachability(entry.name, clock=clock),
                inbox=AlertInbox(database, clock=clock, retention=retention, cluster=entry.name),
                cache=cache,
            )
        )
    reachability = {c.name: c.reachability for c in clusters}
    router = ClusterRouter(
        {c.name: c.commands for c in clusters},
        channel_clusters=dict(settings.channel_clusters),
        unreachable=lambda name: reachability[name].why_not(),
    )
    return Core(
        settings=settings,
        database=database,
        clusters=tuple(clusters),
        router=router,
        outbox=Outbox(database, clock=clock),
        redactor=redactor,
        buttons=buttons,
        renderer=AnswerRenderer(clusters[0].name, StoredButtonValues(buttons)),
        poster=poster,
        clock=clock,
    )


# -- the integrations' receivers (docs/integrations.md) ---------------------------------------------


def cluster_label(core: Core) -> ClusterLabel:
    """How an Alertmanager alert names its cluster: the configured label, the clusters home first."""
    return ClusterLabel(core.settings.alertmanager_cluster_label, tuple(c.name for c in core.clusters))


def build_receivers(core: Core) -> Receivers:
    """What `/integrations/...` hands its bodies to. Served only when `integration_token` is set.
    Alertmanager's alerts are stored in the inbox of the cluster they name (any replica) and taken
    in by the leader's alert engine of that cluster; external changes with the cluster they name."""
    return Receivers(
        alertmanager=AlertmanagerReceiver(
            [c.inbox for c in core.clusters], clusters=cluster_label(core), clock=core.clock
        ),
        changes=ExternalChanges(changes=[c.changes for c in core.clusters], redactor=core.redactor, clock=core.clock),
    )


# -- what `k8sbot run` runs beside the Slack connection ---------------------------------------------


@dataclass(frozen=True)
class ClusterWork:
    """One cluster's background work: its watchers (the change tracker) and its alert engine."""

    name: str
    tracker: ChangeTracker
    alerting: AlertEngine


@dataclass(frozen=True)
class Background:
    """Every cluster's watchers and alert engine, the one outbox sender and the digest, ready to start."""

    clusters: tuple[ClusterWork, ...]
    sender: OutboxSender
    """Sends the one outbox every cluster's alert engine writes to."""
    digest: DigestSender

    @property
    def tracker(self) -> ChangeTracker:
        """The home cluster's watchers (the single cluster's, by its old name)."""
        return self.clusters[0].tracker

    @property
    def alerting(self) -> AlertEngine:
        """The home cluster's alert engine (the single cluster's, by its old name)."""
        return self.clusters[0].alerting


def build_background(core: Core, poster: Poster) -> Background:
    settings = core.settings
    sender = OutboxSender(core.outbox, SlackAlertPoster(poster), default_channel=settings.default_channel)
    work = []
    for cluster in core.clusters:
        alerting = AlertEngine(
            alerts=cluster.alerts,
            outbox=core.outbox,
            kube=cluster.kube,
            recorder=cluster.recorder,
            poster=SlackAlertPoster(poster),
            messages=BlockKitAlerts(values=StoredButtonValues(core.buttons), name_cluster=len(core.clusters) > 1),
            analyzers=cluster.commands.analyzers,
            settings=AlertSettings(
                cluster_name=cluster.name,
                default_channel=settings.default_channel,
                timing=Timing(settle=settings.alert_settle_seconds, resolve_after=settings.alert_resolve_seconds),
                label_map=dict(settings.alertmanager_label_map),
                clusters=cluster_label(core),
            ),
            inbox=cluster.inbox,
            policy=current_policy(cluster.permissions),
            redactor=core.redactor,
            clock=core.clock,
            sender=sender,
        )
        tracker = ChangeTracker(
            kube=cluster.kube,
            recorder=cluster.recorder,
            kinds=watched_kinds(cache=cluster.cache is not None),
            cache=cluster.cache,
        )
        work.append(ClusterWork(cluster.name, tracker, alerting))
    digest = DigestSender(  # one digest per team covering every cluster: read across clusters
        DigestLedger(core.database, clock=core.clock),
        changes=ChangeStore(core.database, clock=core.clock, cluster=None),
        events=EventStore(core.database, clock=core.clock, cluster=None),
        teams=digest_teams(current_policy(core.permissions)(), settings),
        post=SlackDigests(poster),
        cron=settings.digest_cron,
        timezone=settings.timezone,
        alerts=alert_lines(AlertStore(core.database, clock=core.clock, cluster=None)),
        clock=core.clock,
        clusters=tuple(c.name for c in core.clusters),
    )
    return Background(clusters=tuple(work), sender=sender, digest=digest)


def current_policy(engine: PermissionEngine | None) -> Callable[[], Policy | None]:
    """The permission file's current policy (reloaded as it changes), for routing and digests."""

    def current() -> Policy | None:
        return engine.policy if engine is not None else None

    return current


def digest_teams(policy: Policy | None, settings: Settings) -> list[DigestTeam]:
    """Team channels from permissions.yaml, each with its namespaces in every cluster it has any; the
    default channel gets, in each cluster, what no team's channel claims."""
    names = tuple(entry.name for entry in settings.cluster_configs())
    teams = []
    for team in policy.teams.values() if policy else ():
        scopes = tuple((name, globs) for name in names if (globs := tuple(team.namespaces_in(name))))
        if team.channel and scopes:
            teams.append(DigestTeam(channel=team.channel, per_cluster=scopes))
    owned = {team.channel for team in (policy.teams.values() if policy else ()) if team.channel}
    if settings.default_channel and settings.default_channel not in owned:
        claimed = tuple((name, globs) for name in names if (globs := tuple(g for t in teams for g in t.globs_in(name))))
        everything = tuple((name, ("*",)) for name in names)
        teams.append(DigestTeam(channel=settings.default_channel, per_cluster=everything, unless=claimed))
    return teams


def alert_lines(store: AlertStore) -> Callable[[datetime, datetime], Iterator[AlertLine]]:
    """The digest's view of alerting: the alerts fired inside a period (of every cluster `store` reads)."""

    def lines(start: datetime, end: datetime) -> Iterator[AlertLine]:
        hours = max(1, math.ceil((end - start).total_seconds() / 3600))
        for namespace, records in store.recent_by_namespace(now=end, hours=hours).items():
            for record in records:
                if record.fired_at >= start:
                    state = "resolved" if record.resolved_at else record.state
                    yield AlertLine(namespace or None, f"{record.title} ({state})", cluster=record.cluster)

    return lines


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
