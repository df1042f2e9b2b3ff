"""One target's objects, read from the watch cache or listed from the API: only what the target needs.

`targeted_snapshot` reads in three rounds from an `ObjectSource`:

1. the namespace's small kinds: workloads, Services, quotas, HPAs and disruption budgets. The target is resolved among
   them (a pod name is looked up by itself);
2. what the resolved target owns, selects or refers to: its ReplicaSets (a StatefulSet's or
   DaemonSet's ControllerRevisions) and pods by the workload's label selector, the pods each of its
   Services selects, the Services' EndpointSlices (`kubernetes.io/service-name`), the latest Job of
   a CronJob and its pods, the ConfigMaps and Secrets its pod template names (one get each; key
   names only);
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
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from bot.errors import Ambiguous, ClusterUnavailable, K8sBotError, NotFound, PermissionDenied
from bot.kube.cache import CacheView
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.kube.owners import controller_ref
from bot.kube.resolving import Resolution, resolve, split_kind
from bot.kube.selectors import selected_workloads, selector_query
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
    "LimitRange",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
)
"""Listed whole (round 1): few per namespace, and resolution and the analyzers look across them."""
SCOPED_KINDS: tuple[str, ...] = (
    "Pod",
    "ReplicaSet",
    "ControllerRevision",
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
MAX_DEPENDENCIES = 5
"""Services the target calls whose pods, ReplicaSets and EndpointSlices are read (one level deep)."""

T = TypeVar("T")
Selector = dict[str, Any]
"""A LabelSelector: `matchLabels` and `matchExpressions`."""
Calls = Callable[[KubeObject, Snapshot], Iterable[str]]
"""The names of the Services a workload calls, judged on a snapshot that holds the namespace's
Services and the ConfigMaps the workload reads (the diagnosis layer's dependency links)."""


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
    pods_for: set[str] = field(default_factory=set)
    """The Services whose selected pods were read."""
    scope: set[str] = field(default_factory=set)
    """Names of the objects in scope, whose events round 3 reads."""

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
        return Snapshot(
            self.namespace, objects, tuple(self.errors), frozenset(self.missing), pods_for=frozenset(self.pods_for)
        )


def targeted_snapshot(
    source: ObjectSource, namespace: str, target: str, *, calls: Calls | None = None
) -> tuple[Snapshot, Resolution]:
    """The objects `target` needs and its resolution, in three rounds of reads (module docstring).

    With `calls`, the Services the target's workloads call (at most `MAX_DEPENDENCIES`) are read
    too, between rounds 2 and 3: what is needed to judge and diagnose each of them."""
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
        elif kind in ("StatefulSet", "DaemonSet") and "ControllerRevision" not in gathered.missing:
            # Their revisions carry the template's labels: the same selector finds them.
            reads.append(("ControllerRevision", partial(source.select, "ControllerRevision", namespace, selector)))
    reads += _service_reads(source, namespace, resolution.services)
    gathered.pods_for |= {name_of(s) for s in resolution.services}
    for kind, name in sorted(_referenced(_pod_specs(resolution))):
        if kind not in gathered.missing:
            reads.append((kind, partial(source.get, kind, namespace, name)))
    if resolution.obj.get("kind") == "Pod":
        gathered.add("Pod", resolution.obj)
        controller = controller_ref(resolution.obj) or {}
        if controller.get("kind") == "ReplicaSet":
            replicaset = str(controller.get("name"))
            reads.append(("ReplicaSet", partial(source.get, "ReplicaSet", namespace, replicaset)))
    for kind in ("Pod", "ReplicaSet", "ControllerRevision", "EndpointSlice", "ConfigMap", "Secret"):
        gathered.objects.setdefault(kind, {})
    _run(source, gathered, reads)
    gathered.scope |= _event_names(gathered, resolution)
    if calls is not None:
        # round 2b: the Services the target calls, and the workloads behind them
        partial_view = gathered.snapshot()
        called = [n for w in resolution.workloads for n in calls(w, partial_view)]
        _read_services(source, gathered, called)
    # round 3: the pods' nodes and the events about everything in scope
    _round3(source, gathered, gathered.scope, specs=_pod_specs(resolution))
    return gathered.snapshot(), resolve(gathered.snapshot(), target)


def widen(source: ObjectSource, snapshot: Snapshot, services: Iterable[str]) -> Snapshot:
    """`snapshot` with what judging and diagnosing `services` needs read too (as `targeted_snapshot`
    reads for the Services a target calls): for a Service named later, e.g. in a log line."""
    wanted = [s for s in dict.fromkeys(services) if not snapshot.holds_pods_of(s)]
    if not wanted:
        return snapshot
    objects = {kind: {name_of(o): o for o in found} for kind, found in snapshot.objects.items()}
    gathered = _Gathered(snapshot.namespace, objects, list(snapshot.errors), set(snapshot.missing))
    gathered.pods_for = set(snapshot.pods_for or ())
    before = {kind: set(gathered.objects.get(kind, {})) for kind in ("Pod", "ReplicaSet")}
    _read_services(source, gathered, wanted)
    names = set(gathered.scope)
    for kind, held in before.items():
        names |= set(gathered.objects.get(kind, {})) - held
    new_pods = set(gathered.objects.get("Pod", {})) - before["Pod"]
    _round3(source, gathered, names, pods=[gathered.objects["Pod"][n] for n in sorted(new_pods)])
    return gathered.snapshot()


def _service_reads(
    source: ObjectSource, namespace: str, services: Iterable[KubeObject]
) -> list[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]]:
    """The pods each Service selects and its EndpointSlices (`kubernetes.io/service-name`)."""
    reads: list[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]] = []
    for service in services:
        selector = (service.get("spec") or {}).get("selector")
        if selector:
            reads.append(("Pod", partial(source.select, "Pod", namespace, {"matchLabels": selector})))
        slices = {"matchLabels": {"kubernetes.io/service-name": name_of(service)}}
        reads.append(("EndpointSlice", partial(source.select, "EndpointSlice", namespace, slices)))
    return reads


