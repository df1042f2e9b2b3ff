"""Changes read from the objects themselves, for when the change history does not have them.

The API keeps no old values, but it does keep when and by whom: a node condition's
`lastTransitionTime`, and `managedFields` (which field manager last wrote which field, and when).
That is enough to name a change as a culprit: "node n1's Ready became False at 10:42", "alice cordoned
node n1", "alice edited key FEATURE_FLAGS of ConfigMap checkout-config at 10:40". What we can't know
(the value before) stays None; a Secret's values are never read at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.diagnosis.quota import describe_limits
from bot.diagnosis.references import references
from bot.kube.revisions import spec_writer, template_diff
from bot.kube.snapshot import Snapshot, name_of
from bot.model import CulpritChange, KubeObject, ObjectRef, parse_time
from bot.redaction import DEFAULT, Redactor

PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
CONTROLLERS = frozenset({"kube-controller-manager", "kube-scheduler", "kubelet", "kwok"})
_QUOTA = re.compile(r"exceeded quota: ([a-z0-9.-]+)(?:.*?limited: ([^\s,]+)=)?")
_LIMIT_WORDS = re.compile(r"(?i)limitrange|(maximum|minimum) \S+ usage per|limit to request ratio")
_TAINT = re.compile(r"untolerated taint\(?s?\)?\s*\{([^}]*)\}")


def node_changes(node: KubeObject) -> list[CulpritChange]:
    """A not-Ready or pressured node's condition transitions, its cordon and its taints."""
    ref = ObjectRef("Node", None, name_of(node))
    found: list[CulpritChange] = []
    for condition in (node.get("status") or {}).get("conditions") or []:
        kind, status = condition.get("type"), condition.get("status")
        bad = (kind == "Ready" and status != "True") or (kind in PRESSURES and status == "True")
        if bad:
            found.append(
                CulpritChange(
                    ref,
                    parse_time(condition.get("lastTransitionTime")),
                    _condition_writer(node, str(kind)),
                    None,
                    f"status.conditions.{kind}",
                    None,
                    status,
                )
            )
    return found


def blockers(node: KubeObject) -> list[CulpritChange]:
    """What keeps new pods off a node: a cordon, and taints a person (not a controller) set."""
    ref = ObjectRef("Node", None, name_of(node))
    spec = node.get("spec") or {}
    found: list[CulpritChange] = []
    if spec.get("unschedulable"):
        actor, at = spec_writer(node, "unschedulable")
        found.append(CulpritChange(ref, at, actor, None, "spec.unschedulable", False, True))
    for taint in spec.get("taints") or []:
        key = str(taint.get("key"))
        if key.startswith("node.kubernetes.io/") or key.startswith("node.cloudprovider.kubernetes.io/"):
            continue  # set by controllers for a condition, which is named on its own
        actor, at = _taint_writer(node, key)
        value = f"={taint['value']}" if taint.get("value") else ""
        found.append(
            CulpritChange(ref, at, actor, None, f"spec.taints.{key}", None, f"{key}{value}:{taint.get('effect')}")
        )
    return found


def _taint_writer(node: KubeObject, key: str) -> tuple[str | None, datetime | None]:
    """Who wrote the taint with `key`: the managedFields entry that owns its item, not whoever last
    wrote any taint. The API server keeps taints as one atomic list, so an entry usually owns
    `f:taints` whole (no item keys): its newest writer wrote the taint too, unless that was a
    controller rewriting the list (then who added this one is not known)."""
    best: tuple[str | None, datetime | None] = (None, None)
    whole: tuple[str | None, datetime | None] = (None, None)
    for entry in (node.get("metadata") or {}).get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:taints" not in spec:
            continue
        taints = spec.get("f:taints") or {}
        manager = str(entry.get("manager") or "") or None
        at = parse_time(entry.get("time"))
        if at is None:
            continue
        if any(_item_key(item) == key for item in taints) and (best[1] is None or at > best[1]):
            best = (manager, at)
        elif not taints and (whole[1] is None or at > whole[1]):
            whole = (manager, at)
    if best[1] is not None:
        return best
    return (None, None) if whole[0] in CONTROLLERS else whole


def _item_key(item: str) -> str | None:
    if not item.startswith("k:"):
        return None
    try:
        value = json.loads(item[2:])
    except ValueError:
        return None
    return str(value.get("key")) if isinstance(value, dict) else None


def _condition_writer(node: KubeObject, kind: str) -> str | None:
    wanted = f"k:{json.dumps({'type': kind}, separators=(',', ':'))}"
    best: tuple[str, str] | None = None
    for entry in (node.get("metadata") or {}).get("managedFields") or []:
        conditions = ((entry.get("fieldsV1") or {}).get("f:status") or {}).get("f:conditions") or {}
        if wanted in conditions and (best is None or str(entry.get("time") or "") > best[0]):
            best = (str(entry.get("time") or ""), str(entry.get("manager") or ""))
    return best[1] or None if best else None


