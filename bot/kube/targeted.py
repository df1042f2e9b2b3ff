"""One target's objects, read from the watch cache or listed from the API: only what the target needs.

`targeted_snapshot` reads in three rounds from an `ObjectSource`:

1. the namespace's small kinds: workloads, Services, quotas and HPAs. The target is resolved among
   them (a pod name is looked up by itself);
2. what the resolved target owns, selects or refers to: its ReplicaSets and pods by the workload's
   label selector, the pods each of its Services selects, the Services' EndpointSlices
   (`kubernetes.io/service-name`), the latest Job of a CronJob and its pods, the ConfigMaps and
   Secrets its pod template names (one get each; key names only);
3. the nodes those pods run on and the PVCs they claim (one get each), and the events about every
   object in scope (a field selector on `involvedObject.name`, one request per name; past
   `EVENT_LOOKUPS` names, one list of the namespace's events instead).

No whole-namespace pod or event list for one workload: the cost follows the target, not the
namespace. The same plan runs on the API (`ApiSource`, the `ask` CLI and any bot without a ready
cache) and on the watch cache (`CacheSource`), so both give the analyzers the same objects in the
same order, and the same answer.

`read_target` is the entry for `why`: from the cache when it is usable, checked against the API
server with one get of the resolved object (see its docstring), else from the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from bot.errors import Ambiguous, ClusterUnavailable, K8sBotError, NotFound, PermissionDenied
from bot.kube.cache import CacheView
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.kube.owners import controller_ref
from bot.kube.resolving import Resolution, resolve, split_kind
from bot.kube.selectors import selector_query
from bot.kube.snapshot import CLUSTER_KINDS, NAMESPACED_KINDS, Snapshot, compact, name_of
from bot.model import KubeObject

log = logging.getLogger(__name__)

NAMESPACE_KINDS: tuple[str, ...] = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Service",
    "ResourceQuota",
    "HorizontalPodAutoscaler",
)
"""Listed whole (round 1): few per namespace, and resolution and the analyzers look across them."""
SCOPED_KINDS: tuple[str, ...] = (
    "Pod",
    "ReplicaSet",
    "EndpointSlice",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "Event",
    "Node",
)
"""Read only for the target (rounds 2 and 3): ConfigMaps, Secrets and PVCs by the names its templates
and pods refer to (a namespace's Secrets hold every Helm release: listing them all costs megabytes)."""
EVENT_LOOKUPS = 24
"""Names looked up one by one for their events; more than this, and the namespace's events are listed once."""
CACHE_WAIT = 1.0
"""Seconds `read_target` waits for the cache to reach the API server's version of the target."""
WORKERS = 8

T = TypeVar("T")
Selector = dict[str, Any]
"""A LabelSelector: `matchLabels` and `matchExpressions`."""


class ObjectSource(Protocol):
    """Where a targeted snapshot reads from. Errors are `bot.errors` (PermissionDenied, NotFound...)."""

    name: str
    parallel: bool
    """Whether reads are worth running in parallel (requests are; decoding from memory is not)."""

    def select(self, kind: str, namespace: str | None, selector: Selector | None = None) -> list[KubeObject]:
        """Objects of `kind` (in `namespace`, None for cluster-scoped kinds) matching a LabelSelector."""

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None: ...

    def events(self, namespace: str, names: Collection[str] | None) -> list[KubeObject]:
        """Events about objects with these names (None: all events of the namespace)."""

    def missing(self) -> frozenset[str]:
        """Kinds known up front to be unreadable."""


class ApiSource:
    """The API server, as one identity (the person's client when impersonating)."""

    name = "api"
    parallel = True

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def select(self, kind: str, namespace: str | None, selector: Selector | None = None) -> list[KubeObject]:
        spec = KINDS[kind]
        query = {"labelSelector": selector_query(selector)} if selector else {}
        items = self.kube.list(spec.path(namespace if spec.namespaced else None), **query)
        return sorted((compact(kind, i) for i in items), key=name_of)

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        spec = KINDS[kind]
        try:
            return compact(kind, self.kube.get(spec.path(namespace if spec.namespaced else None, name)))
        except NotFound:
            return None

    def events(self, namespace: str, names: Collection[str] | None) -> list[KubeObject]:
        path = KINDS["Event"].path(namespace)
        if names is None:
            found = self.kube.list(path)
        else:
            lists = _parallel([partial(self._events_about, path, n) for n in sorted(names)])
            found = [e for outcome in lists for e in _ok(outcome)]
        unique = {name_of(e): compact("Event", e) for e in found}
        return [unique[n] for n in sorted(unique)]

    def _events_about(self, path: str, name: str) -> list[KubeObject]:
        return self.kube.list(path, fieldSelector=f"involvedObject.name={name}")

    def missing(self) -> frozenset[str]:
        return frozenset()


class CacheSource:
    """The watch cache (read with the bot's own identity)."""

    name = "cache"
    parallel = False

    def __init__(self, cache: CacheView) -> None:
        self.cache = cache

    def select(self, kind: str, namespace: str | None, selector: Selector | None = None) -> list[KubeObject]:
        self._check(kind)
        return self.cache.objects(kind, namespace if KINDS[kind].namespaced else None, selector)

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        if kind not in CACHED:
            raise NotFound(f"{kind} is not held by the watch cache")
        self._check(kind)
        return self.cache.object(kind, namespace if KINDS[kind].namespaced else None, name)

    def events(self, namespace: str, names: Collection[str] | None) -> list[KubeObject]:
        self._check("Event")
        return self.cache.events(namespace, names)

    def missing(self) -> frozenset[str]:
        return self.cache.missing

    def _check(self, kind: str) -> None:
        if kind in self.cache.missing:
            raise PermissionDenied(f"the bot may not list {KINDS[kind].plural}")


CACHED = frozenset(NAMESPACED_KINDS) | frozenset(CLUSTER_KINDS)


def _parallel(calls: Sequence[Callable[[], T]], *, parallel: bool = True) -> list[T | K8sBotError]:
    if len(calls) <= 1 or not parallel:
        return [_call(call) for call in calls]
    with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(calls))), thread_name_prefix="read") as pool:
        return list(pool.map(_call, calls))