def _read_services(source: ObjectSource, gathered: _Gathered, names: Iterable[str]) -> None:
    """Read, for at most `MAX_DEPENDENCIES` of the Services `names` (not already read), their pods,
    EndpointSlices, the ReplicaSets of the workloads behind them and the ConfigMaps and Secrets those
    workloads name; record them in `pods_for` and their names for round 3's events."""
    held = gathered.objects.get("Service", {})
    wanted = [n for n in dict.fromkeys(names) if n in held and n not in gathered.pods_for][:MAX_DEPENDENCIES]
    if not wanted:
        return
    view = gathered.snapshot()
    services = [held[n] for n in wanted]
    reads = _service_reads(source, gathered.namespace, services)
    workloads = {(str(w.get("kind")), name_of(w)): w for s in services for w in selected_workloads(s, view)}
    for (kind, _), workload in sorted(workloads.items()):
        selector = (workload.get("spec") or {}).get("selector")
        if kind == "Deployment" and selector:
            reads.append(("ReplicaSet", partial(source.select, "ReplicaSet", gathered.namespace, selector)))
    specs = [_template_spec(w) for w in workloads.values()]
    for kind, name in sorted(_referenced(specs)):
        if kind not in gathered.missing and name not in gathered.objects.get(kind, {}):
            reads.append((kind, partial(source.get, kind, gathered.namespace, name)))
    _run(source, gathered, reads)
    gathered.pods_for |= set(wanted)
    gathered.scope |= set(wanted) | {name for _, name in workloads}
    for kind in ("Pod", "ReplicaSet"):
        gathered.scope |= set(gathered.objects.get(kind, {}))


def _run(
    source: ObjectSource,
    gathered: _Gathered,
    reads: Sequence[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]],
) -> None:
    for (kind, _), read in zip(reads, _parallel([r for _, r in reads], parallel=source.parallel), strict=True):
        gathered.add(kind, read)


