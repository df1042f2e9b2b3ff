"""Watching the cluster: one list+watch thread per kind, feeding a ChangeRecorder.

Each `KindWatcher` lists its kind (in pages), then watches from the list's resourceVersion with
bookmarks; a 410 Gone (an HTTP 410 or an ERROR event with code 410) means "too old" and triggers a
re-list; a dropped connection or an unavailable API server backs off and resumes from the last
resourceVersion seen. Nothing is lost or recorded twice across reconnects and restarts because the
recorder compares every object with its stored last-seen state (see `ChangeRecorder`), and the
store refuses a second change for the same (uid, resourceVersion).

The recorder also has a small subscription hook, `subscribe(on_change=, on_event=, on_object=)`,
for features that react to what the watchers see (alerting); `WatchedKind(kind, mode="objects")`
watches a kind only for those callbacks, without recording changes (Pods, for instance).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3

from bot.errors import ClusterUnavailable, K8sBotError
from bot.kube.client import Gone, KubeClient, iter_lines
from bot.kube.diffing import ObjectState, build_change, snapshot
from bot.kube.kinds import KINDS
from bot.model import Change, ChangeKind, KubeObject, ObjectRef
from bot.store.changes import ChangeStore, Recorded
from bot.store.events import EventStore, WarningEvent, warning_event_of

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Change], None]
EventCallback = Callable[[WarningEvent], None]
ObjectCallback = Callable[[str, str, KubeObject], None]
"""(kind, event type "ADDED" | "MODIFIED" | "DELETED" | "LISTED", the object as the API sent it)."""

PAGE_SIZE = 500
CHECKPOINT_EVERY = 10.0  # seconds; a checkpoint that lags only makes a restart re-compare a few events


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """A kind to watch and what to do with it: record "changes", store "events", or only "objects" callbacks."""

    kind: str
    mode: str = "changes"
    field_selector: str | None = None


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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.changes = changes
        self.events = events
        self.namespaces = namespaces or NamespaceFilter()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._on_change: list[ChangeCallback] = []
        self._on_event: list[EventCallback] = []
        self._on_object: list[ObjectCallback] = []
        self._lock = threading.Lock()
        self._last_checkpoint: dict[str, float] = {}

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        on_change: ChangeCallback | None = None,
        on_event: EventCallback | None = None,
        on_object: ObjectCallback | None = None,
    ) -> Callable[[], None]:
        """Register callbacks (called in watcher threads; keep them quick). Returns an unsubscribe function."""
        pairs: list[tuple[list[Any], Any]] = [
            (self._on_change, on_change),
            (self._on_event, on_event),
            (self._on_object, on_object),
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

    def record_listing(self, kind: str, pages: Iterator[tuple[list[KubeObject], str]]) -> tuple[list[Change], str]:
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
                new = snapshot(kind, obj, fingerprint=self.changes.fingerprint)
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
        new = snapshot(kind, obj, fingerprint=self.changes.fingerprint)
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

    def record_bookmark(self, kind: str, resource_version: str) -> None:
        self.changes.set_checkpoint(kind, resource_version)
        self._last_checkpoint[kind] = time.monotonic()

    def record_warning(self, obj: KubeObject) -> WarningEvent | None:
        if not self.namespaces.allows_object("Event", obj):
            return None
        event = warning_event_of(obj, now=self.clock())
        if event is None:
            return None
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


# -- the watch loop -------------------------------------------------------------------------------


class KindWatcher:
    """Lists and watches one kind across all namespaces, forever, until `stop` is set."""

    def __init__(
        self,
        kube: KubeClient,
        watched: WatchedKind,
        recorder: ChangeRecorder,
        *,
        stop: threading.Event,
        watch_seconds: int = 240,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        # a client of its own: its connection can be shut down without touching anyone else's
        self.kube = KubeClient(kube.configuration)
        self.watched = watched
        self.recorder = recorder
        self.stop = stop
        self.watch_seconds = watch_seconds
        self.backoff = backoff
        self.path = KINDS[watched.kind].path()
        self.relists = 0
        self.reconnects = 0
        self.events_seen = 0
        self.synced = threading.Event()
        """Set once the first listing of this run is recorded (tests and the CLI wait on it)."""
        self._response: urllib3.BaseHTTPResponse | None = None
        self.resource_version: str | None = None
        """The newest resourceVersion seen: where a dropped watch resumes."""

    @property
    def kind(self) -> str:
        return self.watched.kind

    def run(self) -> None:
        self.resource_version = self.recorder.changes.checkpoint(self.kind) if self.watched.mode == "changes" else None
        if self.resource_version is not None:
            self.synced.set()  # resuming from a checkpoint: the stored states are the sync point
        delay = self.backoff[0]
        while not self.stop.is_set():
            try:
                if self.resource_version is None:
                    self.resource_version = self._list()
                self._watch(self.resource_version)
                delay = self.backoff[0]
            except Gone:
                log.info("watch %s: resourceVersion too old, listing again", self.kind)
                self.relists += 1
                self.resource_version = None
            except K8sBotError as e:
                if self.stop.is_set():
                    break
                self.reconnects += 1
                log.warning("watch %s interrupted (%s); retrying in %.1fs", self.kind, e, delay)
                self.stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, self.backoff[1])
            except Exception:  # the watcher loop is an edge: log, back off, go on
                log.exception("watch %s failed; retrying in %.1fs", self.kind, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])

    def interrupt(self) -> None:
        """Drop the current watch connection (the loop reconnects unless stopping)."""
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # already closed
                log.debug("watch %s: shutdown of a closed response", self.kind)

    # -- list -------------------------------------------------------------------------------------

    def _list(self) -> str:
        pages = self._pages()
        if self.watched.mode == "changes":
            _, resource_version = self.recorder.record_listing(self.kind, pages)
        else:
            resource_version = ""
            for items, page_version in pages:
                resource_version = page_version
                for obj in items:
                    self._dispatch("LISTED", obj)
        self.synced.set()
        return resource_version

    def _pages(self) -> Iterator[tuple[list[KubeObject], str]]:
        token: str | None = None
        while True:
            page = self.kube.get(self.path, limit=PAGE_SIZE, fieldSelector=self.watched.field_selector, **_cont(token))
            meta = page.get("metadata") or {}
            kind = self.kind
            items = [{**item, "kind": kind} for item in page.get("items") or []]
            yield items, str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return

    # -- watch ------------------------------------------------------------------------------------

    def _watch(self, resource_version: str) -> None:
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_seconds + random.randint(0, 30)),  # noqa: S311 - spread reconnects
            "fieldSelector": self.watched.field_selector,
        }
        response = self.kube.open_stream(self.path, query=query, timeout=self.watch_seconds + 60)
        self._response = response
        try:
            for line in iter_lines(response):
                if self.stop.is_set():
                    break
                self.resource_version = self._handle(json.loads(line), self.resource_version or resource_version)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            if not self.stop.is_set():
                raise ClusterUnavailable(f"watch {self.kind} dropped: {e}") from e
        finally:
            self._response = None
            response.release_conn()

    def _handle(self, event: dict[str, Any], resource_version: str) -> str:
        event_type = event.get("type")
        obj = event.get("object") or {}
        if event_type == "ERROR":
            if obj.get("code") == 410:
                raise Gone(str(obj.get("message") or "too old resource version"))
            raise ClusterUnavailable(f"watch {self.kind} error: {obj.get('message')}")
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or resource_version)
        if event_type == "BOOKMARK":
            if self.watched.mode == "changes":
                self.recorder.record_bookmark(self.kind, new_version)
            return new_version
        self.events_seen += 1
        self._dispatch(str(event_type), {**obj, "kind": self.kind})
        return new_version

    def _dispatch(self, event_type: str, obj: KubeObject) -> None:
        if self.watched.mode == "changes":
            self.recorder.record_event(self.kind, event_type, obj)
        elif self.watched.mode == "events":
            if event_type != "DELETED":
                self.recorder.record_warning(obj)
        elif self.recorder.namespaces.allows_object(self.kind, obj):
            self.recorder._notify(self.recorder._on_object, self.kind, event_type, obj)


def _cont(token: str | None) -> dict[str, str]:
    return {"continue": token} if token else {}


class Watchers:
    """All the kind watchers, one thread each. `start()`, then `stop()` ends them promptly."""

    def __init__(
        self,
        kube: KubeClient,
        recorder: ChangeRecorder,
        *,
        kinds: Sequence[WatchedKind] = DEFAULT_KINDS,
        watch_seconds: int = 240,
    ) -> None:
        self.stop_event = threading.Event()
        self.recorder = recorder
        self.watchers = [
            KindWatcher(kube, watched, recorder, stop=self.stop_event, watch_seconds=watch_seconds) for watched in kinds
        ]
        self._threads: list[threading.Thread] = []

    def __getitem__(self, kind: str) -> KindWatcher:
        return next(w for w in self.watchers if w.kind == kind)

    def start(self) -> None:
        for watcher in self.watchers:
            thread = threading.Thread(target=watcher.run, name=f"watch-{watcher.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_synced(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.synced.wait(max(0.0, deadline - time.monotonic())) for w in self.watchers)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for watcher in self.watchers:
            watcher.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
