"""`scale <target> --replicas N`: change a Deployment's or StatefulSet's replica count, confirmed first.

Through the `scale` subresource (what `kubectl scale` uses), so the bot needs no write access to the
rest of the object. `limits.max_replicas` in permissions.yaml bounds N (checked by the permission
gate, and again here so a terminal without a gate is bounded too).
"""

from __future__ import annotations

from bot.commands.acting import Applied, Plan, act, fetch_workload, field_manager, nothing_to_do
from bot.commands.auditing import ACTION_ID_FLAG
from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.errors import K8sBotError, PermissionDenied, UsageError
from bot.kube.kinds import KINDS
from bot.model import Answer, Command, FieldChange, ObjectRef

HARD_LIMIT = 10_000  # without a policy: a typo like 1000000 is refused, not sent


@verb(
    VerbSpec(
        name="scale",
        summary="set the number of replicas of a deployment or statefulset; asks to confirm",
        usage="scale <deployment|sts/name> --replicas N [-n namespace]",
        examples=("scale checkout --replicas 3 -n shop", "scale sts/db --replicas 1 -n shop"),
        flags=(
            NAMESPACE_FLAG,
            FlagSpec("replicas", "int", "the number of replicas wanted", minimum=0, maximum=HARD_LIMIT),
            ACTION_ID_FLAG,
        ),
        target="required",
        mutating=True,
    )
)
def scale_verb(ctx: VerbContext, command: Command) -> Answer:
    return act(ctx, command, plan_scale(ctx, command))


def wanted_replicas(ctx: VerbContext, command: Command) -> int:
    value = command.flag("replicas")
    if value is None:
        raise UsageError("How many? Add `--replicas N`.", usage="scale <target> --replicas N [-n namespace]")
    replicas = int(value)
    engine = ctx.services.permissions
    limit = engine.policy.limits.max_replicas if engine else HARD_LIMIT
    if not 0 <= replicas <= limit:
        raise PermissionDenied(f"permissions.yaml: limits.max_replicas is {limit}; {replicas} replicas is above it")
    return replicas


def plan_scale(ctx: VerbContext, command: Command) -> Plan:
    replicas = wanted_replicas(ctx, command)
    kind, obj, namespace = fetch_workload(ctx, command)
    name = str((obj.get("metadata") or {}).get("name"))
    ref = ObjectRef(kind.kind, namespace, name)
    scale_path = kind.path(namespace, name, "scale")
    current = int(((ctx.kube.get(scale_path).get("spec") or {}).get("replicas")) or 0)
    what = f"{kind.kind.lower()} {name} in {namespace}"
    data = {"from": current, "to": replicas}
    details = [f"Replicas: {current} → {replicas}"]
    hpa = _autoscaler(ctx, ref)
    if hpa:
        details.append(f"Note: HorizontalPodAutoscaler {hpa} manages this {kind.kind.lower()} and may change it back.")
    if current == replicas:
        return nothing_to_do(
            ref, f"Nothing to do: {what} already has {replicas} replicas.", details=tuple(details), data=data
        )

    def apply() -> Applied:
        body = {"spec": {"replicas": replicas}}
        ctx.kube.request(
            "PATCH",
            scale_path,
            body=body,
            content_type="application/merge-patch+json",
            query={"fieldManager": field_manager(ctx)},
        )
        return Applied(f"Scaled {what} from {current} to {replicas} replicas")

    change = FieldChange("spec.replicas", current, replicas)
    summary = f"Scale {what} from {current} to {replicas} replicas"
    return Plan(ref, summary, tuple(details), (change,), apply, data=data)


def _autoscaler(ctx: VerbContext, ref: ObjectRef) -> str | None:
    try:
        hpas = ctx.kube.list(KINDS["HorizontalPodAutoscaler"].path(ref.namespace))
    except K8sBotError:
        return None  # a hint only; the person may not be allowed to list autoscalers
    for hpa in hpas:
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") == ref.kind and target.get("name") == ref.name:
            return str((hpa.get("metadata") or {}).get("name"))
    return None
