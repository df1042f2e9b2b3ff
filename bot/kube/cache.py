"""The watch cache: what the shared watchers see, held in memory so `why`, `status` and `describe`
answer without listing the namespace again.

It holds the kinds a diagnosis reads (`CACHE_KINDS`): pods, their owners (and a StatefulSet's or
DaemonSet's ControllerRevisions), Services and their
EndpointSlices, Events of every type (a Deployment's scaling events are Normal ones), quotas, LimitRanges, HPAs, PDBs,
PVCs, ConfigMaps and Secrets (key names only) and nodes. Each object is kept in the one form every
reader sees (`snapshot.compact`: no managedFields on bulky kinds, no Secret or ConfigMap values) as
compact JSON bytes, with its labels, owner uids and resourceVersion beside it: a pod costs 2-3 kB,
lookups by label or owner decode nothing, and every read decodes a private copy, so no reader can
change what another one sees. Events are bounded per involved object (`EVENTS_PER_OBJECT`, newest kept)
and leave when the API server expires them.

How it is fed (from watcher threads, through the change recorder's subscriptions): `apply` takes each
ADDED / MODIFIED / DELETED / LISTED object, ignoring one older than what it holds (resourceVersions
are compared as integers, as every etcd-backed API server hands them out); `listed` ends a full
listing, dropping what that listing did not contain (objects deleted while a watch was away and had
to list again after a 410). `seed` lists the kinds whose watchers may resume from a checkpoint
without listing. The cache is `ready` once every kind was listed once, and stops being ready when
it is closed (the bot lost the lead, or is stopping): readers then go to the API.

How fresh it is: a watch delivers a change within milliseconds, not at once. Readers check the object
they answer about against the API server (`bot.kube.targeted.read_target`), and wait for the
cache to catch up (`wait_for`) or answer from the API.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.kube.selectors import label_selector_matches
from bot.kube.snapshot import CLUSTER_KINDS, NAMESPACED_KINDS, compact
from bot.model import KubeObject

log = logging.getLogger(__name__)

CACHE_KINDS: tuple[str, ...] = (*NAMESPACED_KINDS, *CLUSTER_KINDS)
"""What a diagnosis reads (the kinds of `bot.kube.snapshot.NAMESPACED_KINDS` and nodes)."""
EVENTS_PER_OBJECT = 32
"""Events kept per involved object, the newest: what `why` and `describe` show is far less."""
PAGE_SIZE = 500


@dataclass(slots=True)
class _Entry:
    data: bytes
    version: int
    """The resourceVersion as an integer; -1 when it is not one."""
    labels: dict[str, str]
    stamp: str = ""
    """Events: when last seen (the newest are kept)."""


def _version(obj: KubeObject) -> int:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else -1


def _last_seen(event: KubeObject) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _involved_name(event: KubeObject) -> str:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return str(involved.get("name") or "")


def _decode(data: bytes) -> KubeObject:
    obj: KubeObject = json.loads(data)
    return obj


def _by_name(entries: Iterator[tuple[str, bytes]]) -> list[KubeObject]:
    """Decoded, in name order: the order the API server lists a namespace in."""
    return [_decode(data) for _, data in sorted(entries, key=lambda pair: pair[0])]


class CacheView(Protocol):
    """The read side of the watch cache: what the verbs are given (`CommandServices.cache`)."""

    def usable(self, namespace: str | None) -> bool:
        """Ready, and the namespace is one the watchers cover."""

    @property
    def missing(self) -> frozenset[str]:
        """Kinds the bot may not list: absent here for the same reason a snapshot lacks them."""

    def objects(self, kind: str, namespace: str | None, selector: dict[str, Any] | None = None) -> list[KubeObject]:
        """Objects of `kind` in `namespace` (None for cluster-scoped kinds), matching a LabelSelector."""

    def object(self, kind: str, namespace: str | None, name: str) -> KubeObject | None: ...

    def version(self, kind: str, namespace: str | None, name: str) -> str | None:
        """The resourceVersion held for an object, None when it is not held."""

    def events(self, namespace: str, names: Collection[str] | None = None) -> list[KubeObject]:
        """Events in `namespace` about objects with these names (None: all of them)."""

    def wait_for(self, kind: str, namespace: str | None, name: str, version: str | None, timeout: float) -> bool:
        """Wait until the object is held at `version` or newer (None: until it is gone); False on timeout."""

    def namespace_view(self, namespace: str) -> Mapping[str, tuple[KubeObject, ...]]:
        """Every held kind of one namespace (and the nodes), as a Snapshot's `objects`."""


