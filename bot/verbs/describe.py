"""`describe <kind/name>`: the useful half of `kubectl describe`, with de-duplicated events.

Two requests: the object, and its events (one when the bot holds a watch cache: the events come from
it). Secrets and ConfigMaps show their key names and
containers their env var names, never values; every line and event message is redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.diagnosis.analyzers.pod import describe_probe
from bot.diagnosis.events import summarize
from bot.diagnosis.exit_codes import explain_exit_code
from bot.errors import UsageError
from bot.kube.kinds import KINDS
from bot.kube.resolving import split_kind
from bot.kube.revisions import REVISION_ANNOTATION
from bot.kube.snapshot import VALUE_FREE_KINDS, strip_values
from bot.model import Answer, Command, KubeObject, ObjectRef
from bot.redaction import DEFAULT, Redactor
from bot.verbs.history import describe_at

MAX_EVENTS = 8
USAGE = "describe <kind/name> [-n namespace] [--at 2h|<RFC 3339 time>]"
KEYS_ONLY = frozenset({"Secret", "ConfigMap"})
"""Kinds described by their type and key names only (`Keys: password` must not read as a secret)."""


@verb(
    VerbSpec(
        name="describe",
        summary="an object's state, conditions and events (the useful half of kubectl describe)",
        usage=USAGE,
        examples=(
            "describe deploy/checkout -n shop",
            "describe pod/checkout-7d9f-abcde",
            "describe node/kwok-node-0",
            "describe deploy/checkout -n shop --at 2h",
        ),
        flags=(
            NAMESPACE_FLAG,
            FlagSpec("at", "str", "as it was then (2h ago, or an RFC 3339 time), rebuilt from the recorded changes"),
        ),
        target="required",
    )
)
def describe_verb(ctx: VerbContext, command: Command) -> Answer:
    kind_name, name = split_kind(str(command.target))
    if kind_name is None:
        raise UsageError("Say which kind: `describe deploy/checkout`, `describe pod/<name>`, `describe svc/<name>`.")
    kind = KINDS[kind_name]
    namespace = ctx.namespace_for(command) if kind.namespaced else None
    if command.flag("at") is not None:  # going back in time: from the change history, not the API
        return describe_at(ctx, ObjectRef(kind_name, namespace, name), str(command.flag("at")), usage=USAGE)
    obj = ctx.kube.get(kind.path(namespace, name))
    obj["kind"] = kind_name
    if kind_name in VALUE_FREE_KINDS:
        obj = strip_values(obj)
    cache = ctx.cache
    if namespace and cache is not None and cache.usable(namespace):
        # the object itself always from the API (one get: current by definition); its events from the cache
        events = [e for e in cache.events(namespace, [name]) if _involved_kind(e) == kind_name]
    else:
        selector = f"involvedObject.kind={kind_name},involvedObject.name={name}"
        events_path = KINDS["Event"].path(namespace) if namespace else KINDS["Event"].path()
        events = ctx.kube.list(events_path, fieldSelector=selector)
    redactor = ctx.services.redactor
    lines = describe_lines(obj, redactor) + event_lines(events, redactor)
    ref = ObjectRef(kind_name, namespace, name)
    data = {"ref": ref.to_json(), "lines": lines, "events": [asdict(e) for e in _events(events, redactor)]}
    return Answer(
        verb="describe",
        data=data,
        title=f"{kind_name} {name}" + (f" in {namespace}" if namespace else ""),
        lines=tuple(lines),
    )


def _involved_kind(event: KubeObject) -> str:
    return str((event.get("involvedObject") or event.get("regarding") or {}).get("kind") or "")


def _events(events: list[KubeObject], redactor: Redactor) -> list[Any]:
    shown = summarize(events, warnings_only=False)[:MAX_EVENTS]
    return [replace(e, message=redactor.text(e.message)) for e in shown]


def event_lines(events: list[KubeObject], redactor: Redactor = DEFAULT) -> list[str]:
    shown = _events(events, redactor)
    if not shown:
        return ["Events: none recent"]
    return ["Events:"] + [f"  {redactor.text(e.line())}" for e in shown]


def describe_lines(obj: KubeObject, redactor: Redactor = DEFAULT) -> list[str]:
    """Pure: the lines for one object (tests call this with plain dicts)."""
    meta = obj.get("metadata") or {}
    lines = [f"{obj.get('kind')} {meta.get('name')}" + (f" in {meta['namespace']}" if meta.get("namespace") else "")]
    lines.append(f"Created: {meta.get('creationTimestamp', '?')}")
    if meta.get("labels"):
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(meta["labels"].items())))
    section = _SECTIONS.get(str(obj.get("kind")))
    if section:
        lines += section(obj)
    lines += _conditions(obj)
    lines = [redactor.text(line) for line in lines]
    if obj.get("kind") in KEYS_ONLY:  # the type and key names, never values: nothing to redact
        lines += _keys(obj)
    return lines


def _conditions(obj: KubeObject) -> list[str]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    if not conditions or obj.get("kind") == "Node":
        return []
    out = ["Conditions:"]
    for c in conditions:
        why = f" {c.get('reason')}" if c.get("reason") else ""
        message = f": {c.get('message')}" if c.get("message") else ""
        out.append(f"  {c.get('type')}={c.get('status')}{why}{message}")
    return out


def _containers(spec: dict[str, Any], statuses: list[dict[str, Any]]) -> list[str]:
    by_name = {s.get("name"): s for s in statuses}
    out = []
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        out.append(f"Container {c.get('name')}: image {c.get('image')}")
        status = by_name.get(c.get("name"))
        if status:
            out.append(
                f"  State: {_state(status.get('state') or {})}; ready={status.get('ready')}, "
                f"restarts={status.get('restartCount', 0)}"
            )
            last = (status.get("lastState") or {}).get("terminated")
            if last:
                out.append(
                    f"  Last terminated: {explain_exit_code(last.get('exitCode'), last.get('reason'))} "
                    f"at {last.get('finishedAt', '?')}"
                )
        resources = c.get("resources") or {}
        if resources:
            out.append(f"  Requests: {_pairs(resources.get('requests'))}; Limits: {_pairs(resources.get('limits'))}")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if c.get(probe):
                out.append(f"  {probe}: {describe_probe(c[probe])}")
        env = [e.get("name") for e in c.get("env") or []]
        if env:
            out.append(f"  Env: {', '.join(map(str, env))}")  # names only: values may be secrets
    return out


def _state(state: dict[str, Any]) -> str:
    if "running" in state:
        return f"Running since {state['running'].get('startedAt', '?')}"
    if "waiting" in state:
        w = state["waiting"]
        return f"Waiting ({w.get('reason')})" + (f": {w.get('message')}" if w.get("message") else "")
    if "terminated" in state:
        t = state["terminated"]
        return f"Terminated: {explain_exit_code(t.get('exitCode'), t.get('reason'))}"
    return "unknown"


def _pairs(values: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "none"


def _pod(obj: KubeObject) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [
        f"Status: {status.get('phase')}" + (f" ({status.get('reason')})" if status.get("reason") else ""),
        f"Node: {spec.get('nodeName') or '(not scheduled)'}; IP: {status.get('podIP') or '-'}",
    ]
    owner = next(iter((obj.get("metadata") or {}).get("ownerReferences") or []), None)
    if owner:
        lines.append(f"Controlled by: {owner.get('kind')}/{owner.get('name')}")
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    return lines + _containers(spec, statuses)


def _workload(obj: KubeObject) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    lines = [
        f"Replicas: {spec.get('replicas', 1)} desired, {status.get('updatedReplicas', 0)} updated, "
        f"{status.get('readyReplicas', 0)} ready, {status.get('availableReplicas', 0)} available",
        f"Selector: {_pairs((spec.get('selector') or {}).get('matchLabels'))}",
    ]
    if REVISION_ANNOTATION in annotations:
        lines.append(f"Revision: {annotations['deployment.kubernetes.io/revision']}")
    strategy = spec.get("strategy") or spec.get("updateStrategy") or {}
    if strategy:
        lines.append(f"Strategy: {strategy.get('type')} {_pairs(strategy.get('rollingUpdate'))}")
    return lines + _containers((spec.get("template") or {}).get("spec") or {}, [])


def _service(obj: KubeObject) -> list[str]:
    spec = obj.get("spec") or {}
    ports = ", ".join(
        f"{p.get('port')}→{p.get('targetPort', p.get('port'))}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    return [
        f"Type: {spec.get('type', 'ClusterIP')}; ClusterIP: {spec.get('clusterIP', '-')}",
        f"Selector: {_pairs(spec.get('selector'))}",
        f"Ports: {ports or 'none'}",
    ]


def _node(obj: KubeObject) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"Unschedulable: {bool(spec.get('unschedulable'))}"]
    taints = ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in spec.get("taints") or [])
    lines.append(f"Taints: {taints or 'none'}")
    lines.append(f"Allocatable: {_pairs(status.get('allocatable'))}")
    for c in status.get("conditions") or []:
        lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason', '')}".rstrip())
    return lines


def _keys(obj: KubeObject) -> list[str]:
    keys = sorted((obj.get("data") or {}).keys())
    return [f"Type: {obj.get('type') or '-'}", f"Keys: {', '.join(keys) or 'none'} (values not shown)"]


def _job(obj: KubeObject) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    counts = (
        f"Completions: {status.get('succeeded', 0)}/{spec.get('completions', 1)} succeeded, "
        f"{status.get('failed', 0)} failed, {status.get('active', 0)} active; "
        f"backoffLimit {spec.get('backoffLimit', 6)}"
    )
    return [counts, *_containers((spec.get("template") or {}).get("spec") or {}, [])]


_SECTIONS: dict[str, Callable[[KubeObject], list[str]]] = {
    "Pod": _pod,
    "Deployment": _workload,
    "StatefulSet": _workload,
    "DaemonSet": _workload,
    "ReplicaSet": _workload,
    "Service": _service,
    "Node": _node,
    "Job": _job,
}
