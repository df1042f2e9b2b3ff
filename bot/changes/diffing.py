"""Turning two states of one object into a named, field-level Change. Pure: no I/O, plain dicts.

Three steps, each a function of its own:

* `snapshot(kind, obj, fingerprint=..., redactor=...)` keeps only what a change is made of (spec,
  ConfigMap data, labels/annotations that matter, Node condition statuses) and drops the rest (status
  churn, managedFields, resourceVersion, generation, timestamps, last-applied-configuration). Secret
  values are replaced by a keyed fingerprint here, and so is everything else that looks secret (env
  values, ConfigMap data and annotations under secret-looking keys, credentials inside any value:
  `bot.redaction`), before anything is stored or compared, so such a value never leaves this
  function. The marker carries the fingerprint (`[REDACTED hmac:…]`), so changing a hidden value is
  still a recorded change.
* `bot.kube.fields.differences_between(old, new)` walks the two snapshots (the one field diff of the
  bot: lists of named items match by name, so reordering is not a change).
* `describe(...)` names the change (image, scale, rollback, restart, config, secret, node condition)
  and writes its one-line summary; `bot.kube.managers.find_actor(obj, paths)` says who, from managedFields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.kube.fields import Difference, Item, differences_between, field_name, render_path, show_value
from bot.kube.gitops import management
from bot.kube.managers import find_actor
from bot.kube.revisions import REVISION_ANNOTATION, TEMPLATE_HASH_LABEL
from bot.model import Change, ChangeKind, FieldChange, KubeObject, ObjectRef, ObjectState
from bot.redaction import DEFAULT, Redactor
from bot.text import brief

Fingerprint = Callable[[str], str]
"""Maps a secret value to a short, non-reversible, keyed digest (see ChangeStore.fingerprint)."""

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MAX_TEXT = 1024
"""ConfigMap values longer than this are kept as a keyed fingerprint: enough to see that they changed."""

IGNORED_ANNOTATION_PREFIXES = (
    "kubectl.kubernetes.io/last-applied-configuration",  # a copy of the object; for Secrets, the values
    "deployment.kubernetes.io/",  # revision, desired-replicas, max-replicas: controller bookkeeping
    "control-plane.alpha.kubernetes.io/leader",
    "node.alpha.kubernetes.io/ttl",
    "volumes.kubernetes.io/controller-managed-attach-detach",
    "endpoints.kubernetes.io/last-change-trigger-time",
    "batch.kubernetes.io/job-tracking",
    "kubernetes.io/change-cause",
)
IGNORED_LABELS = frozenset(
    {TEMPLATE_HASH_LABEL, "controller-revision-hash", "controller-uid", "batch.kubernetes.io/controller-uid"}
)
TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


# -- snapshots ------------------------------------------------------------------------------------


def snapshot(kind: str, obj: KubeObject, *, fingerprint: Fingerprint, redactor: Redactor = DEFAULT) -> ObjectState:
    """Strip `obj` down to what changes are made of. Secret values become fingerprints here, and
    whatever else looks secret becomes `[REDACTED <fingerprint>]` (`redactor`'s rules)."""
    hide = redactor.keyed(fingerprint)
    meta = obj.get("metadata") or {}
    body: dict[str, Any] = {}
    kept_meta = {
        "labels": hide.tree({k: v for k, v in (meta.get("labels") or {}).items() if k not in IGNORED_LABELS}),
        "annotations": hide.tree(
            {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(IGNORED_ANNOTATION_PREFIXES)},
            "annotations",
        ),
    }
    kept_meta = {k: v for k, v in kept_meta.items() if v}
    if kept_meta:
        body["metadata"] = kept_meta
    if kind == "Secret":
        body.update(_secret_body(obj, fingerprint))
    elif kind == "ConfigMap":
        body.update(_configmap_body(obj, hide, fingerprint))
    elif kind == "Node":
        body.update(_node_body(obj))
    elif kind != "ReplicaSet" and obj.get("spec") is not None:
        body["spec"] = hide.tree(obj["spec"])
    template = (obj.get("spec") or {}).get("template") if kind in TEMPLATE_KINDS else None
    revision = _int_or_none((meta.get("annotations") or {}).get(REVISION_ANNOTATION))
    return ObjectState(
        ref=ObjectRef(kind, meta.get("namespace"), meta.get("name", "")),
        uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", ""),
        body=body,
        revision=revision,
        owner=_controller_name(meta),
        template_hash=template_hash(template) if template is not None else None,
        settled=_settled(kind, obj),
    )


def _secret_body(obj: KubeObject, fingerprint: Fingerprint) -> dict[str, Any]:
    body: dict[str, Any] = {"type": obj.get("type")}
    data = {k: fingerprint(str(v)) for k, v in (obj.get("data") or {}).items()}
    # stringData is write-only and never served, but a hand-built object may carry it: same treatment.
    data.update({k: fingerprint(str(v)) for k, v in (obj.get("stringData") or {}).items()})
    if data:
        body["data"] = data
    return body


def _configmap_body(obj: KubeObject, hide: Redactor, fingerprint: Fingerprint) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if obj.get("data"):
        body["data"] = {k: _short_text(str(k), str(v), hide, fingerprint) for k, v in obj["data"].items()}
    if obj.get("binaryData"):  # bytes are never shown: a fingerprint says whether they changed
        body["binaryData"] = {k: fingerprint(str(v)) for k, v in obj["binaryData"].items()}
    return body


def _node_body(obj: KubeObject) -> dict[str, Any]:
    """Node spec (taints, unschedulable) and the status of each condition: no heartbeats, no reasons."""
    body: dict[str, Any] = {}
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k in ("taints", "unschedulable", "podCIDR")}
    if spec:
        body["spec"] = spec
    conditions = {
        c["type"]: c.get("status") for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type")
    }
    if conditions:
        body["status"] = {"conditions": conditions}
    return body