class WatchCache:
    """The objects of `CACHE_KINDS` the watchers see, in the namespaces `allows` admits."""

    def __init__(
        self, *, allows: Callable[[str | None], bool] | None = None, kinds: Sequence[str] = CACHE_KINDS
    ) -> None:
        self.kinds = frozenset(kinds)
        self._allows = allows or (lambda namespace: True)
        self._changed = threading.Condition(threading.Lock())
        # kind → namespace ("" for cluster-scoped) → name → entry
        self._objects: dict[str, dict[str, dict[str, _Entry]]] = {k: {} for k in self.kinds if k != "Event"}
        # namespace → involved object's name → event name → entry
        self._events: dict[str, dict[str, dict[str, _Entry]]] = {}
        self._event_about: dict[tuple[str, str], str] = {}  # (namespace, event name) → involved name
        # (kind, namespace) → (label key, value) → names: a selector's pods without looking at the others
        self._labelled: dict[tuple[str, str], dict[tuple[str, str], set[str]]] = {}
        self._listing: dict[str, set[tuple[str, str]]] = {}
        self._listed: set[str] = set()
        self._missing: set[str] = set()
        self._closed = False

    # -- writing (watcher threads) ----------------------------------------------------------------

    def apply(self, kind: str, event_type: str, obj: KubeObject) -> None:
        """One object a watcher saw: ADDED, MODIFIED, DELETED, or LISTED (part of a full listing)."""
        if kind not in self.kinds:
            return
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not name:
            return
        entry = None
        if event_type != "DELETED":
            kept = compact(kind, obj)
            labels = dict((kept.get("metadata") or {}).get("labels") or {})
            stamp = _last_seen(kept) if kind == "Event" else ""
            entry = _Entry(json.dumps(kept, separators=(",", ":")).encode(), _version(obj), labels, stamp)
        with self._changed:
            if event_type == "LISTED":
                self._listing.setdefault(kind, set()).add((namespace, name))
            if kind == "Event":
                self._put_event(namespace, name, _involved_name(obj), entry, _version(obj))
            else:
                self._put(kind, namespace, name, entry, _version(obj))
            self._changed.notify_all()

    def _put(self, kind: str, namespace: str, name: str, entry: _Entry | None, version: int) -> None:
        spaces = self._objects[kind]
        held = spaces.get(namespace, {}).get(name)
        if held is not None and version >= 0 and held.version > version:
            return  # an older version (a replayed event): what we hold is newer
        if held is not None:
            self._index(kind, namespace, name, held.labels, add=False)
        if entry is None:
            if held is not None:
                del spaces[namespace][name]
                if not spaces[namespace]:
                    del spaces[namespace]
            return
        spaces.setdefault(namespace, {})[name] = entry
        self._index(kind, namespace, name, entry.labels, add=True)

    def _index(self, kind: str, namespace: str, name: str, labels: dict[str, str], *, add: bool) -> None:
        index = self._labelled.setdefault((kind, namespace), {})
        for pair in labels.items():
            if add:
                index.setdefault(pair, set()).add(name)
                continue
            names = index.get(pair)
            if names is not None:
                names.discard(name)
                if not names:
                    del index[pair]
        if not index:
            del self._labelled[(kind, namespace)]

    def _put_event(self, namespace: str, name: str, about: str, entry: _Entry | None, version: int) -> None:
        about = self._event_about.get((namespace, name), about)
        by_object = self._events.get(namespace, {}).get(about, {})
        held = by_object.get(name)
        if held is not None and version >= 0 and held.version > version:
            return
        if entry is None:
            self._drop_event(namespace, name)
            return
        by_object = self._events.setdefault(namespace, {}).setdefault(about, {})
        by_object[name] = entry
        self._event_about[(namespace, name)] = about
        while len(by_object) > EVENTS_PER_OBJECT:
            oldest = min(by_object, key=lambda n: by_object[n].stamp)
            self._drop_event(namespace, oldest)

    def _drop_event(self, namespace: str, name: str) -> None:
        about = self._event_about.pop((namespace, name), None)
        if about is None:
            return
        by_object = self._events.get(namespace, {})
        by_object.get(about, {}).pop(name, None)
        if not by_object.get(about):
            by_object.pop(about, None)
        if not by_object:
            self._events.pop(namespace, None)

    def listed(self, kind: str, resource_version: str) -> None:
        """A full listing of `kind` ended: what it did not contain is gone (unless changed since)."""
        if kind not in self.kinds:
            return
        limit = int(resource_version) if resource_version.isdigit() else None
        with self._changed:
            seen = self._listing.pop(kind, set())
            if kind == "Event":
                gone = [
                    key
                    for key, about in self._event_about.items()
                    if key not in seen and self._older(self._events[key[0]][about][key[1]], limit)
                ]
                for namespace, name in gone:
                    self._drop_event(namespace, name)
            else:
                spaces = self._objects[kind]
                for namespace, names in list(spaces.items()):
                    for name, entry in list(names.items()):
                        if (namespace, name) not in seen and self._older(entry, limit):
                            self._put(kind, namespace, name, None, -1)
            self._listed.add(kind)
            self._changed.notify_all()

    @staticmethod
    def _older(entry: _Entry, limit: int | None) -> bool:
        return limit is None or entry.version < 0 or entry.version <= limit

    def seed(self, kube: KubeClient, kinds: Sequence[str], *, stop: threading.Event | None = None) -> None:
        """List `kinds` once (those whose watchers may resume from a checkpoint without a listing)."""
        for kind in kinds:
            if kind not in self.kinds or (stop is not None and stop.is_set()):
                continue
            path = KINDS[kind].path()
            token: str | None = None
            version = ""
            try:
                while True:
                    query: dict[str, Any] = {"limit": PAGE_SIZE}
                    if token:
                        query["continue"] = token
                    page = kube.get(path, **query)
                    meta = page.get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                    for item in page.get("items") or []:
                        if self._allows((item.get("metadata") or {}).get("namespace")):
                            self.apply(kind, "LISTED", item)
                    token = meta.get("continue")
                    if not token:
                        break
            except Exception as e:  # a kind the bot may not list: readers treat it as the snapshot does
                log.warning("watch cache: could not list %s: %s", kind, e)
                with self._changed:
                    self._listing.pop(kind, None)
                    self._missing.add(kind)
                    self._listed.add(kind)
                continue
            self.listed(kind, version)

    def close(self) -> None:
        """No longer fed (the watchers stop): readers go to the API from now on."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- reading (command threads) ----------------------------------------------------------------

    def ready(self) -> bool:
        with self._changed:
            return not self._closed and self._listed >= self.kinds

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._closed or not self._listed >= self.kinds:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def usable(self, namespace: str | None) -> bool:
        return self.ready() and self._allows(namespace)

    @property
    def missing(self) -> frozenset[str]:
        with self._changed:
            return frozenset(self._missing)

    def objects(self, kind: str, namespace: str | None, selector: dict[str, Any] | None = None) -> list[KubeObject]:
        with self._changed:
            names = self._objects.get(kind, {}).get(namespace or "", {})
            candidates: Collection[str] = names.keys()
            pairs = list(((selector or {}).get("matchLabels") or {}).items())
            if pairs:  # the smallest set of names carrying one of the pairs; the selector decides among them
                index = self._labelled.get((kind, namespace or ""), {})
                candidates = min((index.get(pair, set()) for pair in pairs), key=len)
            found = [
                (name, e.data)
                for name in candidates
                if (e := names.get(name)) is not None
                and (selector is None or label_selector_matches(selector, e.labels))
            ]
        return _by_name(iter(found))

    def object(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        with self._changed:
            entry = self._objects.get(kind, {}).get(namespace or "", {}).get(name)
        return _decode(entry.data) if entry is not None else None

    def version(self, kind: str, namespace: str | None, name: str) -> str | None:
        with self._changed:
            entry = self._objects.get(kind, {}).get(namespace or "", {}).get(name)
        if entry is None:
            return None
        return str(entry.version) if entry.version >= 0 else ""

    def events(self, namespace: str, names: Collection[str] | None = None) -> list[KubeObject]:
        with self._changed:
            by_object = self._events.get(namespace, {})
            wanted = by_object.keys() if names is None else [n for n in names if n in by_object]
            found = [(name, e.data) for about in wanted for name, e in by_object[about].items()]
        return _by_name(iter(found))

    def wait_for(self, kind: str, namespace: str | None, name: str, version: str | None, timeout: float) -> bool:
        wanted = int(version) if version is not None and version.isdigit() else None
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                entry = self._objects.get(kind, {}).get(namespace or "", {}).get(name)
                if version is None and entry is None:
                    return True
                if version is not None and entry is not None and (wanted is None or entry.version >= wanted):
                    return wanted is not None or str(entry.version) == version
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._changed.wait(left)

    def namespace_view(self, namespace: str) -> Mapping[str, tuple[KubeObject, ...]]:
        """Every held kind of one namespace (nodes too), each decoded when first read (for `status`)."""
        return LazyKinds(self, namespace)

    def stats(self) -> dict[str, int]:
        """Objects and events held, and their encoded size in bytes (the bench prints these)."""
        with self._changed:
            objects = [e for spaces in self._objects.values() for names in spaces.values() for e in names.values()]
            events = [e for about in self._events.values() for by in about.values() for e in by.values()]
        return {
            "objects": len(objects),
            "events": len(events),
            "bytes": sum(len(e.data) for e in objects) + sum(len(e.data) for e in events),
        }


class LazyKinds(Mapping[str, tuple[KubeObject, ...]]):
    """One namespace of the cache as a Snapshot's `objects`: a kind is decoded when first read."""

    def __init__(self, cache: WatchCache, namespace: str) -> None:
        self.cache = cache
        self.namespace = namespace
        self._kinds = [k for k in sorted(cache.kinds) if k not in cache.missing]
        self._decoded: dict[str, tuple[KubeObject, ...]] = {}

    def __getitem__(self, kind: str) -> tuple[KubeObject, ...]:
        if kind not in self._kinds:
            raise KeyError(kind)
        if kind not in self._decoded:
            if kind == "Event":
                found = self.cache.events(self.namespace)
            else:
                found = self.cache.objects(kind, None if not KINDS[kind].namespaced else self.namespace)
            self._decoded[kind] = tuple(found)
        return self._decoded[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)