def scheduling_blockers(pods: Iterable[KubeObject], snapshot: Snapshot) -> list[CulpritChange]:
    """Cordons and taints of the nodes a Pending pod's scheduling message says kept it off."""
    held = {
        id(pod): str(c.get("message") or "")
        for pod in pods
        for c in (pod.get("status") or {}).get("conditions") or []
        if c.get("type") == "PodScheduled" and c.get("status") == "False"
    }
    if not held:
        return []
    pending = [p for p in pods if id(p) in held]
    text = " ".join(held.values())
    named = _taints(text)
    selectors = [dict((p.get("spec") or {}).get("nodeSelector") or {}) for p in pods]
    found: list[CulpritChange] = []
    for node in snapshot.of("Node"):
        labels = (node.get("metadata") or {}).get("labels") or {}
        if selectors and not any(all(labels.get(k) == v for k, v in s.items()) for s in selectors):
            continue  # a node the pods could never use did not keep them off
        taints = {str(t.get("key")): t for t in (node.get("spec") or {}).get("taints") or []}
        for change in blockers(node):
            cordon = change.path == "spec.unschedulable" and "unschedulable" in text
            key = change.path.removeprefix("spec.taints.")
            if not change.path.startswith("spec.taints."):
                taint = False
            elif named:
                taint = key in named
            else:  # newer schedulers say "untolerated taint(s)" without naming them
                taint = "untolerated taint" in text and not all(_tolerates(p, taints.get(key) or {}) for p in pending)
            if cordon or taint:
                found.append(change)
    return found


def _tolerates(pod: KubeObject, taint: dict[str, Any]) -> bool:
    """Whether one of the pod's tolerations matches the taint (Kubernetes' rule); a PreferNoSchedule
    taint keeps no pod off."""
    if taint.get("effect") not in ("NoSchedule", "NoExecute"):
        return True
    for toleration in (pod.get("spec") or {}).get("tolerations") or []:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration.get("key") == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def _taints(text: str) -> set[str]:
    return {part.split(":", 1)[0].strip() for match in _TAINT.finditer(text) for part in match.group(1).split(",")}


def config_edits(
    template: dict[str, Any], snapshot: Snapshot, *, now: datetime | None, window: timedelta
) -> list[CulpritChange]:
    """ConfigMaps and Secrets the pod template reads that someone edited in place after creating them.

    Such an edit reaches running pods only when they restart, so it is the culprit of a failure that
    starts at a restart. The key is the one the template reads when it reads one; else the keys the
    editor wrote. Values are not known here (and a Secret's are never shown).
    """
    found: list[CulpritChange] = []
    seen: set[tuple[str, str]] = set()
    for ref in references(template):
        if (ref.kind, ref.name) in seen or not snapshot.knows(ref.kind):
            continue
        seen.add((ref.kind, ref.name))
        obj = snapshot.named(ref.kind, ref.name)
        if obj is None:
            continue
        edit = _last_edit(obj, ref.key)
        if edit is None:
            continue
        at, actor, key = edit
        if now is not None and at < now - window:
            continue
        found.append(CulpritChange(ObjectRef(ref.kind, snapshot.namespace, ref.name), at, actor, None, key, None, None))
    return found


def _last_edit(obj: KubeObject, key: str | None) -> tuple[datetime, str | None, str] | None:
    """(when, who, `data.KEY`) of the newest write to data keys that came after the object's creation."""
    meta = obj.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    best: tuple[datetime, str | None, str] | None = None
    for entry in meta.get("managedFields") or []:
        at = parse_time(entry.get("time"))
        if at is None or created is None or at <= created or entry.get("manager") in CONTROLLERS:
            continue
        keys = _keys(entry.get("fieldsV1") or {})
        if not keys:
            continue
        chosen = key if key in keys else sorted(keys)[0]
        if best is None or at > best[0]:
            best = (at, entry.get("manager"), f"data.{chosen}")
    return best


def _keys(fields: dict[str, Any]) -> Sequence[str]:
    return [
        k.removeprefix("f:")
        for section in ("f:data", "f:binaryData", "f:stringData")
        for k in (fields.get(section) or {})
        if k.startswith("f:")
    ]


def policy_changes(
    messages: Sequence[str], snapshot: Snapshot, *, now: datetime | None, window: timedelta
) -> list[CulpritChange]:
    """The ResourceQuota or LimitRange a refusal to create pods names, as the change that made it refuse:
    the last write of its limits (an edit, or its creation: a new LimitRange is a change of policy)."""
    text = " ".join(messages)
    found: list[CulpritChange] = []
    for match in _QUOTA.finditer(text):
        quota = snapshot.named("ResourceQuota", match.group(1))
        if quota is None:
            continue
        hard = (quota.get("spec") or {}).get("hard") or {}
        written = _spec_write(quota, "hard", prefer=match.group(2))
        if written is not None:
            at, actor, resource = written
            ref = ObjectRef("ResourceQuota", snapshot.namespace, name_of(quota))
            found.append(CulpritChange(ref, at, actor, None, f"spec.hard.{resource}", None, hard.get(resource)))
    if _LIMIT_WORDS.search(text):
        for limit_range in snapshot.of("LimitRange"):
            written = _spec_write(limit_range, "limits")
            if written is not None:
                ref = ObjectRef("LimitRange", snapshot.namespace, name_of(limit_range))
                found.append(
                    CulpritChange(ref, written[0], written[1], None, "spec.limits", None, describe_limits(limit_range))
                )
    return [c for c in found if now is None or c.at is None or c.at >= now - window]