def _short_text(key: str, value: str, hide: Redactor, fingerprint: Fingerprint) -> str:
    if len(value) > MAX_TEXT:
        return f"{fingerprint(value)} ({len(value)} chars)"
    return hide.value(key, value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _controller_name(meta: dict[str, Any]) -> str | None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("name"))
    return None


def _settled(kind: str, obj: KubeObject) -> bool:
    """A Deployment is settled once its controller has seen the latest generation.

    Only then is `deployment.kubernetes.io/revision` final, and the new ReplicaSet created, so the
    change is recorded with its revision (and as a rollback when it is one).
    """
    if kind != "Deployment":
        return True
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def template_hash(template: Any) -> str:
    """A digest of a pod template, ignoring the pod-template-hash label ReplicaSets add to it."""
    if not isinstance(template, dict):
        return ""
    labels = {
        k: v for k, v in ((template.get("metadata") or {}).get("labels") or {}).items() if k != TEMPLATE_HASH_LABEL
    }
    metadata = {**(template.get("metadata") or {}), "labels": labels}
    canonical = json.dumps({**template, "metadata": metadata}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- naming the change ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Description:
    kind: ChangeKind
    summary: str
    fields: tuple[FieldChange, ...] = field(default=())


def describe(
    ref: ObjectRef, differences: list[Difference], *, rollback_to: int | None = None, revision: int | None = None
) -> Description:
    """Name a change and summarise it in one line, most telling kind first."""
    fields = tuple(d.field_change() for d in differences)
    images = _image_changes(differences)
    if ref.kind == "Secret":
        return Description(ChangeKind.SECRET, _key_summary("Secret", differences), fields)
    if ref.kind == "ConfigMap":
        return Description(ChangeKind.CONFIG, _key_summary("ConfigMap", differences), fields)
    if ref.kind == "Node" and any(render_path(d.path).startswith("status.conditions") for d in differences):
        parts = [f"{d.path[-1]} {d.before} → {d.after}" for d in differences if d.path[:2] == ("status", "conditions")]
        return Description(ChangeKind.NODE_CONDITION, "node condition " + "; ".join(parts), fields)
    if rollback_to is not None:
        now = f" (now revision {revision})" if revision else ""
        tail = f": {images}" if images else ""
        return Description(ChangeKind.ROLLBACK, f"rolled back to revision {rollback_to}{now}{tail}", fields)
    restart = next((d for d in differences if d.path and d.path[-1] == RESTARTED_AT), None)
    if restart is not None and not images:
        return Description(ChangeKind.RESTART, f"rollout restart (restartedAt {restart.after})", fields)
    if images:
        return Description(ChangeKind.IMAGE, images, fields)
    replicas = next((d for d in differences if d.path == ("spec", "replicas")), None)
    if replicas is not None and len(differences) == 1:
        return Description(ChangeKind.SCALE, f"scaled {replicas.before} → {replicas.after} replicas", fields)
    if all(d.path and d.path[0] == "metadata" for d in differences):
        return Description(ChangeKind.METADATA, "labels/annotations: " + _paths_summary(differences), fields)
    if ref.kind == "Node" and any(d.path == ("spec", "unschedulable") for d in differences):
        cordoned = any(d.path == ("spec", "unschedulable") and d.after for d in differences)
        return Description(ChangeKind.SPEC, "cordoned" if cordoned else "uncordoned", fields)
    return Description(ChangeKind.SPEC, _paths_summary(differences), fields)


def _image_changes(differences: list[Difference]) -> str:
    parts = []
    for d in differences:
        if d.path and d.path[-1] == "image" and len(d.path) >= 2 and isinstance(d.path[-2], Item):
            key = d.path[-2].key
            name = key[1] if key else str(d.path[-2].index)
            parts.append(f"image {name}: {d.before} → {d.after}")
    return "; ".join(parts)


def _key_summary(what: str, differences: list[Difference]) -> str:
    groups: dict[str, list[str]] = {"changed": [], "added": [], "removed": []}
    others = []
    for d in differences:
        if len(d.path) == 2 and d.path[0] in ("data", "binaryData") and isinstance(d.path[1], str):
            verb = "added" if d.before is None else "removed" if d.after is None else "changed"
            groups[verb].append(d.path[1])
        elif len(d.path) == 1 and d.path[0] in ("data", "binaryData"):
            before, after = d.before or {}, d.after or {}
            groups["added"] += [k for k in after if k not in before]
            groups["removed"] += [k for k in before if k not in after]
        else:
            others.append(d)
    parts = [f"keys {verb}: {', '.join(keys)}" for verb, keys in groups.items() if keys]
    if others:
        parts.append(_paths_summary(others))
    return f"{what} " + "; ".join(parts)


def _paths_summary(differences: list[Difference], *, shown: int = 3) -> str:
    parts = []
    for d in differences[:shown]:
        name = field_name(d.path)  # `env var DB_URL of container app`, not `...env[3].value`
        if d.before is None and d.after is not None:
            parts.append(f"{name} added: {show_value(d.after, 60)}")
        elif d.after is None and d.before is not None:
            parts.append(f"{name} removed")
        elif _is_scalar(d.before) and _is_scalar(d.after):
            parts.append(f"{name}: {brief(d.before, 60)} → {brief(d.after, 60)}")
        else:
            parts.append(f"{name} changed")
    more = len(differences) - shown
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# -- the whole step -------------------------------------------------------------------------------


def build_change(
    old: ObjectState | None,
    new: ObjectState | None,
    *,
    obj: KubeObject | None,
    at: datetime,
    rollback_to: int | None = None,
) -> Change | None:
    """The Change from `old` to `new` (None: created / deleted), or None when nothing that matters changed."""
    if old is None and new is None:
        return None
    managed = management(obj) if obj else None
    controller = managed.controller if managed else None
    if old is None:
        assert new is not None
        actor = find_actor(obj or {}, [("spec",), ("data",), ("metadata",)]) or controller
        return Change(
            new.ref, at, ChangeKind.CREATED, "created", actor=actor, revision=new.revision, managed_by=managed
        )
    if new is None:
        return Change(old.ref, at, ChangeKind.DELETED, "deleted", revision=old.revision)
    differences = differences_between(old.body, new.body)
    if not differences:
        return None
    description = describe(new.ref, differences, rollback_to=rollback_to, revision=new.revision)
    return Change(
        ref=new.ref,
        at=at,
        kind=description.kind,
        summary=description.summary,
        fields=description.fields,
        actor=find_actor(obj or {}, [d.path for d in differences]) or controller,
        revision=new.revision,
        managed_by=managed,
    )
