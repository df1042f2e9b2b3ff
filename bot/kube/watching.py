"""Watching the cluster: one list+watch thread per kind, feeding a `WatchSink`.

Each `KindWatcher` lists its kind (in pages), then watches from the list's resourceVersion with
bookmarks; a 410 Gone (an HTTP 410 or an ERROR event with code 410) means "too old" and triggers a
re-list; a dropped connection or an unavailable API server backs off and resumes from the last
resourceVersion seen. What the watchers see goes to the sink: the change tracker's
`bot.changes.recording.ChangeRecorder` in the bot, which compares every object with its stored
last-seen state, so nothing is lost or recorded twice across reconnects and restarts.

`WatchedKind(kind, mode=...)` says what a kind is watched for: "changes" (recorded, resumable from
the sink's checkpoint), "events" (Warning Events stored, every Event passed on) or "objects" (only
passed on, e.g. Pods for alerting and the watch cache). The end of every full listing is passed on
too (`listed`): what a re-listing lacked was deleted while the watch was away.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from bot.errors import ClusterUnavailable, K8sBotError
from bot.kube.client import Gone, KubeClient, iter_lines
from bot.kube.kinds import KINDS
from bot.model import KubeObject

log = logging.getLogger(__name__)

PAGE_SIZE = 500

Pages = Iterator[tuple[list[KubeObject], str]]
"""A listing in pages: (objects, the page's resourceVersion)."""


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """A kind to watch and what to do with it: record "changes", store "events", or only "objects" callbacks."""

    kind: str
    mode: str = "changes"
    field_selector: str | None = None


class WatchSink(Protocol):
    """Where the watchers deliver what they see (called from watcher threads)."""

    def checkpoint(self, kind: str) -> str | None:
        """The resourceVersion a "changes" watch may resume from, None to list first."""

    def record_listing(self, kind: str, pages: Pages) -> tuple[object, str]:
        """A full listing of a "changes" kind; returns (anything, the listing's resourceVersion)."""

    def record_event(self, kind: str, event_type: str, obj: KubeObject) -> object:
        """One watch event (ADDED / MODIFIED / DELETED) of a "changes" kind."""

    def record_bookmark(self, kind: str, resource_version: str) -> None: ...

    def record_warning(self, obj: KubeObject) -> object:
        """One Warning Event ("events" kinds)."""

    def observe(self, kind: str, event_type: str, obj: KubeObject) -> None:
        """An object of an "objects" or "events" kind, listed ("LISTED") or watched."""

    def listed(self, kind: str, resource_version: str) -> None:
        """A full listing of `kind` (any mode) ended at `resource_version`: what it lacked is gone."""


# -- the watch loop -------------------------------------------------------------------------------


class KindWatcher:
    """Lists and watches one kind across all namespaces, forever, until `stop` is set."""

    def __init__(
        self,
        kube: KubeClient,
        watched: WatchedKind,
        sink: WatchSink,
        *,
        stop: threading.Event,
        watch_seconds: int = 240,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        # a client of its own: its connection can be shut down without touching anyone else's
        self.kube = KubeClient(kube.configuration)
        self.watched = watched
        self.sink = sink
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
        self.resource_version = self.sink.checkpoint(self.kind) if self.watched.mode == "changes" else None
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
            _, resource_version = self.sink.record_listing(self.kind, pages)
        else:
            resource_version = ""
            for items, page_version in pages:
                resource_version = page_version
                for obj in items:
                    self._dispatch("LISTED", obj)
        self.sink.listed(self.kind, resource_version)
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
                self.sink.record_bookmark(self.kind, new_version)
            return new_version
        self.events_seen += 1
        self._dispatch(str(event_type), {**obj, "kind": self.kind})
        return new_version

    def _dispatch(self, event_type: str, obj: KubeObject) -> None:
        if self.watched.mode == "changes":
            self.sink.record_event(self.kind, event_type, obj)
        elif self.watched.mode == "events":
            if event_type != "DELETED":
                self.sink.record_warning(obj)  # Warning events are stored; other types are only observed
            self.sink.observe(self.kind, event_type, obj)
        else:
            self.sink.observe(self.kind, event_type, obj)


def _cont(token: str | None) -> dict[str, str]:
    return {"continue": token} if token else {}


class Watchers:
    """All the kind watchers, one thread each. `start()`, then `stop()` ends them promptly."""

    def __init__(
        self,
        kube: KubeClient,
        sink: WatchSink,
        *,
        kinds: Sequence[WatchedKind],
        watch_seconds: int = 240,
    ) -> None:
        self.stop_event = threading.Event()
        self.sink = sink
        self.watchers = [
            KindWatcher(kube, watched, sink, stop=self.stop_event, watch_seconds=watch_seconds) for watched in kinds
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
