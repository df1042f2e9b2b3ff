"""`restart <target>`: `kubectl rollout restart` for a Deployment, StatefulSet or DaemonSet, confirmed first.

Sets the pod-template annotation `kubectl.kubernetes.io/restartedAt`, so the controller replaces
every pod by its usual rolling update; the pod spec is otherwise untouched.
"""

from __future__ import annotations

from bot.commands.acting import Applied, Plan, act, fetch_workload, field_manager
from bot.commands.auditing import ACTION_ID_FLAG
from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, VerbSpec
from bot.errors import Conflict
from bot.model import Answer, Command, FieldChange, ObjectRef

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@verb(
    VerbSpec(
        name="restart",
        summary="replace every pod of a deployment, statefulset or daemonset (rolling); asks to confirm",
        usage="restart <deployment|sts/name|ds/name> [-n namespace]",
        examples=("restart checkout -n shop", "restart ds/log-agent -n shop"),
        flags=(NAMESPACE_FLAG, ACTION_ID_FLAG),
        target="required",
        mutating=True,
    )
)
def restart_verb(ctx: VerbContext, command: Command) -> Answer:
    return act(ctx, command, plan_restart(ctx, command))


def plan_restart(ctx: VerbContext, command: Command) -> Plan:
    kind, obj, namespace = fetch_workload(ctx, command)
    spec = obj.get("spec") or {}
    name = str((obj.get("metadata") or {}).get("name"))
    ref = ObjectRef(kind.kind, namespace, name)
    what = f"{kind.kind.lower()} {name} in {namespace}"
    if spec.get("paused"):
        raise Conflict(f"{what} is paused; resume it (kubectl rollout resume) before restarting.")
    details = [f"Every pod of {what} is replaced, a few at a time, by the {kind.kind}'s update strategy."]
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        details.append("Note: its update strategy is OnDelete, so pods are replaced only when deleted.")
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    stamp = ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    change = FieldChange(f"spec.template.metadata.annotations.{RESTARTED_AT}", annotations.get(RESTARTED_AT), stamp)

    def apply() -> Applied:
        # The time is taken again at apply: the preview's stamp would be stale by the time of the click.
        now = ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        ctx.kube.request(
            "PATCH",
            kind.path(namespace, name),
            body=body,
            content_type="application/merge-patch+json",
            query={"fieldManager": field_manager(ctx)},
        )
        return Applied(f"Restarting {what}: pods are being replaced", data={"restartedAt": now})

    return Plan(ref, f"Restart {what}", tuple(details), (change,), apply)