def _spec_write(obj: KubeObject, field: str, *, prefer: str | None = None) -> tuple[datetime, str | None, str] | None:
    """(when, who, which key) of the newest write of `spec.<field>` (for `hard`: the resource written)."""
    best: tuple[datetime, str | None, str] | None = None
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        owned = (((entry.get("fieldsV1") or {}).get("f:spec")) or {}).get(f"f:{field}")
        at = parse_time(entry.get("time"))
        if owned is None or at is None or entry.get("manager") in CONTROLLERS:
            continue
        keys = sorted(k.removeprefix("f:") for k in owned if k.startswith("f:"))
        key = prefer if prefer in keys else (keys[0] if keys else field)
        if best is None or at > best[0]:
            best = (at, entry.get("manager"), str(key))
    return best


def autoscaler_changes(hpas: Iterable[KubeObject], *, now: datetime | None, window: timedelta) -> list[CulpritChange]:
    """An autoscaler's bounds (maxReplicas, minReplicas) written after it was created."""
    found: list[CulpritChange] = []
    for hpa in hpas:
        spec = hpa.get("spec") or {}
        created = parse_time((hpa.get("metadata") or {}).get("creationTimestamp"))
        for field in ("maxReplicas", "minReplicas"):
            actor, at = spec_writer(hpa, field)
            if at is None or created is None or at <= created or (now is not None and at < now - window):
                continue
            ref = ObjectRef("HorizontalPodAutoscaler", (hpa.get("metadata") or {}).get("namespace"), name_of(hpa))
            found.append(CulpritChange(ref, at, actor, None, f"spec.{field}", None, spec.get(field)))
    return found


def cronjob_change(cronjob: KubeObject, snapshot: Snapshot, *, redactor: Redactor = DEFAULT) -> list[CulpritChange]:
    """A CronJob whose newest Job fails while an older one succeeded: what its job template changed.

    Each Job keeps the template it was made from, so the two Jobs' templates are the before and the
    after (values that look secret redacted first); who and when come from the CronJob's managedFields.
    """
    jobs = sorted(
        snapshot.owned_by(cronjob, "Job"), key=lambda j: str((j.get("metadata") or {}).get("creationTimestamp"))
    )
    if len(jobs) < 2 or not _job_failed(jobs[-1]):
        return []
    good = next((j for j in reversed(jobs[:-1]) if (j.get("status") or {}).get("succeeded")), None)
    if good is None:
        return []
    fields = list(template_diff(_job_template(good), _job_template(jobs[-1]), redactor=redactor))
    fields = [
        f
        for f in fields
        if not f.path.startswith(
            (
                "spec.template.metadata.labels.batch.kubernetes.io/",
                "spec.template.metadata.labels.controller-uid",
                "spec.template.metadata.labels.job-name",
            )
        )
    ]
    if not fields:
        return []
    field = next((f for f in fields if f.path.startswith("spec.template.spec.")), fields[0])
    actor, at = spec_writer(cronjob, "jobTemplate")
    ref = ObjectRef("CronJob", snapshot.namespace, name_of(cronjob))
    path = "spec.jobTemplate." + field.path
    return [
        CulpritChange(
            ref,
            at or parse_time((jobs[-1].get("metadata") or {}).get("creationTimestamp")),
            actor,
            None,
            path,
            field.before,
            field.after,
        )
    ]


def _job_template(job: KubeObject) -> dict[str, Any]:
    return dict((job.get("spec") or {}).get("template") or {})


def _job_failed(job: KubeObject) -> bool:
    status = job.get("status") or {}
    failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in status.get("conditions") or [])
    return failed or bool(status.get("failed"))


def budget_changes(budgets: Iterable[KubeObject], *, now: datetime | None, window: timedelta) -> list[CulpritChange]:
    """A PodDisruptionBudget's last write of `minAvailable` or `maxUnavailable` (an edit, or its
    creation: a new budget is a change of policy), with the value it has now."""
    found: list[CulpritChange] = []
    for budget in budgets:
        spec = budget.get("spec") or {}
        ref = ObjectRef("PodDisruptionBudget", (budget.get("metadata") or {}).get("namespace"), name_of(budget))
        for field in ("minAvailable", "maxUnavailable"):
            if field not in spec:
                continue
            actor, at = spec_writer(budget, field)
            if at is None or (now is not None and at < now - window):
                continue
            what = f"{field} of PodDisruptionBudget {ref.name}"
            found.append(CulpritChange(ref, at, actor, None, f"spec.{field}", None, spec.get(field), what))
    return found