def _call(func: Callable[[], T]) -> T | K8sBotError:
    try:
        return func()
    except K8sBotError as e:
        return e


def _ok(outcome: T | K8sBotError) -> T:
    if isinstance(outcome, K8sBotError):
        raise outcome
    return outcome


@dataclass
class _Gathered:
    """What the rounds found, by kind, and the kinds that could not be read."""

    namespace: str
    objects: dict[str, dict[str, KubeObject]]
    errors: list[str]
    missing: set[str]

    def add(self, kind: str, outcome: list[KubeObject] | KubeObject | K8sBotError | None) -> None:
        found = self.objects.setdefault(kind, {})
        if isinstance(outcome, K8sBotError):
            if isinstance(outcome, ClusterUnavailable):
                raise outcome
            if kind == "Pod" and isinstance(outcome, PermissionDenied):
                raise PermissionDenied(
                    f"You may not read namespace `{self.namespace}`: the cluster refused to list its pods for you."
                ) from outcome
            self.missing.add(kind)
            expected = isinstance(outcome, NotFound) or (
                isinstance(outcome, PermissionDenied) and not KINDS[kind].namespaced
            )
            note = f"could not list {KINDS[kind].plural}: {outcome}"
            if not expected and note not in self.errors:
                self.errors.append(note)
            return
        for obj in [outcome] if isinstance(outcome, dict) else outcome or []:
            found.setdefault(name_of(obj), obj)

    def snapshot(self) -> Snapshot:
        objects = {kind: tuple(found[n] for n in sorted(found)) for kind, found in self.objects.items()}
        return Snapshot(self.namespace, objects, tuple(self.errors), frozenset(self.missing))


