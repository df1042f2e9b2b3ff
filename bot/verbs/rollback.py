"""`rollback <deployment> [--to-revision N]`: what `kubectl rollout undo` does, confirmed first.

The target revision's ReplicaSet holds that revision's pod template. Like kubectl, the bot copies
that template (minus the `pod-template-hash` label the controller adds) into the Deployment and
restores the annotations the ReplicaSet carried, in one JSON patch; a `test` on
metadata.generation makes the patch fail instead of overwriting a spec someone changed meanwhile.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.commands.acting import (
    Applied,
    Plan,
    act,
    change_lines,
    fetch_workload,
    field_manager,
    images,
    nothing_to_do,
)
from bot.commands.auditing import ACTION_ID_FLAG
from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.errors import Conflict, NotFound
from bot.kube.client import InvalidRequest, KubeClient
from bot.kube.fields import field_changes
from bot.kube.gitops import rollback_warning
from bot.kube.kinds import KINDS
from bot.kube.revisions import REVISION_ANNOTATION, TEMPLATE_HASH_LABEL
from bot.model import Answer, Command, KubeObject, ObjectRef, parse_time
from bot.text import age

# Annotations a rollback keeps from the Deployment rather than copying from the ReplicaSet (kubectl's list).
KEEP_FROM_DEPLOYMENT = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def _meta(obj: KubeObject) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


def _revision(obj: KubeObject) -> int | None:
    value = (_meta(obj).get("annotations") or {}).get(REVISION_ANNOTATION)
    return int(value) if value and str(value).isdigit() else None


def revisions_of(kube: KubeClient, deployment: KubeObject) -> dict[int, KubeObject]:
    """The Deployment's ReplicaSets by revision number (only those it controls)."""
    meta = _meta(deployment)
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    found: dict[int, KubeObject] = {}
    for rs in kube.list(KINDS["ReplicaSet"].path(meta.get("namespace")), labelSelector=selector):
        owners = _meta(rs).get("ownerReferences") or []
        number = _revision(rs)
        if number is not None and any(o.get("uid") == meta.get("uid") and o.get("controller") for o in owners):
            found[number] = rs
    return found


def pod_template(rs: KubeObject) -> dict[str, Any]:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(TEMPLATE_HASH_LABEL, None)
    return template


def rollback_annotations(deployment: KubeObject, rs: KubeObject) -> dict[str, str]:
    kept = {k: v for k, v in (_meta(deployment).get("annotations") or {}).items() if k in KEEP_FROM_DEPLOYMENT}
    copied = {k: v for k, v in (_meta(rs).get("annotations") or {}).items() if k not in KEEP_FROM_DEPLOYMENT}
    return {**kept, **copied}


def choose_revision(revisions: dict[int, KubeObject], current: int | None, wanted: int) -> int:
    """`wanted`, or (0) the newest revision before the current one, as `kubectl rollout undo` picks."""
    if wanted:
        if wanted not in revisions:
            known = ", ".join(str(n) for n in sorted(revisions)) or "none"
            raise NotFound(f"Revision {wanted} is not in this deployment's history (revisions: {known}).")
        return wanted
    newest = current if current is not None else max(revisions, default=0)
    earlier = [n for n in revisions if n < newest]
    if not earlier:
        raise NotFound("There is no earlier revision to roll back to (the history has only the current one).")
    return max(earlier)


@verb(
    VerbSpec(
        name="rollback",
        summary="roll a deployment back to its previous (or a given) revision; asks to confirm",
        usage="rollback <deployment> [-n namespace] [--to-revision N]",
        examples=("rollback checkout -n shop", "rollback deploy/checkout -n shop --to-revision 3"),
        flags=(
            NAMESPACE_FLAG,
            FlagSpec("to-revision", "int", "the revision to return to (default: the previous one)", minimum=0),
            ACTION_ID_FLAG,
        ),
        target="required",
        mutating=True,
    )
)
def rollback_verb(ctx: VerbContext, command: Command) -> Answer:
    return act(ctx, command, plan_rollback(ctx, command))


def plan_rollback(ctx: VerbContext, command: Command) -> Plan:
    _, deployment, namespace = fetch_workload(ctx, command)
    meta = _meta(deployment)
    ref = ObjectRef("Deployment", namespace, str(meta.get("name")))
    if (deployment.get("spec") or {}).get("paused"):
        raise Conflict(f"deployment {ref.name} is paused; resume it (kubectl rollout resume) before rolling back.")
    revisions = revisions_of(ctx.kube, deployment)
    current = _revision(deployment)
    number = choose_revision(revisions, current, int(command.flag("to-revision") or 0))
    rs = revisions[number]
    template = pod_template(rs)
    hide = ctx.services.redactor.tree  # the preview shows the template diff, never a secret value
    now_template = (deployment.get("spec") or {}).get("template") or {}
    changes = field_changes(hide(now_template), hide(template), prefix="spec.template")
    created = parse_time(_meta(rs).get("creationTimestamp"))
    to_images, to_age = images(template), age(created, ctx.now)
    target = {
        "revision": number,
        "images": to_images,
        "created": created.isoformat() if created else None,
        "age": to_age,
    }
    now_images = images((deployment.get("spec") or {}).get("template") or {})
    data = {"from": {"revision": current, "images": now_images}, "to": target}
    described = f"revision {number} (image {', '.join(to_images)}, {to_age} old)"
    details = (
        f"Now: revision {current} (image {', '.join(now_images)})",
        f"Back to: {described}",
        "Changes to the pod template:",
        *change_lines(changes),
    )
    if not changes:
        return nothing_to_do(
            ref,
            f"Nothing to do: {ref.name} already runs the template of revision {number}.",
            details=details,
            data=data,
        )
    patch = [
        {"op": "test", "path": "/metadata/generation", "value": meta.get("generation")},
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations", "value": rollback_annotations(deployment, rs)},
    ]

    def apply() -> Applied:
        try:
            ctx.kube.request(
                "PATCH",
                KINDS["Deployment"].path(namespace, ref.name),
                body=patch,
                content_type="application/json-patch+json",
                query={"fieldManager": field_manager(ctx)},
            )
        except InvalidRequest as e:
            raise Conflict(f"deployment {ref.name} changed while rolling back; nothing was changed ({e}).") from e
        return Applied(
            f"Rolled back deployment {ref.name} in {namespace} to {described}",
            (f"A new rollout has started. Follow it with /k8s why {ref.name} -n {namespace}",),
        )

    summary = f"Roll back deployment {ref.name} in {namespace} from revision {current} to {described}"
    warning = rollback_warning(deployment, ref)  # a GitOps controller would put it back: say so, never refuse
    return Plan(
        ref,
        summary,
        details,
        tuple(changes),
        apply,
        pins={"to-revision": str(number)},
        data=data,
        warnings=(warning,) if warning else (),
    )