def _round3(
    source: ObjectSource,
    gathered: _Gathered,
    names: Collection[str],
    *,
    pods: Iterable[KubeObject] | None = None,
    specs: Sequence[dict[str, Any]] = (),
) -> None:
    """The nodes and PVCs of `pods` (default: every pod read) and of the pod `specs` not held yet,
    and the events about `names`."""
    pods = list(_pods(gathered) if pods is None else pods)
    held_nodes = set(gathered.objects.get("Node", {}))
    nodes = sorted({str((p.get("spec") or {}).get("nodeName")) for p in pods} - {"None", ""} - held_nodes)
    reads: list[tuple[str, Callable[[], list[KubeObject] | KubeObject | None]]] = [
        ("Node", partial(source.get, "Node", None, n)) for n in nodes if "Node" not in gathered.missing
    ]
    held_claims = set(gathered.objects.get("PersistentVolumeClaim", {}))
    claims = sorted(_claims([*specs, *((p.get("spec") or {}) for p in pods)]) - held_claims)
    namespace = gathered.namespace
    reads += [("PersistentVolumeClaim", partial(source.get, "PersistentVolumeClaim", namespace, c)) for c in claims]
    names = {*names, *claims}  # a claim's own events say why it cannot bind
    if names:
        events = partial(source.events, namespace, names if len(names) <= EVENT_LOOKUPS else None)
        reads.append(("Event", events))
    gathered.objects.setdefault("Node", {})
    gathered.objects.setdefault("PersistentVolumeClaim", {})
    gathered.objects.setdefault("Event", {})
    _run(source, gathered, reads)


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
    return [_template_spec(obj) for obj in (*resolution.workloads, resolution.obj)]


def _template_spec(obj: KubeObject) -> dict[str, Any]:
    """A pod's spec, or a workload's pod template spec (a CronJob's through its job template)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return dict(spec)
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return dict(((spec.get("template") or {}).get("spec")) or {})


def _referenced(specs: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """The ConfigMaps and Secrets pod `specs` name: env, envFrom, volumes (projected too), image pull
    secrets. (What the analyzers judge is `bot.diagnosis.references`; this finds at least every name
    it can ask about.)"""
    found: set[tuple[str, str]] = set()
    for spec in specs:
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


def _claims(specs: Iterable[dict[str, Any]]) -> set[str]:
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
    source: ObjectSource
    """Where the snapshot was read from: `widened` reads more from the same place."""

    def widened(self, services: Iterable[str]) -> Snapshot:
        """The snapshot with the pods (and what diagnosing them needs) of `services` read too."""
        return widen(self.source, self.snapshot, services)


def read_target(
    kube: KubeClient,
    namespace: str,
    target: str,
    *,
    cache: CacheView | None = None,
    wait: float = CACHE_WAIT,
    calls: Calls | None = None,
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

    `calls` names the Services the target calls: their pods are read too (`targeted_snapshot`).
    """
    if cache is None or not cache.usable(namespace):
        return _from_api(kube, namespace, target, None, calls)
    source = CacheSource(cache)
    try:
        snapshot, resolution = targeted_snapshot(source, namespace, target, calls=calls)
    except (NotFound, Ambiguous):
        # A target created a moment ago, or one the watch has not yet shown gone: the API decides.
        return _from_api(kube, namespace, target, "the watch cache did not have it: answered from the API", calls)
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
        return TargetRead(snapshot, resolution, Provenance("cache", f"could not check the watch cache: {e}"), source)
    if live == held:
        return TargetRead(snapshot, resolution, Provenance("cache"), source)
    if cache.wait_for(ref.kind, namespace if spec.namespaced else None, ref.name, live, wait):
        try:
            snapshot, resolution = targeted_snapshot(source, namespace, target, calls=calls)
        except (NotFound, Ambiguous):
            return _from_api(kube, namespace, target, None, calls)
        return TargetRead(snapshot, resolution, Provenance("cache"), source)
    what = f"{ref.kind} {ref.name}"
    state = "is gone from the API server" if live is None else f"is at resourceVersion {live} on the API server"
    note = f"the watch cache was behind ({what} {state}, the cache has {held or 'none'}): answered from the API"
    log.info("why %s/%s: %s", namespace, target, note)
    return _from_api(kube, namespace, target, note, calls, behind=True)


def _from_api(
    kube: KubeClient, namespace: str, target: str, note: str | None, calls: Calls | None, *, behind: bool = False
) -> TargetRead:
    source = ApiSource(kube)
    snapshot, resolution = targeted_snapshot(source, namespace, target, calls=calls)
    return TargetRead(snapshot, resolution, Provenance("api", note, behind), source)