def targeted_snapshot(source: ObjectSource, namespace: str, target: str) -> tuple[Snapshot, Resolution]:
    """The objects `target` needs and its resolution, in three rounds of reads (module docstring)."""
    gathered = _Gathered(namespace, {}, [], set(source.missing()))
    listed = _parallel([partial(source.select, k, namespace) for k in NAMESPACE_KINDS], parallel=source.parallel)
    for kind, found in zip(NAMESPACE_KINDS, listed, strict=True):
        gathered.add(kind, found)
    resolution = _resolve(source, gathered, target)
    # round 2: what the target owns or selects
    reads: list[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]] = []
    for workload in resolution.workloads:
        kind = str(workload.get("kind"))
        owner = workload
        if kind == "CronJob":  # its latest Job's pods, as the diagnosis looks at
            jobs = sorted((j for j in gathered.objects.get("Job", {}).values() if _owned(j, workload)), key=_created)
            owner = jobs[-1] if jobs else workload
        selector = (owner.get("spec") or {}).get("selector")
        if owner.get("kind") == "CronJob" or not selector:
            continue
        reads.append(("Pod", partial(source.select, "Pod", namespace, selector)))
        if kind == "Deployment":
            reads.append(("ReplicaSet", partial(source.select, "ReplicaSet", namespace, selector)))
    for service in resolution.services:
        selector = (service.get("spec") or {}).get("selector")
        if selector:
            reads.append(("Pod", partial(source.select, "Pod", namespace, {"matchLabels": selector})))
        slices = {"matchLabels": {"kubernetes.io/service-name": name_of(service)}}
        reads.append(("EndpointSlice", partial(source.select, "EndpointSlice", namespace, slices)))
    for kind, name in sorted(_referenced(resolution)):
        if kind not in gathered.missing:
            reads.append((kind, partial(source.get, kind, namespace, name)))
    if resolution.obj.get("kind") == "Pod":
        gathered.add("Pod", resolution.obj)
        controller = controller_ref(resolution.obj) or {}
        if controller.get("kind") == "ReplicaSet":
            replicaset = str(controller.get("name"))
            reads.append(("ReplicaSet", partial(source.get, "ReplicaSet", namespace, replicaset)))
    for kind in ("Pod", "ReplicaSet", "EndpointSlice", "ConfigMap", "Secret"):
        gathered.objects.setdefault(kind, {})
    for (kind, _), read in zip(reads, _parallel([r for _, r in reads], parallel=source.parallel), strict=True):
        gathered.add(kind, read)
    # round 3: the pods' nodes and the events about everything in scope
    nodes = sorted({str((p.get("spec") or {}).get("nodeName")) for p in _pods(gathered)} - {"None", ""})
    names = _event_names(gathered, resolution)
    round3: list[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]] = [
        ("Node", partial(source.get, "Node", None, n)) for n in nodes if "Node" not in gathered.missing
    ]
    claims = sorted(_claims(resolution, _pods(gathered)))
    round3 += [("PersistentVolumeClaim", partial(source.get, "PersistentVolumeClaim", namespace, c)) for c in claims]
    round3.append(("Event", partial(source.events, namespace, names if len(names) <= EVENT_LOOKUPS else None)))
    gathered.objects.setdefault("Node", {})
    gathered.objects.setdefault("PersistentVolumeClaim", {})
    for (kind, _), read in zip(round3, _parallel([r for _, r in round3], parallel=source.parallel), strict=True):
        gathered.add(kind, read)
    return gathered.snapshot(), resolve(gathered.snapshot(), target)


def _resolve(source: ObjectSource, gathered: _Gathered, target: str) -> Resolution:
    try:
        return resolve(gathered.snapshot(), target)
    except NotFound:
        kind, name = split_kind(target)
        if kind is None:
            kind = "Pod"  # a bare name that is no workload or Service may be a pod's
        elif kind in NAMESPACE_KINDS or kind not in KINDS:
            raise
        try:
            obj = source.get(kind, gathered.namespace, name)
        except NotFound:
            obj = None
        if obj is None:
            raise
        gathered.add(kind, obj)
        return resolve(gathered.snapshot(), target)


def _pod_specs(resolution: Resolution) -> list[dict[str, Any]]:
    """The pod specs of the target: each workload's template (a CronJob's through its job template)."""
    specs = []
    for obj in (*resolution.workloads, resolution.obj):
        spec = obj.get("spec") or {}
        if obj.get("kind") == "CronJob":
            spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        if obj.get("kind") == "Pod":
            specs.append(spec)
        else:
            specs.append(((spec.get("template") or {}).get("spec")) or {})
    return specs


def _referenced(resolution: Resolution) -> set[tuple[str, str]]:
    """The ConfigMaps and Secrets the target's pod specs name: env, envFrom, volumes (projected too),
    image pull secrets. (What the analyzers judge is `bot.diagnosis.references`; this finds at least
    every name it can ask about.)"""
    found: set[tuple[str, str]] = set()
    for spec in _pod_specs(resolution):
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                found |= {("ConfigMap", (source.get("configMapKeyRef") or {}).get("name") or "")}
                found |= {("Secret", (source.get("secretKeyRef") or {}).get("name") or "")}
            for env_from in container.get("envFrom") or []:
                found |= {("ConfigMap", (env_from.get("configMapRef") or {}).get("name") or "")}
                found |= {("Secret", (env_from.get("secretRef") or {}).get("name") or "")}
        for volume in spec.get("volumes") or []:
            found |= {("ConfigMap", (volume.get("configMap") or {}).get("name") or "")}
            found |= {("Secret", (volume.get("secret") or {}).get("secretName") or "")}
            for projected in (volume.get("projected") or {}).get("sources") or []:
                found |= {("ConfigMap", (projected.get("configMap") or {}).get("name") or "")}
                found |= {("Secret", (projected.get("secret") or {}).get("name") or "")}
        found |= {("Secret", str(s.get("name") or "")) for s in spec.get("imagePullSecrets") or []}
    return {(kind, name) for kind, name in found if name}


