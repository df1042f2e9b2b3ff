"""The change recorder: what the watchers see becomes recorded changes, stored events and callbacks.

It is the `WatchSink` of `bot.kube.watching`. The first listing of a kind is a baseline (states are
stored, nothing is recorded); later listings and every watch event are compared with the stored
last-seen state, so a restart or a re-list records what differs exactly once, and the store refuses
a second change for the same (uid, resourceVersion). Features that react to what the watchers see
(alerting) `subscribe(on_change=, on_event=, on_object=)` before the watch starts.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.changes.diffing import build_change, snapshot
from bot.clock import Clock, utcnow
from bot.kube.watching import Pages, WatchedKind
from bot.model import Change, ChangeKind, KubeObject, ObjectRef, ObjectState
from bot.redaction import DEFAULT, Redactor
from bot.store.changes import ChangeStore, Recorded
from bot.store.events import EventStore, WarningEvent, warning_event_of

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Change], None]
EventCallback = Callable[[WarningEvent], None]
ObjectCallback = Callable[[str, str, KubeObject], None]
"""(kind, event type "ADDED" | "MODIFIED" | "DELETED" | "LISTED", the object as the API sent it)."""
ListedCallback = Callable[[str, str], None]
"""(kind, resourceVersion): a full listing of the kind ended; objects it did not contain are gone."""

CHECKPOINT_EVERY = 10.0  # seconds; a checkpoint that lags only makes a restart re-compare a few events


DEFAULT_KINDS: tuple[WatchedKind, ...] = (
    *(
        WatchedKind(kind)
        for kind in (
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ConfigMap",
            "Secret",
            "Service",
            "Ingress",
            "HorizontalPodAutoscaler",
            "ResourceQuota",
            "LimitRange",
            "PodDisruptionBudget",
            "Job",
            "CronJob",
            "Node",
            "Namespace",
        )
    ),
    WatchedKind("Event", mode="events", field_selector="type=Warning"),
)
SILENT_KINDS = frozenset({"ReplicaSet"})
"""Kinds whose state is kept (a ReplicaSet's revision and template, for rollbacks) but whose changes are
controller bookkeeping, not something a person did."""


@dataclass(frozen=True, slots=True)
class NamespaceFilter:
    """Which namespaces are watched: those matching an `include` glob and no `exclude` glob."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def allows(self, namespace: str | None) -> bool:
        if namespace is None:
            return True
        if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.exclude):
            return False
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.include)

    def allows_object(self, kind: str, obj: KubeObject) -> bool:
        meta = obj.get("metadata") or {}
        if kind == "Namespace":
            return self.allows(meta.get("name"))
        if kind == "Event":
            involved = obj.get("involvedObject") or obj.get("regarding") or {}
            return self.allows(involved.get("namespace") or meta.get("namespace"))
        return self.allows(meta.get("namespace"))


