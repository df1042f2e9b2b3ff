"""`logs <target> [--container c] [--previous] [--since 10m] [--tail N] [--grep text]`: redacted logs.

A workload target picks its most telling pod (a failing one, else the newest). Every line is
redacted; a long answer shows its last lines and attaches the whole (redacted) text as a file.
"""

from __future__ import annotations

from typing import Any

from bot.commands.context import VerbContext
from bot.commands.parsing import duration_seconds
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.diagnosis.engine import scope_of
from bot.errors import NotFound, UsageError
from bot.kube.resolving import resolve, split_kind
from bot.kube.snapshot import fetch_snapshot, name_of, read_pod_log
from bot.model import Answer, Command, KubeObject

SHOWN_LINES = 40
SHOWN_CHARS = 3500
DEFAULT_TAIL = 200
LOOKUP_KINDS = ("Pod", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service")


@verb(
    VerbSpec(
        name="logs",
        summary="recent logs of a pod or workload, secrets redacted",
        usage="logs <target> [-n namespace] [--container c] [--previous] [--since 10m] [--tail N] [--grep text]",
        examples=("logs checkout -n shop", "logs checkout --previous", "logs pod/checkout-7d9f-abcde --grep timeout"),
        flags=(
            NAMESPACE_FLAG,
            FlagSpec("container", "str", "container name (default: the failing or first one)", short="c"),
            FlagSpec("previous", "bool", "the previous (crashed) container's logs", short="p"),
            FlagSpec("since", "duration", "only lines newer than this, e.g. 10m"),
            FlagSpec("tail", "int", "at most this many lines (default 200)", minimum=1, maximum=5000),
            FlagSpec("grep", "str", "only lines containing this text (case-insensitive)"),
        ),
        target="required",
    )
)
def logs_verb(ctx: VerbContext, command: Command) -> Answer:
    namespace = ctx.namespace_for(command)
    pod = _pick_pod(ctx, namespace, str(command.target))
    container = command.flag("container") or _pick_container(pod)
    names = [c.get("name") for c in _containers(pod)]
    if container not in names:
        raise UsageError(f"Pod {name_of(pod)} has no container `{container}`; it has {', '.join(map(str, names))}.")
    previous = bool(command.flag("previous", False))
    since = command.flag("since")
    text = read_pod_log(
        ctx.kube,
        namespace,
        name_of(pod),
        container=container,
        previous=previous,
        tail_lines=int(command.flag("tail", DEFAULT_TAIL)),
        since_seconds=duration_seconds(since) if since else None,
        limit_bytes=1024 * 1024,
    )
    lines = ctx.services.redactor.lines(text.rstrip("\n").split("\n")) if text.strip() else []
    grep = command.flag("grep")
    if grep:
        lines = [line for line in lines if str(grep).lower() in line.lower()]
    return _answer(namespace, name_of(pod), str(container), lines, previous=previous, grep=grep)


def _answer(namespace: str, pod: str, container: str, lines: list[str], *, previous: bool, grep: Any) -> Answer:
    shown = lines[-SHOWN_LINES:]
    while shown and sum(len(line) + 1 for line in shown) > SHOWN_CHARS:
        shown = shown[1:]
    truncated = len(shown) < len(lines)
    which = "previous" if previous else "current"
    title = f"Logs of {pod}/{container} in {namespace} ({which}" + (f", matching “{grep}”" if grep else "") + ")"
    body = list(shown) if lines else ["(no log lines)"]
    if truncated:
        body.insert(0, f"… last {len(shown)} of {len(lines)} lines; the whole log is attached")
    attachments = ((f"{pod}-{container}.log", "\n".join(lines) + "\n"),) if truncated else ()
    data = {
        "namespace": namespace,
        "pod": pod,
        "container": container,
        "previous": previous,
        "line_count": len(lines),
        "truncated": truncated,
        "lines": shown,
    }
    return Answer(verb="logs", data=data, title=title, lines=tuple(body), attachments=attachments)


def _pick_pod(ctx: VerbContext, namespace: str, target: str) -> KubeObject:
    kind, name = split_kind(target)
    if kind == "Pod":
        pod: KubeObject = ctx.kube.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        pod.setdefault("kind", "Pod")
        return pod
    snapshot = fetch_snapshot(ctx.kube, namespace, kinds=LOOKUP_KINDS)
    resolution = resolve(snapshot, target)
    if resolution.obj.get("kind") == "Pod":
        return resolution.obj
    pods = list(scope_of(snapshot, resolution).pods)
    if not pods:
        raise NotFound(f"{resolution.ref.kind} {resolution.ref.name} has no pods, so no logs.")
    return _most_telling(pods)


def _most_telling(pods: list[KubeObject]) -> KubeObject:
    """A pod with a failing container first; else the newest."""

    def rank(pod: KubeObject) -> tuple[int, str]:
        failing = any(_failing(c) for c in (pod.get("status") or {}).get("containerStatuses") or [])
        return (1 if failing else 0, str((pod.get("metadata") or {}).get("creationTimestamp") or ""))

    return max(pods, key=rank)


def _failing(cstatus: dict[str, Any]) -> bool:
    return bool(cstatus.get("restartCount")) or not cstatus.get("ready")


def _containers(pod: KubeObject) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _pick_container(pod: KubeObject) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cstatus in statuses:
        if _failing(cstatus):
            return str(cstatus.get("name"))
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name"))
