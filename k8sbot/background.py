"""The bot's background work, started by `k8sbot run` (and `k8sbot watch` for the watchers alone):

- the shared watchers (one watch per kind) that record changes and feed alerting,
- the alert engine (detection → grouping → outbox → Slack),
- the scheduler (daily digests per team channel, pruning).

Each starter takes the run's stop event; everything ends when it is set.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from bot.alerting.engine import ALERT_KINDS, AlertEngine, AlertSettings
from bot.alerting.grouping import Timing
from bot.changes import change_recorder, run_watchers
from bot.context import Services
from bot.digest import AlertLine, Team
from bot.kube.watching import DEFAULT_KINDS, Watchers
from bot.permissions.engine import engine_of
from bot.permissions.policy import Policy
from bot.scheduling import start_scheduler
from bot.settings import Settings
from bot.slack.client import Poster
from bot.store.alerts import AlertStore

log = logging.getLogger(__name__)

Starter = Callable[[threading.Event], None]
WATCHED_KINDS = (*DEFAULT_KINDS, *ALERT_KINDS)


def _policy(services: Services) -> Callable[[], Policy | None]:
    def current() -> Policy | None:
        engine = engine_of(services)
        return engine.policy if engine is not None else None

    return current


def digest_teams(policy: Policy | None, settings: Settings) -> list[Team]:
    """Team channels from permissions.yaml; the default channel gets what no team claims."""
    teams = [
        Team(channel=team.channel, namespaces=tuple(team.namespaces))
        for team in (policy.teams.values() if policy else ())
        if team.channel
    ]
    if settings.default_channel and not any(t.channel == settings.default_channel for t in teams):
        teams.append(Team(channel=settings.default_channel, namespaces=("*",)))
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


def starters(services: Services, settings: Settings, poster: Poster) -> list[Starter]:
    """What `k8sbot run` starts beside the Slack connection."""

    def watch(stop: threading.Event) -> None:
        def run() -> None:
            try:
                run_watchers(services, stop, kinds=WATCHED_KINDS)
            except Exception:  # the watch loop is an edge: log loudly, keep the bot answering commands
                log.exception("the watchers stopped with an error")

        threading.Thread(target=run, name="watchers", daemon=True).start()

    engine = AlertEngine(
        database=services.db,
        kube=services.kube,
        recorder=change_recorder(services),
        poster=poster,
        settings=AlertSettings(
            cluster_name=settings.cluster_name,
            default_channel=settings.default_channel,
            timing=Timing(settle=settings.alert_settle_seconds, resolve_after=settings.alert_resolve_seconds),
        ),
        policy=_policy(services),
        clock=services.clock,
    )
    services.extras["alert_engine"] = engine

    def synced(timeout: float) -> bool:
        watchers: Watchers | None = services.extras.get("watchers")
        if watchers is None:  # run_watchers has not built them yet
            threading.Event().wait(min(timeout, 0.2))
            return False
        return watchers.wait_synced(timeout)

    def alerts(stop: threading.Event) -> None:
        engine.start(stop, synced=synced)  # subscribes to the recorder before the watchers start

    def schedule(stop: threading.Event) -> None:
        scheduler = start_scheduler(
            services,
            teams=digest_teams(_policy(services)(), settings),
            post=lambda channel, text, blocks=None: poster.post(channel, text=text, blocks=blocks),
            alerts=alert_lines(AlertStore(services.db)),
        )

        def shutdown() -> None:
            stop.wait()
            scheduler.shutdown(wait=False)

        threading.Thread(target=shutdown, name="scheduler-stop", daemon=True).start()

    return [alerts, watch, schedule]  # in this order: alerting subscribes before the watch begins
