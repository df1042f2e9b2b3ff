"""Who owns what: pod → ReplicaSet → Deployment, pod → Job → CronJob, in a fetched snapshot."""

from __future__ import annotations

from bot.kube.snapshot import Snapshot, owner_refs
from bot.model import KubeObject, ObjectRef


def controller_ref(obj: KubeObject) -> dict[str, str] | None:
    refs = owner_refs(obj)
    for ref in refs:
        if ref.get("controller"):
            return ref
    return refs[0] if refs else None


def workload_of(obj: KubeObject, snapshot: Snapshot) -> ObjectRef | None:
    """The top-level workload that owns `obj` (Deployment over ReplicaSet, CronJob over Job)."""
    namespace = snapshot.namespace
    ref = controller_ref(obj)
    if ref is None:
        return None
    kind, name = str(ref.get("kind")), str(ref.get("name"))
    if kind in ("ReplicaSet", "Job"):
        owner = snapshot.named(kind, name)
        above = controller_ref(owner) if owner else None
        if above and above.get("kind") in ("Deployment", "CronJob"):
            return ObjectRef(str(above["kind"]), namespace, str(above["name"]))
    return ObjectRef(kind, namespace, name)


def pods_of(workload: KubeObject, snapshot: Snapshot) -> list[KubeObject]:
    """Pods owned by a workload, through its ReplicaSets or Jobs."""
    kind = workload.get("kind")
    if kind == "Deployment":
        return [p for rs in snapshot.owned_by(workload, "ReplicaSet") for p in snapshot.owned_by(rs, "Pod")]
    if kind == "CronJob":
        return [p for job in snapshot.owned_by(workload, "Job") for p in snapshot.owned_by(job, "Pod")]
    return snapshot.owned_by(workload, "Pod")
