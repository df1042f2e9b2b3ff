"""What alerting remembers of the cluster: stripped objects fed by the shared watchers, in memory.

Only the fields the analyzers read are kept (a pod is a few hundred bytes, not its 5-10 kB API
form), pods are indexed by their controller's uid, and each object keeps its last few Warning
events, so "the pods of this workload" is a dictionary lookup and 5,000 pods fit in a few MB.

`apply` takes what a watcher saw and returns the workloads it touched (`ObjectRef`s to re-evaluate).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from bot.alerting.routing import TEAM_ANNOTATION
from bot.kube.revisions import REVISION_ANNOTATION
from bot.model import KubeObject, ObjectRef
from bot.text import clip

KINDS = ("Pod", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Node", "Namespace")
EVENTS_PER_OBJECT = 4
MESSAGE_CHARS = 300
TOP_KINDS = {"ReplicaSet": "Deployment", "Job": "CronJob"}
Key = tuple[str, str, str]  # kind, namespace ("" for cluster-scoped), name


def _pick(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: obj[k] for k in keys if k in obj and obj[k] is not None}


def _short(text: Any) -> Any:
    return clip(text, MESSAGE_CHARS) if isinstance(text, str) else text


def _meta(obj: KubeObject, *, annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    kept = _pick(meta, "name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "resourceVersion")
    owners = [_pick(r, "kind", "name", "uid", "controller") for r in meta.get("ownerReferences") or []]
    if owners:
        kept["ownerReferences"] = owners
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k in annotations}
    if notes:
        kept["annotations"] = notes
    return kept


def _conditions(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**_pick(c, "type", "status", "reason", "lastTransitionTime"), "message": _short(c.get("message"))}
        for c in status.get("conditions") or []
    ]


def _container_status(cs: dict[str, Any]) -> dict[str, Any]:
    def state(s: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, given in (s or {}).items():
            detail = given or {}
            out[name] = {
                **_pick(detail, "reason", "exitCode", "finishedAt", "startedAt"),
                "message": _short(detail.get("message")),
            }
        return out

    return {
        **_pick(cs, "name", "ready", "restartCount", "image"),
        "state": state(cs.get("state")),
        "lastState": state(cs.get("lastState")),
    }


def strip_pod(pod: KubeObject) -> KubeObject:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    containers = [
        _pick(
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "readinessProbe": c.get("readinessProbe"),
                "resources": {"limits": _pick((c.get("resources") or {}).get("limits") or {}, "memory")},
            },
            "name",
            "image",
            "readinessProbe",
            "resources",
        )
        for c in spec.get("containers") or []
    ]
    return {
        "kind": "Pod",
        "metadata": _meta(pod),
        "spec": {**_pick(spec, "nodeName"), "containers": containers},
        "status": {
            **_pick(status, "phase", "reason", "startTime"),
            "message": _short(status.get("message")),
            "conditions": _conditions(status),
            "containerStatuses": [_container_status(c) for c in status.get("containerStatuses") or []],
            "initContainerStatuses": [_container_status(c) for c in status.get("initContainerStatuses") or []],
        },
    }


def _managed_fields(obj: KubeObject) -> list[dict[str, Any]]:
    """managedFields reduced to who wrote spec.template / spec.replicas and when (revisions.py reads them)."""
    kept = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        spec = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        owned: dict[str, Any] = {k: {} for k in ("f:template", "f:replicas") if k in spec}
        if owned or entry.get("subresource") == "scale":
            kept.append({**_pick(entry, "manager", "time", "subresource"), "fieldsV1": {"f:spec": owned}})
    return kept


def strip_workload(kind: str, obj: KubeObject) -> KubeObject:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _meta(obj, annotations=(REVISION_ANNOTATION, TEAM_ANNOTATION))
    managed = _managed_fields(obj) if kind == "Deployment" else []
    if managed:
        meta["managedFields"] = managed
    kept_spec = _pick(spec, "replicas", "backoffLimit", "suspend", "unschedulable", "progressDeadlineSeconds")
    if kind in ("ReplicaSet", "Deployment", "StatefulSet", "DaemonSet") and "template" in spec:
        kept_spec["template"] = spec["template"]  # template diffs name the culprit change
    kept_status = {
        k: v
        for k, v in status.items()
        if k
        not in (
            "conditions",
            "images",
            "nodeInfo",
            "addresses",
            "allocatable",
            "capacity",
            "daemonEndpoints",
            "volumesAttached",
        )
    }
    kept_status["conditions"] = _conditions(status)
    return {"kind": kind, "metadata": meta, "spec": kept_spec, "status": kept_status}


def strip(kind: str, obj: KubeObject) -> KubeObject:
    if kind == "Pod":
        return strip_pod(obj)
    if kind == "Namespace":
        return {"kind": kind, "metadata": _meta(obj, annotations=(TEAM_ANNOTATION,))}
    return strip_workload(kind, obj)


def _key(kind: str, obj: KubeObject) -> Key:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _controller(obj: KubeObject) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def _newer(old: KubeObject | None, new: KubeObject) -> bool:
    """False when `new` is an older version than what we hold (a replayed event after a seeding list)."""
    if old is None:
        return True
    before = str((old.get("metadata") or {}).get("resourceVersion") or "")
    after = str((new.get("metadata") or {}).get("resourceVersion") or "")
    if before.isdigit() and after.isdigit():  # etcd versions; opaque in general, so only compared when numeric
        return int(after) >= int(before)
    return True


class ClusterIndex:
    """Stripped objects by key, children by owner uid, recent Warning events by involved object."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[Key, KubeObject] = {}
        self.children: dict[str, set[Key]] = {}  # owner uid → keys of the objects it controls
        self.events: dict[Key, deque[KubeObject]] = {}

    def __len__(self) -> int:
        return len(self.objects)

    # -- writing ----------------------------------------------------------------------------------

    def apply(self, kind: str, event_type: str, obj: KubeObject) -> list[ObjectRef]:
        """Take one watched object; return the workloads to re-evaluate."""
        if kind not in KINDS:
            return []
        key = _key(kind, obj)
        with self.lock:
            old = self.objects.get(key)
            if event_type == "DELETED":
                self._remove(key, old)
                return self._touched(kind, obj)
            stripped = strip(kind, obj)
            if not _newer(old, stripped):
                return []
            self._remove(key, old)
            self.objects[key] = stripped
            owner = _controller(stripped)
            if owner and owner.get("uid"):
                self.children.setdefault(str(owner["uid"]), set()).add(key)
            return self._touched(kind, stripped)

    def _remove(self, key: Key, old: KubeObject | None) -> None:
        if old is None:
            return
        self.objects.pop(key, None)
        self.events.pop(key, None)
        owner = _controller(old)
        if owner and owner.get("uid"):
            siblings = self.children.get(str(owner["uid"]))
            if siblings is not None:
                siblings.discard(key)
                if not siblings:
                    del self.children[str(owner["uid"])]

    def add_event(self, *, involved: ObjectRef, reason: str, message: str, count: int, last: str) -> list[ObjectRef]:
        key = (involved.kind, involved.namespace or "", involved.name)
        event = {
            "kind": "Event",
            "type": "Warning",
            "reason": reason,
            "message": _short(message),
            "count": count,
            "lastTimestamp": last,
            "involvedObject": {"kind": involved.kind, "name": involved.name, "namespace": involved.namespace},
        }
        with self.lock:
            if key not in self.objects and involved.kind in ("Pod", "ReplicaSet"):
                return []  # events of objects we do not hold (yet) would only be kept forever
            recent = self.events.setdefault(key, deque(maxlen=EVENTS_PER_OBJECT))
            recent = deque(
                (e for e in recent if (e["reason"], e["message"]) != (reason, event["message"])),
                maxlen=EVENTS_PER_OBJECT,
            )
            recent.append(event)
            self.events[key] = recent
            obj = self.objects.get(key)
            return self._touched(involved.kind, obj) if obj else []

    # -- reading ----------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> KubeObject | None:
        return self.objects.get((kind, namespace or "", name))

    def owned(self, owner: KubeObject) -> list[KubeObject]:
        uid = (owner.get("metadata") or {}).get("uid")
        with self.lock:
            keys = list(self.children.get(str(uid), ())) if uid else []
            return [self.objects[k] for k in keys if k in self.objects]

    def in_namespace(self, kind: str, namespace: str) -> list[KubeObject]:
        """The held objects of one kind in one namespace, by name."""
        with self.lock:
            return [obj for (k, ns, _), obj in sorted(self.objects.items()) if k == kind and ns == namespace]

    def events_of(self, keys: Iterable[Key]) -> list[KubeObject]:
        with self.lock:
            return [e for k in keys for e in self.events.get(k, ())]

    def workload_of(self, kind: str, obj: KubeObject) -> ObjectRef:
        """The top workload of an object: pod → ReplicaSet → Deployment, pod → Job → CronJob."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        ref = ObjectRef(kind, namespace, str(meta.get("name") or ""))
        for _ in range(2):
            owner = _controller(obj)
            if owner is None:
                return ref
            ref = ObjectRef(str(owner.get("kind")), namespace, str(owner.get("name")))
            if ref.kind not in TOP_KINDS:
                return ref
            above = self.get(ref.kind, namespace, ref.name)
            if above is None:
                return ref
            obj = above
        return ref

    def _touched(self, kind: str, obj: KubeObject) -> list[ObjectRef]:
        if kind == "Namespace":
            return []
        return [self.workload_of(kind, obj)]

    def workloads(self) -> list[ObjectRef]:
        """Every top-level workload and node held (for a full re-evaluation)."""
        with self.lock:
            keys = list(self.objects)
        found: set[ObjectRef] = set()
        for kind, namespace, name in keys:
            if kind == "Namespace":
                continue
            obj = self.objects.get((kind, namespace, name))
            if obj is not None:
                found.add(self.workload_of(kind, obj))
        return sorted(found)
