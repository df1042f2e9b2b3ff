"""Helpers for tests that talk to a real Kubernetes API server through `bot.kube.client.KubeClient`.

Objects travel as plain JSON dicts, as everywhere in the bot. `wait_for` is the only way tests wait:
it polls, and on timeout says what it waited for and what it saw last, so a failure explains itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import K8sBotError, NotFound
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.model import KubeObject

REPO = Path(__file__).resolve().parent.parent
SIM_LABEL = "sim.k8sbot.dev/scenario"
"""The pod label that hands a pod to a scenario stage of the local kwok cluster (docs/local-cluster.md)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    """The cluster the tests run against (the `cluster` fixture)."""

    kubeconfig: str
    local: bool
    """True when the session started or reused the project's local cluster (scripts/local-cluster)."""
    kwok_stages: bool
    """The k8sbot scenario Stages are installed (so `sim.k8sbot.dev/scenario` pods break on purpose)."""

    def client(self) -> KubeClient:
        return KubeClient.from_kubeconfig(self.kubeconfig)


# -- waiting -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """A predicate's answer that carries what it saw, so a timeout can report it.

    `value` is what `wait_for` returns once `ok`; `state` is what a timeout message shows.
    """

    ok: bool
    state: Any = None
    value: Any = None


class WaitTimeout(AssertionError):
    """`wait_for` gave up. An AssertionError so pytest shows it as a plain test failure."""


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition", *, interval: float = 0.25
) -> Any:
    """Poll `predicate` until it succeeds; return its value.

    Success is a truthy return, or an `Observed` with ok=True (then its `value`, else its `state`, is
    returned). A K8sBotError raised by the predicate (e.g. NotFound before the object exists) counts as
    "not yet" and becomes the last observed state.
    """
    deadline = time.monotonic() + timeout
    last: Any = "<never polled>"
    while True:
        try:
            result = predicate()
        except K8sBotError as e:
            last = f"{type(e).__name__}: {e}"
        else:
            if isinstance(result, Observed):
                if result.ok:
                    return result.value if result.value is not None else result.state
                last = result.state
            elif result:
                return result
            else:
                last = result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last observed: {last!r}")
        time.sleep(interval)


# -- paths and CRUD --------------------------------------------------------------------------------

# Kinds tests create that the bot's own table (bot.kube.kinds) has no reason to know.
_EXTRA_PLURALS: dict[tuple[str, str], tuple[str, bool]] = {
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("authorization.k8s.io/v1", "SubjectAccessReview"): ("subjectaccessreviews", False),
    ("kwok.x-k8s.io/v1alpha1", "Logs"): ("logs", True),
    ("kwok.x-k8s.io/v1alpha1", "Stage"): ("stages", False),
}


def resource_path(
    api_version: str, kind: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """The REST path of a kind (collection when `name` is None)."""
    known = KINDS.get(kind)
    if known and known.group_version == api_version:
        plural, namespaced = known.plural, known.namespaced
    elif (api_version, kind) in _EXTRA_PLURALS:
        plural, namespaced = _EXTRA_PLURALS[(api_version, kind)]
    else:
        raise KeyError(f"no REST path known for {api_version} {kind}; add it to _EXTRA_PLURALS")
    parts = ["/api/v1" if api_version == "v1" else f"/apis/{api_version}"]
    if namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def path_of(obj: KubeObject, *, collection: bool = False, subresource: str | None = None) -> str:
    meta = obj.get("metadata") or {}
    return resource_path(
        obj["apiVersion"], obj["kind"], meta.get("namespace"), None if collection else meta["name"], subresource
    )


def create(kube: KubeClient, obj: KubeObject) -> KubeObject:
    """POST the object; fails if it exists (tests want to know)."""
    return kube.request("POST", path_of(obj, collection=True), body=obj)


def apply(kube: KubeClient, obj: KubeObject, *, field_manager: str = "k8sbot-tests") -> KubeObject:
    """Server-side apply (create or update), as `kubectl apply --server-side --force-conflicts`.

    JSON is YAML, so the body goes as application/apply-patch+yaml unchanged.
    """
    return kube.request(
        "PATCH",
        path_of(obj),
        body=obj,
        content_type="application/apply-patch+yaml",
        query={"fieldManager": field_manager, "force": "true"},
    )


def patch(
    kube: KubeClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    kind_of_patch: str = "strategic",
    subresource: str | None = None,
) -> KubeObject:
    """PATCH with a strategic-merge (default), merge or json patch body."""
    content_type = {
        "strategic": "application/strategic-merge-patch+json",
        "merge": "application/merge-patch+json",
        "json": "application/json-patch+json",
    }[kind_of_patch]
    path = resource_path(api_version, kind, namespace, name, subresource)
    return kube.request("PATCH", path, body=body, content_type=content_type)


def get(kube: KubeClient, api_version: str, kind: str, namespace: str | None, name: str) -> KubeObject:
    return kube.get(resource_path(api_version, kind, namespace, name))


def delete(
    kube: KubeClient, api_version: str, kind: str, namespace: str | None, name: str, *, missing_ok: bool = True
) -> None:
    """DELETE without waiting for the object to be gone (background propagation)."""
    try:
        kube.request(
            "DELETE",
            resource_path(api_version, kind, namespace, name),
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )
    except NotFound:
        if not missing_ok:
            raise


# -- reading state ---------------------------------------------------------------------------------


def pods(kube: KubeClient, namespace: str, selector: str | None = None) -> list[KubeObject]:
    return kube.list(resource_path("v1", "Pod", namespace), labelSelector=selector)


def events_for(kube: KubeClient, namespace: str, name: str, kind: str = "Pod") -> list[KubeObject]:
    """Events whose involvedObject is `kind/name` in `namespace`."""
    return kube.list(
        resource_path("v1", "Event", namespace), fieldSelector=f"involvedObject.name={name},involvedObject.kind={kind}"
    )


def event_reasons(events: Iterable[KubeObject]) -> set[str]:
    return {e.get("reason", "") for e in events}


def is_ready(pod: KubeObject) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def container_state(pod: KubeObject, index: int = 0) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[index] if len(statuses) > index else {}


def waiting_reason(pod: KubeObject) -> str | None:
    return ((container_state(pod).get("state") or {}).get("waiting") or {}).get("reason")


def pod_summary(pod: KubeObject) -> str:
    """One line per pod for timeout messages: name, phase, ready, waiting reason, restarts."""
    status = pod.get("status") or {}
    state = container_state(pod)
    return (
        f"{pod['metadata']['name']}: phase={status.get('phase')} ready={is_ready(pod)} "
        f"waiting={waiting_reason(pod)} restarts={state.get('restartCount')}"
    )


def replica_sets(kube: KubeClient, namespace: str, deployment: str) -> list[KubeObject]:
    """The ReplicaSets a Deployment owns, oldest revision first."""
    owned = [
        rs
        for rs in kube.list(resource_path("apps/v1", "ReplicaSet", namespace))
        if any(
            ref.get("kind") == "Deployment" and ref.get("name") == deployment
            for ref in rs["metadata"].get("ownerReferences") or []
        )
    ]
    return sorted(owned, key=revision_of)


def revision_of(obj: KubeObject) -> int:
    """`deployment.kubernetes.io/revision` of a Deployment or ReplicaSet (0 when not set yet)."""
    return int((obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))


def deployment_rolled_out(kube: KubeClient, namespace: str, name: str) -> Observed:
    """Observed(ok) once the Deployment's newest generation is fully rolled out and available
    (what `kubectl rollout status` waits for)."""
    d = get(kube, "apps/v1", "Deployment", namespace, name)
    spec, status = d["spec"], d.get("status") or {}
    want = spec.get("replicas", 1)
    ok = (
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
    )
    state = {
        k: status.get(k)
        for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    }
    state["want"] = want
    return Observed(ok, state, d)


def wait_rolled_out(kube: KubeClient, namespace: str, name: str, timeout: float = 60.0) -> KubeObject:
    result: KubeObject = wait_for(
        lambda: deployment_rolled_out(kube, namespace, name), timeout, f"Deployment {namespace}/{name} to roll out"
    )
    return result


def rollback_to(kube: KubeClient, namespace: str, name: str, revision: int) -> KubeObject:
    """Put revision `revision`'s pod template back on the Deployment (what `kubectl rollout undo
    --to-revision` does): the controller then reuses that ReplicaSet under a new revision number."""
    for rs in replica_sets(kube, namespace, name):
        if revision_of(rs) == revision:
            template = rs["spec"]["template"]
            labels = dict(template["metadata"].get("labels") or {})
            labels.pop("pod-template-hash", None)  # the controller adds it; it is not part of the template
            template["metadata"]["labels"] = labels
            return patch(
                kube,
                "apps/v1",
                "Deployment",
                namespace,
                name,
                [{"op": "replace", "path": "/spec/template", "value": template}],
                kind_of_patch="json",
            )
    raise NotFound(f"Deployment {namespace}/{name} has no ReplicaSet with revision {revision}")


# -- pod logs (kwok) -------------------------------------------------------------------------------


def pod_logs_dir() -> Path:
    """Where `set_pod_logs` writes log files: under the local cluster's state dir, which the kwok
    process serving them can read (it runs on this machine)."""
    state = Path(os.environ.get("K8SBOT_STATE_DIR") or REPO / ".local")
    return state / "pod-logs" / os.environ.get("K8SBOT_CLUSTER_NAME", "k8sbot-dev")


def _cri_log(lines: Iterable[str], end: datetime) -> str:
    """Lines in the CRI log format kubelet writes and kwok serves: `<RFC3339Nano> stdout F <text>`."""
    lines = list(lines)
    out = []
    for i, line in enumerate(lines):
        at = end - timedelta(milliseconds=len(lines) - i)
        out.append(f"{at.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z stdout F {line}\n")
    return "".join(out)


def set_pod_logs(
    kube: KubeClient,
    namespace: str,
    pod_name_or_selector: str,
    container: str,
    *,
    current: Iterable[str] = (),
    previous: Iterable[str] | None = None,
    log_dir: Path | None = None,
) -> list[str]:
    """Make `GET .../pods/P/log?container=C` (and `&previous=true`) return these lines, through kwok.

    `pod_name_or_selector` is a pod name, or a label selector (anything with `=`) for all its pods.
    Writes CRI-format files (absolute paths) and a kwok `Logs` object per pod, named like the pod,
    keeping entries of the pod's other containers. Returns the pod names. kwok only: a `Logs` object
    means nothing to another cluster.
    """
    if "=" in pod_name_or_selector:
        names = [p["metadata"]["name"] for p in pods(kube, namespace, pod_name_or_selector)]
        if not names:
            raise NotFound(f"no pods match {pod_name_or_selector!r} in {namespace}")
    else:
        names = [pod_name_or_selector]
    now = datetime.now(UTC)
    for name in names:
        folder = (log_dir or pod_logs_dir()).resolve() / namespace / name
        folder.mkdir(parents=True, exist_ok=True)
        entry: dict[str, Any] = {"containers": [container], "follow": False}
        current_file = folder / f"{container}.log"
        current_file.write_text(_cri_log(current, now))
        entry["logsFile"] = str(current_file)
        if previous is not None:
            previous_file = folder / f"{container}.previous.log"
            previous_file.write_text(_cri_log(previous, now - timedelta(minutes=1)))
            entry["previousLogsFile"] = str(previous_file)
        try:
            existing = get(kube, "kwok.x-k8s.io/v1alpha1", "Logs", namespace, name)["spec"]["logs"]
        except NotFound:
            existing = []
        others = [e for e in existing if container not in (e.get("containers") or [])]
        apply(
            kube,
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"logs": [*others, entry]},
            },
        )
    return names


def bind_role(
    kube: KubeClient,
    namespace: str,
    cluster_role: str,
    *,
    group: str | None = None,
    user: str | None = None,
    name: str | None = None,
) -> None:
    """A RoleBinding in `namespace` of ClusterRole `cluster_role` to one group or user."""
    if (group is None) == (user is None):
        raise ValueError("bind_role needs exactly one of group= or user=")
    subject = {"kind": "Group", "name": group} if group else {"kind": "User", "name": str(user)}
    create(
        kube,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name or f"{group or user}-{cluster_role}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}],
        },
    )
