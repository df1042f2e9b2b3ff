"""One namespace's objects, fetched once per request with a fixed number of list calls.

`why`, `status` and `describe` need pods, their owners, services, events, quotas and the nodes the
pods run on. Fetching them per pod would cost hundreds of requests on a busy namespace; instead we
list each kind once (in parallel) and let analyzers and resolution work on the lists in memory.

Secret and ConfigMap values are dropped as soon as they arrive: only their names and key names are
kept (analyzers need "does key X exist", never its value).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ClusterUnavailable, K8sBotError, NotFound, PermissionDenied
from bot.kube.client import KubeClient
from bot.kube.hosts import hosts_in
from bot.kube.kinds import KINDS
from bot.model import KubeObject, ObjectRef
from bot.redaction import DEFAULT

NAMESPACED_KINDS: tuple[str, ...] = (
    "Pod",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ControllerRevision",
    "Job",
    "CronJob",
    "Service",
    "EndpointSlice",
    "Event",
    "ResourceQuota",
    "LimitRange",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
)
"""What one `why` lists: one call each (plus `continue` pages), plus one for nodes."""
CLUSTER_KINDS: tuple[str, ...] = ("Node",)
VALUE_FREE_KINDS = frozenset({"Secret", "ConfigMap"})
WORKLOAD_KINDS: tuple[str, ...] = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")


@dataclass(frozen=True)
class Snapshot:
    """Objects of one namespace by kind (plus nodes), as plain API dicts with `kind` set."""

    namespace: str
    objects: Mapping[str, tuple[KubeObject, ...]] = field(default_factory=dict)
    """By kind; the watch cache gives a mapping that decodes a kind when it is first read."""
    errors: tuple[str, ...] = ()
    missing: frozenset[str] = frozenset()
    """Kinds that could not be listed (forbidden): analyzers must not conclude "absent" for them."""
    pods_for: frozenset[str] | None = None
    """The Services whose selected pods were read (a targeted read: the target's own Services and the
    Services it calls). None: every pod of the namespace was read. The pods behind any other Service
    are unknown, not absent: `holds_pods_of` says which Services may be judged by their pods."""
    _index: dict[tuple[str, str], dict[Any, list[KubeObject]]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, namespace: str, objects: Iterable[KubeObject], **kwargs: Any) -> Snapshot:
        """From objects that carry their `kind` (tests build snapshots this way)."""
        by_kind: dict[str, list[KubeObject]] = {}
        for obj in objects:
            item = strip_values(obj) if obj.get("kind") in VALUE_FREE_KINDS else obj
            by_kind.setdefault(str(obj.get("kind")), []).append(item)
        return cls(namespace, {k: tuple(v) for k, v in by_kind.items()}, **kwargs)

    def of(self, kind: str) -> tuple[KubeObject, ...]:
        return self.objects.get(kind, ())

    def named(self, kind: str, name: str) -> KubeObject | None:
        for obj in self.of(kind):
            if name_of(obj) == name:
                return obj
        return None

    def knows(self, kind: str) -> bool:
        """True when `kind` was listed, so an absent name really is absent."""
        return kind not in self.missing

    def holds_pods_of(self, service: str) -> bool:
        """True when the pods `service` selects were read, so "it selects no ready pod" is a fact."""
        return self.knows("Pod") and (self.pods_for is None or service in self.pods_for)

    def owned_by(self, owner: KubeObject, kind: str) -> list[KubeObject]:
        uid = (owner.get("metadata") or {}).get("uid")
        if not uid:
            return []
        index = self._index.get(("owner", kind))
        if index is None:  # built once per kind: status analyzes every workload of a big namespace
            index = {}
            for obj in self.of(kind):
                for ref in owner_refs(obj):
                    index.setdefault(ref.get("uid"), []).append(obj)
            self._index[("owner", kind)] = index
        return list(index.get(uid, ()))

    def events_for(self, refs: Iterable[ObjectRef]) -> list[KubeObject]:
        index = self._index.get(("events", ""))
        if index is None:
            index = {}
            for event in self.of("Event"):
                index.setdefault(_involved(event), []).append(event)
            self._index[("events", "")] = index
        return [e for key in dict.fromkeys((r.kind, r.name) for r in refs) for e in index.get(key, ())]


def name_of(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def owner_refs(obj: KubeObject) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def _involved(event: KubeObject) -> tuple[str, str]:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    return str(involved.get("kind", "")), str(involved.get("name", ""))


BULKY_KINDS = frozenset({"Pod", "Event", "ReplicaSet", "ControllerRevision", "EndpointSlice"})
"""Kinds kept without `metadata.managedFields`: the many objects of a namespace, whose field managers
nothing reads (a Deployment's and a Service's are kept: they name who changed the template or selector;
a Node's name who cordoned or tainted it, and who wrote a condition)."""


def compact(kind: str, obj: KubeObject) -> KubeObject:
    """The form every reader of the bot sees an object in, whether it came from a list, a get, a watch
    event or the watch cache: `kind` set, `apiVersion` dropped (watch events carry it, list items do
    not), managedFields dropped for bulky kinds, Secret and ConfigMap values dropped."""
    if kind in VALUE_FREE_KINDS:
        return strip_values({**obj, "kind": kind})
    out = {k: v for k, v in obj.items() if k != "apiVersion"}
    out["kind"] = kind
    meta = obj.get("metadata")
    if kind in BULKY_KINDS and isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def strip_values(obj: KubeObject) -> KubeObject:
    """A Secret or ConfigMap with its values dropped: metadata, type and key names (values None).

    Kept beside the key names: who wrote which key when (`managedFields` reduced to manager, time
    and the data key names it owns: a ConfigMap or Secret edited without a rollout breaks pods only
    when they restart, and that edit is the culprit), and for a ConfigMap only, the host names its
    values mention (`hosts`: key → names like `payments:8080` reduced to `payments`), which is how a
    workload's dependency on a Service is found. Never a value, and nothing at all of a Secret's.
    """
    meta = obj.get("metadata") or {}
    keys = list((obj.get("data") or {}).keys()) + list((obj.get("binaryData") or {}).keys())
    keys += list((obj.get("stringData") or {}).keys())
    kept_meta = {k: meta[k] for k in ("name", "namespace", "uid", "labels", "creationTimestamp") if k in meta}
    writers = [w for w in map(_data_writer, meta.get("managedFields") or []) if w is not None]
    if writers:
        kept_meta["managedFields"] = writers
    stripped: KubeObject = {
        "kind": obj.get("kind"),
        "metadata": kept_meta,
        "type": obj.get("type"),
        "data": dict.fromkeys(keys),
    }
    if obj.get("kind") == "ConfigMap":
        # What looks secret is masked first (a key named like a password, credentials in a URL).
        data = (obj.get("data") or {}).items()
        hosts = {str(k): sorted(hosts_in(DEFAULT.value(str(k), str(v)))) for k, v in data}
        stripped["hosts"] = {k: v for k, v in hosts.items() if v}
    return stripped


def _data_writer(entry: dict[str, Any]) -> dict[str, Any] | None:
    """A managedFields entry reduced to who, when, and which data keys (names only) it owns."""
    fields = entry.get("fieldsV1") or {}
    owned: dict[str, dict[str, Any]] = {
        section: {k: {} for k in (fields.get(section) or {}) if isinstance(k, str) and k.startswith("f:")}
        for section in ("f:data", "f:binaryData", "f:stringData")
        if fields.get(section)
    }
    if not owned:
        return None
    return {
        "manager": entry.get("manager"),
        "operation": entry.get("operation"),
        "time": entry.get("time"),
        "fieldsV1": owned,
    }


def fetch_snapshot(kube: KubeClient, namespace: str, *, kinds: Sequence[str] = NAMESPACED_KINDS) -> Snapshot:
    """List `kinds` in `namespace` and the nodes, in parallel, one list call per kind.

    Pods are the one kind we cannot do without: when they are forbidden the person may not read
    this namespace, and we say so. Other forbidden kinds are recorded and skipped.
    """
    wanted = [k for k in kinds if k in KINDS] + list(CLUSTER_KINDS)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="snapshot") as pool:
        futures = {k: pool.submit(_list_kind, kube, k, namespace) for k in wanted}
        results = {k: _outcome(f) for k, f in futures.items()}
    pods = results.get("Pod")
    if isinstance(pods, ClusterUnavailable):
        raise pods
    for outcome in results.values():
        if isinstance(outcome, ClusterUnavailable):
            raise outcome
    if isinstance(pods, PermissionDenied):
        raise PermissionDenied(
            f"You may not read namespace `{namespace}`: the cluster refused to list its pods for you."
        ) from pods
    objects: dict[str, tuple[KubeObject, ...]] = {}
    errors: list[str] = []
    missing: set[str] = set()
    for kind, outcome in results.items():
        if isinstance(outcome, K8sBotError):
            missing.add(kind)
            # Not worth a note: a kind the server doesn't serve, and cluster-scoped kinds (nodes) that
            # people with namespace-scoped RBAC (most of them) may not list.
            expected = isinstance(outcome, NotFound) or (
                isinstance(outcome, PermissionDenied) and not KINDS[kind].namespaced
            )
            if not expected:
                errors.append(f"could not list {KINDS[kind].plural}: {outcome}")
            continue
        objects[kind] = tuple(outcome)
    return Snapshot(namespace, objects, tuple(errors), frozenset(missing))


def _outcome(future: Any) -> list[KubeObject] | K8sBotError:
    try:
        result: list[KubeObject] = future.result()
    except K8sBotError as e:
        return e
    return result


def _list_kind(kube: KubeClient, kind: str, namespace: str) -> list[KubeObject]:
    spec = KINDS[kind]
    items = kube.list(spec.path(namespace if spec.namespaced else None))
    return [compact(kind, item) for item in items]  # list items come without their kind


def read_pod_log(
    kube: KubeClient,
    namespace: str,
    pod: str,
    *,
    container: str | None = None,
    previous: bool = False,
    tail_lines: int | None = 200,
    since_seconds: int | None = None,
    limit_bytes: int = 256 * 1024,
) -> str:
    """One container's log (bounded by lines and bytes), as text. Not redacted: callers redact."""
    query: dict[str, Any] = {"container": container, "tailLines": tail_lines, "limitBytes": limit_bytes}
    if previous:
        query["previous"] = "true"
    if since_seconds:
        query["sinceSeconds"] = since_seconds
    return kube.text(KINDS["Pod"].path(namespace, pod, "log"), **{k: v for k, v in query.items() if v is not None})