def _claims(resolution: Resolution, pods: Iterable[KubeObject]) -> set[str]:
    specs = [*_pod_specs(resolution), *((p.get("spec") or {}) for p in pods)]
    return {
        str(claim)
        for spec in specs
        for volume in spec.get("volumes") or []
        if (claim := (volume.get("persistentVolumeClaim") or {}).get("claimName"))
    }


def _pods(gathered: _Gathered) -> Iterable[KubeObject]:
    return gathered.objects.get("Pod", {}).values()


def _owned(obj: KubeObject, owner: KubeObject) -> bool:
    uid = (owner.get("metadata") or {}).get("uid")
    return any(r.get("uid") == uid for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


def _created(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _event_names(gathered: _Gathered, resolution: Resolution) -> set[str]:
    """Names of the objects in scope: their events are evidence (and a Deployment's tell its scaling)."""
    names = {name_of(o) for o in (resolution.obj, *resolution.workloads, *resolution.services)}
    for kind in ("Pod", "ReplicaSet"):
        names |= set(gathered.objects.get(kind, {}))
    jobs = gathered.objects.get("Job", {}).values()
    names |= {name_of(j) for w in resolution.workloads for j in jobs if _owned(j, w)}
    workloads = {name_of(w) for w in resolution.workloads}
    names |= {
        name_of(h)
        for h in gathered.objects.get("HorizontalPodAutoscaler", {}).values()
        if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") in workloads
    }
    return names - {""}


# -- reading for `why`: the cache, checked against the API server, else the API ----------------------


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an answer's objects came from: "cache" or "api", and why the API when the cache was there."""

    source: str
    note: str | None = None
    behind: bool = False
    """The cache was there but behind the API server on the target: the answer says so."""

    def to_json(self) -> dict[str, Any]:
        return {"from": self.source, "note": self.note, "cache_behind": self.behind}


@dataclass(frozen=True)
class TargetRead:
    snapshot: Snapshot
    resolution: Resolution
    provenance: Provenance


def read_target(
    kube: KubeClient, namespace: str, target: str, *, cache: CacheView | None = None, wait: float = CACHE_WAIT
) -> TargetRead:
    """The target's objects, from the watch cache when it can answer, else from the API.

    The cache is checked against the API server with one request: a get of the resolved object (the
    workload, Service or pod the answer is about), compared by resourceVersion with the cache's copy.
    A workload's status counts its pods (ready, updated, available), so a change to its pods that
    matters moves its resourceVersion too. Equal: answer from the cache. The server's is newer: wait
    up to `wait` seconds for the watch to deliver it, then answer from the cache again; else (or when
    the object is gone from the server but not yet from the cache, or the cache cannot resolve the
    target) answer from the API, saying so. An API server that cannot be reached leaves the cache's
    answer, with a note.
    """
    if cache is None or not cache.usable(namespace):
        return _from_api(kube, namespace, target, None)
    source = CacheSource(cache)
    try:
        snapshot, resolution = targeted_snapshot(source, namespace, target)
    except (NotFound, Ambiguous):
        # A target created a moment ago, or one the watch has not yet shown gone: the API decides.
        return _from_api(kube, namespace, target, "the watch cache did not have it: answered from the API")
    ref = resolution.ref
    spec = KINDS[ref.kind]
    held = cache.version(ref.kind, namespace if spec.namespaced else None, ref.name)
    try:
        live: str | None = str(
            (kube.get(spec.path(namespace if spec.namespaced else None, ref.name)).get("metadata") or {}).get(
                "resourceVersion"
            )
            or ""
        )
    except NotFound:
        live = None
    except ClusterUnavailable as e:
        # The API server is away; the cache still knows what the watch last saw: answer, and say so.
        return TargetRead(snapshot, resolution, Provenance("cache", f"could not check the watch cache: {e}"))
    if live == held:
        return TargetRead(snapshot, resolution, Provenance("cache"))
    if cache.wait_for(ref.kind, namespace if spec.namespaced else None, ref.name, live, wait):
        try:
            snapshot, resolution = targeted_snapshot(source, namespace, target)
        except (NotFound, Ambiguous):
            return _from_api(kube, namespace, target, None)
        return TargetRead(snapshot, resolution, Provenance("cache"))
    what = f"{ref.kind} {ref.name}"
    state = "is gone from the API server" if live is None else f"is at resourceVersion {live} on the API server"
    note = f"the watch cache was behind ({what} {state}, the cache has {held or 'none'}): answered from the API"
    log.info("why %s/%s: %s", namespace, target, note)
    return _from_api(kube, namespace, target, note, behind=True)


def _from_api(kube: KubeClient, namespace: str, target: str, note: str | None, *, behind: bool = False) -> TargetRead:
    snapshot, resolution = targeted_snapshot(ApiSource(kube), namespace, target)
    return TargetRead(snapshot, resolution, Provenance("api", note, behind))
