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
from bot.alerting.grouping import Timing
from bot.changes.recording import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter
from bot.changes.tracking import ChangeTracker
from bot.clock import Clock, utcnow
from bot.commands.context import CommandServices, Placement
from bot.commands.registry import VerbRegistry
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.digest.content import AlertLine, DigestSender, DigestTeam
from bot.errors import ClusterUnavailable, ConfigError
from bot.integrations.alertmanager import AlertmanagerReceiver
from bot.integrations.external import ExternalChanges
from bot.integrations.receiving import Receivers
from bot.kube.cache import CACHE_KINDS, WatchCache
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.kube.watching import WatchedKind
from bot.permissions.engine import PermissionEngine
from bot.permissions.identity import Directory
from bot.permissions.policy import Policy, PolicyFile
from bot.redaction import RedactionRules, Redactor
from bot.settings import Settings
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
class Core:
    """The bot without its Slack connection: stores, the change recorder, permissions, the command path."""

    settings: Settings
    kube: KubeClient
    database: Database
    changes: ChangeStore
    events: EventStore
    alerts: AlertStore
    outbox: Outbox
    inbox: AlertInbox
    """Alertmanager's alerts as received (any replica writes, the leader's alert engine reads)."""
    audit: AuditLog
    recorder: ChangeRecorder
    redactor: Redactor
    """The one redaction: the configured rules with this database's secret fingerprint."""
    permissions: PermissionEngine | None
    commands: CommandServices
    buttons: ButtonCommands
    """Commands too long for a button's value, kept for the click."""
    renderer: AnswerRenderer
    """How answers become Slack messages (the cluster's name, buttons through `buttons`)."""
    poster: Poster | None
    """The bot's Slack poster, when a Slack client was given."""
    clock: Clock
    cache: WatchCache | None = None
    """The watch cache (`watch_cache`), fed by the change tracker's watchers while they run."""


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
    """The bot's own client; an unconfigured one (every call explains why) when there is no cluster."""
    try:
        return KubeClient.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    except ClusterUnavailable as e:
        log.info("%s", e)
        return UnconfiguredKubeClient(str(e))


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
    kubeconfig's client, `verbs` the discovered verbs and `directory` Slack's user groups (tests)."""
    kube = kube or connect_kube(settings)
    database = Database(settings.db, legacy_cluster=settings.cluster_name)
    retention = timedelta(days=settings.retention_days)
    cluster = settings.cluster_name
    changes = ChangeStore(database, retention=retention, clock=clock, cluster=cluster)
    events = EventStore(database, retention=retention, clock=clock, cluster=cluster)
    redactor = build_redactor(settings, fingerprint=changes.fingerprint)
    poster = Poster(slack) if slack is not None else None
    audit = AuditLog(
        database,
        announce=AuditChannel(poster, settings.audit_channel)
        if poster is not None and settings.audit_channel
        else None,
        clock=clock,
        cluster=cluster,
    )
    buttons = ButtonCommands(database, retention=retention, clock=clock)
    verbs = verbs or VerbRegistry.discover()
    engine: PermissionEngine | None = None
    if permissions:
        path = check_permissions_file(settings)
        if directory is None and slack is not None:
            directory = SlackDirectory(slack)
        engine = PermissionEngine(PolicyFile(path, verbs=verbs.names()), kube=kube, directory=directory)
    recorder = ChangeRecorder(
        changes,
        events,
        namespaces=NamespaceFilter(tuple(settings.watch_namespaces), tuple(settings.ignore_namespaces)),
        redactor=redactor,
        clock=clock,
    )
    alerts = AlertStore(database, clock=clock, cluster=cluster)
    cache = WatchCache(allows=recorder.namespaces.allows) if settings.watch_cache else None
    commands = CommandServices(
        kube=kube,
        audit=audit,
        changes=changes,
        alerts=alerts,
        verbs=verbs,
        analyzers=AnalyzerRegistry.discover(),
        permissions=engine,
        placement=Placement(settings.cluster_name, dict(settings.channel_namespaces), settings.default_namespace),
        redactor=redactor,
        clock=clock,
        cache=cache,
    )
    return Core(
        settings=settings,
        kube=kube,
        database=database,
        changes=changes,
        events=events,
        alerts=alerts,
        outbox=Outbox(database, clock=clock),
        inbox=AlertInbox(database, clock=clock, retention=retention, cluster=cluster),
        audit=audit,
        recorder=recorder,
        redactor=redactor,
        permissions=engine,
        commands=commands,
        buttons=buttons,
        renderer=AnswerRenderer(settings.cluster_name, StoredButtonValues(buttons)),
        poster=poster,
        clock=clock,
        cache=cache,
    )


# -- the integrations' receivers (docs/integrations.md) ---------------------------------------------


def build_receivers(core: Core) -> Receivers:
    """What `/integrations/...` hands its bodies to. Served only when `integration_token` is set.
    Alertmanager's alerts are stored here (any replica) and taken in by the leader's alert engine."""
    return Receivers(
        alertmanager=AlertmanagerReceiver(core.inbox, clock=core.clock),
        changes=ExternalChanges(changes=core.changes, redactor=core.redactor, clock=core.clock),
    )


# -- what `k8sbot run` runs beside the Slack connection ---------------------------------------------


@dataclass(frozen=True)
class Background:
    """The change tracker, the alert engine and the digest, built and ready to start."""

    tracker: ChangeTracker
    alerting: AlertEngine
    digest: DigestSender


def build_background(core: Core, poster: Poster) -> Background:
    settings = core.settings
    alerting = AlertEngine(
        alerts=core.alerts,
        outbox=core.outbox,
        kube=core.kube,
        recorder=core.recorder,
        poster=SlackAlertPoster(poster),
        messages=BlockKitAlerts(values=StoredButtonValues(core.buttons)),
        analyzers=core.commands.analyzers,
        settings=AlertSettings(
            cluster_name=settings.cluster_name,
            default_channel=settings.default_channel,
            timing=Timing(settle=settings.alert_settle_seconds, resolve_after=settings.alert_resolve_seconds),
            label_map=dict(settings.alertmanager_label_map),
        ),
        inbox=core.inbox,
        policy=current_policy(core.permissions),
        redactor=core.redactor,
        clock=core.clock,
    )
    digest = DigestSender(
        DigestLedger(core.database, clock=core.clock),
        changes=core.changes,
        events=core.events,
        teams=digest_teams(current_policy(core.permissions)(), settings),
        post=SlackDigests(poster),
        cron=settings.digest_cron,
        timezone=settings.timezone,
        alerts=alert_lines(core.alerts),
        clock=core.clock,
    )
    tracker = ChangeTracker(
        kube=core.kube,
        recorder=core.recorder,
        kinds=watched_kinds(cache=core.cache is not None),
        cache=core.cache,
    )
    return Background(tracker=tracker, alerting=alerting, digest=digest)


def current_policy(engine: PermissionEngine | None) -> Callable[[], Policy | None]:
    """The permission file's current policy (reloaded as it changes), for routing and digests."""

    def current() -> Policy | None:
        return engine.policy if engine is not None else None

    return current


def digest_teams(policy: Policy | None, settings: Settings) -> list[DigestTeam]:
    """Team channels from permissions.yaml; the default channel gets what no team claims."""
    teams = [
        DigestTeam(channel=team.channel, namespaces=tuple(team.namespaces))
        for team in (policy.teams.values() if policy else ())
        if team.channel
    ]
    if settings.default_channel and not any(t.channel == settings.default_channel for t in teams):
        teams.append(DigestTeam(channel=settings.default_channel, namespaces=("*",)))
    return teams


def alert_lines(store: AlertStore) -> Callable[[datetime, datetime], Iterator[AlertLine]]:
    """The digest's view of alerting: the alerts fired inside a period."""

    def lines(start: datetime, end: datetime) -> Iterator[AlertLine]:
        hours = max(1, math.ceil((end - start).total_seconds() / 3600))
        for namespace, records in store.recent_by_namespace(now=end, hours=hours).items():
            for record in records:
                if record.fired_at >= start:
                    state = "resolved" if record.resolved_at else record.state
                    yield AlertLine(namespace or None, f"{record.title} ({state})")

    return lines


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