class ChangeRecorder:
    """Turns what the watchers see into recorded changes and events, and tells subscribers."""

    def __init__(
        self,
        changes: ChangeStore,
        events: EventStore,
        *,
        namespaces: NamespaceFilter | None = None,
        redactor: Redactor = DEFAULT,
        clock: Clock = utcnow,
    ) -> None:
        self.changes = changes
        self.events = events
        self.namespaces = namespaces or NamespaceFilter()
        self.redactor = redactor
        """Hides what looks secret in every state and Warning message before it is stored."""
        self.clock = clock
        self._on_change: list[ChangeCallback] = []
        self._on_event: list[EventCallback] = []
        self._on_object: list[ObjectCallback] = []
        self._on_listed: list[ListedCallback] = []
        self._lock = threading.Lock()
        self._last_checkpoint: dict[str, float] = {}

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        on_change: ChangeCallback | None = None,
        on_event: EventCallback | None = None,
        on_object: ObjectCallback | None = None,
        on_listed: ListedCallback | None = None,
    ) -> Callable[[], None]:
        """Register callbacks (called in watcher threads; keep them quick). Returns an unsubscribe function."""
        pairs: list[tuple[list[Any], Any]] = [
            (self._on_change, on_change),
            (self._on_event, on_event),
            (self._on_object, on_object),
            (self._on_listed, on_listed),
        ]
        with self._lock:
            for registry, callback in pairs:
                if callback is not None:
                    registry.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                for registry, callback in pairs:
                    if callback is not None and callback in registry:
                        registry.remove(callback)

        return unsubscribe

    def _notify(self, registry: Sequence[Callable[..., None]], *args: Any) -> None:
        for callback in list(registry):
            try:
                callback(*args)
            except Exception:  # a subscriber's bug must not stop the watch
                log.exception("change subscriber %r failed", callback)

    # -- listings ---------------------------------------------------------------------------------

    def record_listing(self, kind: str, pages: Pages) -> tuple[list[Change], str]:
        """Record a full listing of `kind`. Returns the changes found and the listing's resourceVersion.

        The very first listing of a kind is a baseline: states are stored, no change is recorded.
        Later listings (after a restart or a 410) compare each object with its stored state: what
        differs, appeared or disappeared is recorded once; what is equal records nothing.
        """
        baseline = self.changes.checkpoint(kind) is None
        seen: set[ObjectRef] = set()
        found: list[Change] = []
        resource_version = ""
        for items, page_version in pages:
            resource_version = page_version
            recorded: list[Recorded] = []
            states: list[ObjectState] = []
            for obj in items:
                if not self.namespaces.allows_object(kind, obj):
                    continue
                new = snapshot(kind, obj, fingerprint=self.changes.fingerprint, redactor=self.redactor)
                seen.add(new.ref)
                self._notify(self._on_object, kind, "LISTED", obj)
                if not new.settled:
                    continue  # recorded when its controller has caught up (see diffing._settled)
                old = self.changes.state(new.ref)
                if not baseline:
                    recorded += self._changes_between(old, new, obj)
                states.append(new)
            found += self.changes.commit(changes=recorded, states=states)
        gone = [ref for ref in self.changes.states(kind) if ref not in seen and self.namespaces.allows(ref.namespace)]
        deletions = [] if baseline else [self._deletion(ref) for ref in gone if kind not in SILENT_KINDS]
        found += self.changes.commit(changes=deletions, deleted=gone, checkpoint=(kind, resource_version))
        self._last_checkpoint[kind] = time.monotonic()
        for change in found:
            self._notify(self._on_change, change)
        return found, resource_version

    def _deletion(self, ref: ObjectRef) -> Recorded:
        old = self.changes.state(ref)
        change = Change(ref, self.clock(), ChangeKind.DELETED, "deleted", revision=old.revision if old else None)
        return Recorded(change, uid=old.uid if old else None, resource_version="deleted")

    # -- watch events -----------------------------------------------------------------------------

    def record_event(self, kind: str, event_type: str, obj: KubeObject) -> list[Change]:
        """Record one watch event (ADDED / MODIFIED / DELETED) of `kind`. Returns the changes stored."""
        if not self.namespaces.allows_object(kind, obj):
            return []
        self._notify(self._on_object, kind, event_type, obj)
        new = snapshot(kind, obj, fingerprint=self.changes.fingerprint, redactor=self.redactor)
        checkpoint = self._due_checkpoint(kind, new.resource_version)
        if event_type == "DELETED":
            old = self.changes.state(new.ref)
            recorded = [] if old is None or kind in SILENT_KINDS else [self._deleted(old, new)]
            stored = self.changes.commit(changes=recorded, deleted=[new.ref], checkpoint=checkpoint)
        elif not new.settled:
            stored = self.changes.commit(checkpoint=checkpoint) if checkpoint else []
        else:
            old = self.changes.state(new.ref)
            if old is not None and _older(new, old):
                return []  # a replayed event older than what is stored: recording it would undo a change
            recorded = self._changes_between(old, new, obj)
            unchanged = old is not None and _same_state(old, new)
            if unchanged and checkpoint is None:
                return []
            stored = self.changes.commit(changes=recorded, states=[] if unchanged else [new], checkpoint=checkpoint)
        for change in stored:
            self._notify(self._on_change, change)
        return stored

    def checkpoint(self, kind: str) -> str | None:
        return self.changes.checkpoint(kind)

    def observe(self, kind: str, event_type: str, obj: KubeObject) -> None:
        if self.namespaces.allows_object(kind, obj):
            self._notify(self._on_object, kind, event_type, obj)

    def listed(self, kind: str, resource_version: str) -> None:
        self._notify(self._on_listed, kind, resource_version)

    def record_bookmark(self, kind: str, resource_version: str) -> None:
        self.changes.set_checkpoint(kind, resource_version)
        self._last_checkpoint[kind] = time.monotonic()

    def record_warning(self, obj: KubeObject) -> WarningEvent | None:
        if not self.namespaces.allows_object("Event", obj):
            return None
        event = warning_event_of(obj, now=self.clock())
        if event is None:
            return None
        event = replace(event, message=self.redactor.text(event.message))  # stored and shown redacted
        self.events.record(event)
        self._notify(self._on_event, event)
        return event

    def _due_checkpoint(self, kind: str, resource_version: str) -> tuple[str, str] | None:
        now = time.monotonic()
        if not resource_version or now - self._last_checkpoint.get(kind, 0.0) < CHECKPOINT_EVERY:
            return None
        self._last_checkpoint[kind] = now
        return (kind, resource_version)

    def _deleted(self, old: ObjectState, new: ObjectState) -> Recorded:
        change = Change(old.ref, self.clock(), ChangeKind.DELETED, "deleted", revision=old.revision)
        return Recorded(change, uid=new.uid or old.uid, resource_version="deleted")

    def _changes_between(self, old: ObjectState | None, new: ObjectState, obj: KubeObject) -> list[Recorded]:
        if new.ref.kind in SILENT_KINDS:
            return []
        at = self.clock()
        recorded: list[Recorded] = []
        if old is not None and old.uid and new.uid and old.uid != new.uid:  # deleted and created again
            recorded.append(self._deleted(old, old))
            old = None
        change = build_change(old, new, obj=obj, at=at, rollback_to=self._rollback_target(old, new))
        if change is not None:
            recorded.append(Recorded(change, uid=new.uid, resource_version=new.resource_version))
        return recorded

    def _rollback_target(self, old: ObjectState | None, new: ObjectState) -> int | None:
        """The earlier revision whose pod template a Deployment went back to, if it did."""
        if new.ref.kind != "Deployment" or old is None or old.template_hash == new.template_hash:
            return None
        if not new.template_hash or new.revision is None:
            return None
        earlier = self.changes.first_revision_of_template(
            namespace=new.ref.namespace, owner=new.ref.name, template_hash=new.template_hash
        )
        return earlier if earlier is not None and earlier < new.revision else None


def _older(new: ObjectState, old: ObjectState) -> bool:
    """True when `new` is an earlier version of the same object than `old`.

    resourceVersions are opaque to clients in general, but every API server backed by etcd hands out
    increasing integers; when both are integers, an older one is a replay and must not count.
    """
    if new.uid != old.uid or not (new.resource_version.isdigit() and old.resource_version.isdigit()):
        return False
    return int(new.resource_version) <= int(old.resource_version)


def _same_state(old: ObjectState, new: ObjectState) -> bool:
    return (old.body, old.revision, old.template_hash, old.owner) == (
        new.body,
        new.revision,
        new.template_hash,
        new.owner,
    )
