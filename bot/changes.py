"""The change tracker as a service: its stores, its recorder, the history other features read, and
`run_watchers`, which `k8sbot run` and `k8sbot watch` call to keep the history current.

Everything is built once per `Services` and kept in `services.extras` ("change_store", "event_store",
"change_recorder"), so a feature that subscribes to the recorder before the watchers start (alerting)
and the watchers themselves share one recorder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.context import Services
from bot.kube.watching import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter, WatchedKind, Watchers
from bot.model import Change, ObjectRef
from bot.store.changes import DEFAULT_RETENTION, ChangeStore
from bot.store.events import EventStore

log = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0


def _retention(services: Services) -> timedelta:
    settings = services.extras.get("settings")
    days = getattr(settings, "retention_days", None)
    return timedelta(days=days) if days else DEFAULT_RETENTION


def change_store(services: Services) -> ChangeStore:
    store: ChangeStore | None = services.extras.get("change_store")
    if store is None:
        store = ChangeStore(services.db, retention=_retention(services), clock=services.clock)
        services.extras["change_store"] = store
    return store


def event_store(services: Services) -> EventStore:
    store: EventStore | None = services.extras.get("event_store")
    if store is None:
        store = EventStore(services.db, retention=_retention(services), clock=services.clock)
        services.extras["event_store"] = store
    return store


def namespace_filter(services: Services) -> NamespaceFilter:
    """From settings `watch_namespaces` / `ignore_namespaces` (globs); everything when not configured."""
    settings = services.extras.get("settings")
    if settings is None:
        return NamespaceFilter()
    return NamespaceFilter(tuple(settings.watch_namespaces), tuple(settings.ignore_namespaces))


def change_recorder(services: Services) -> ChangeRecorder:
    """The one recorder; subscribe to it (`.subscribe(on_change=, on_event=, on_object=)`) before the watch runs."""
    recorder: ChangeRecorder | None = services.extras.get("change_recorder")
    if recorder is None:
        recorder = ChangeRecorder(
            change_store(services), event_store(services), namespaces=namespace_filter(services), clock=services.clock
        )
        services.extras["change_recorder"] = recorder
    return recorder


class ChangeHistory:
    """What diagnosis and alerting read: the recorded changes of some objects since a time."""

    def __init__(self, store: ChangeStore) -> None:
        self.store = store

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        found: list[Change] = []
        for ref in refs:
            found += self.store.query(since=since, ref=ref, limit=50)
        return sorted(found, key=lambda c: (c.at, c.id or 0), reverse=True)

    def changes_in(self, namespace: str | None, since: datetime, *, limit: int = 200) -> list[Change]:
        return self.store.query(since=since, namespace=namespace or "", limit=limit)


def change_history(services: Services) -> ChangeHistory:
    return ChangeHistory(change_store(services))


def run_watchers(
    services: Services,
    stop_event: threading.Event,
    *,
    kinds: Sequence[WatchedKind] = DEFAULT_KINDS,
) -> None:
    """Watch the cluster and record changes until `stop_event` is set; prunes old history hourly.

    Blocks. `k8sbot watch` calls it in the main thread; `k8sbot run` in a thread of its own.
    """
    recorder = change_recorder(services)
    watchers = Watchers(services.kube, recorder, kinds=kinds)
    services.extras["watchers"] = watchers
    watchers.start()
    log.info("watching %s", ", ".join(w.kind for w in watchers.watchers))
    try:
        while True:
            _prune(services)
            if stop_event.wait(PRUNE_EVERY):
                break
    finally:
        watchers.stop()
        log.info("watchers stopped")


def _prune(services: Services) -> None:
    try:
        changes = change_store(services).prune()
        events = event_store(services).prune()
        if changes or events:
            log.info("pruned %d changes and %d events past retention", changes, events)
    except Exception:  # a scheduled chore: log and try again next time
        log.exception("pruning the change history failed")
