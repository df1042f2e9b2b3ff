"""Causes beyond the pod template, on the test cluster: a broken dependency, a sick node, a ConfigMap
edited without a rollout, namespace policy (LimitRange, ResourceQuota), other workload kinds.

Like tests/scenarios.py, each function makes ONE real change to a real object, with a named field
manager where a person would be blamed (`alice`), and waits for the real controllers to react.

Simulations, where the local kwok cluster has no kubelet or program to misbehave:
- "the container restarted and now crashes" without any template change: `crash_pods` labels the
  running pods `sim.k8sbot.dev/scenario=crashloop` and sets them back to phase Pending, so the kwok
  crash-loop stage takes them (restart counts, BackOff events), as a restart would;
- node conditions: `own_node` creates a node of the test's own (tainted, so no other test's pods land
  on it) labelled `sim.k8sbot.dev/node`, which the kwok node stages leave alone; `node_condition`
  then patches its status as a kubelet would, and the real node lifecycle controller reacts (taints
  it, marks its pods not ready).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kube_helpers import SIM_LABEL, Observed, apply, create, delete, get, is_ready, pod_summary, pods, wait_for
from scenarios import App, checkout_manifests, deploy_checkout

from bot.errors import NotFound
from bot.kube.client import KubeClient
from bot.model import KubeObject

ALICE = "alice"
NODE_LABEL = "sim.k8sbot.dev/node"
"""A node with this label is left alone by the kwok node stages (deploy/local-cluster/stages/node.yaml)."""
TEST_NODE_TAINT = "k8sbot.dev/test-node"


def next_second() -> None:
    """managedFields times have one-second resolution: an edit in the same second as the object's
    creation can't be told from the creation (nor can it by a person reading `kubectl get -o yaml`)."""
    time.sleep(1.05)


def request(kube: KubeClient, method: str, path: str, body: Any, *, manager: str, kind: str = "merge") -> KubeObject:
    content_type = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json"}
    return kube.request(method, path, body=body, content_type=content_type[kind], query={"fieldManager": manager})


# -- dependencies ---------------------------------------------------------------------------------


def deploy_payments(kube: KubeClient, namespace: str, *, replicas: int = 2) -> App:
    """`payments`, the Service checkout calls (checkout's env PAYMENT_API_URL is http://payments:8080)."""
    return deploy_checkout(kube, namespace, name="payments", replicas=replicas)


def scale_as(kube: KubeClient, app: App, replicas: int, *, manager: str = ALICE) -> None:
    """Scale by patching the Deployment's spec.replicas (`kubectl patch`), with `manager` as field manager.

    Not through the scale subresource: this API server records no field manager for `spec.replicas`
    written there, so who scaled would be unknowable (`kubectl scale` leaves the same gap).
    """
    path = f"/apis/apps/v1/namespaces/{app.namespace}/deployments/{app.name}"
    request(kube, "PATCH", path, {"spec": {"replicas": replicas}}, manager=manager)
    if replicas == 0:
        wait_for(
            lambda: Observed(
                not (found := pods(kube, app.namespace, app.selector_text)), [pod_summary(p) for p in found]
            ),
            45,
            f"all pods of {app.namespace}/{app.name} gone",
        )


def crash_pods(
    kube: KubeClient, namespace: str, selector: str, *, reason: str = "Error", exit_code: int = 1
) -> list[str]:
    """The running pods restart and crash from now on, with no change to their template (see above)."""
    names = [
        p["metadata"]["name"] for p in pods(kube, namespace, selector) if not p["metadata"].get("deletionTimestamp")
    ]
    for name in names:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        annotations = {"sim.k8sbot.dev/reason": reason, "sim.k8sbot.dev/exit-code": str(exit_code)}
        request(
            kube,
            "PATCH",
            path,
            {"metadata": {"labels": {SIM_LABEL: "crashloop"}, "annotations": annotations}},
            manager="kubelet-sim",
        )
        # Back to Pending without its IPs: the crash-loop stage assigns them again, as for a new pod.
        request(
            kube,
            "PATCH",
            path + "/status",
            {"status": {"phase": "Pending", "podIP": None, "podIPs": None}},
            manager="kubelet-sim",
        )

    def crashing() -> Observed:
        found = [p for p in pods(kube, namespace, selector) if p["metadata"]["name"] in names]
        waiting = [
            ((p["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting", {}).get("reason")
            for p in found
        ]
        return Observed(bool(found) and all(w == "CrashLoopBackOff" for w in waiting), [pod_summary(p) for p in found])

    wait_for(crashing, 45, f"pods {names} in CrashLoopBackOff")
    return names


# -- config that acts late ------------------------------------------------------------------------


def deploy_with_config(kube: KubeClient, namespace: str, *, name: str = "checkout", replicas: int = 2) -> App:
    """checkout reading ConfigMap `checkout-config` (envFrom) and Secret `checkout-db` (one key)."""
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "namespace": namespace},
            "data": {"FEATURE_FLAGS": "fast-checkout", "CURRENCY": "EUR"},
        },
    )
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-db", "namespace": namespace},
            "stringData": {"password": "first-s3cret-value"},
        },
    )
    deployment, service = checkout_manifests(namespace, name=name, replicas=replicas)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": f"{name}-config"}}]
    container["env"].append(
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "password"}}}
    )
    create(kube, deployment)
    create(kube, service)
    wait_for(
        lambda: Observed(
            len([p for p in pods(kube, namespace, f"app={name}") if is_ready(p)]) == replicas,
            [pod_summary(p) for p in pods(kube, namespace, f"app={name}")],
        ),
        60,
        f"{namespace}/{name} ready",
    )
    return App(
        namespace,
        name,
        {"app": name},
        "app",
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        replicas,
    )


def edit_config(
    kube: KubeClient, namespace: str, kind: str, name: str, key: str, value: str, *, manager: str = ALICE
) -> None:
    """Edit one key of a ConfigMap or Secret in place (no rollout), as `kubectl edit` would."""
    plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
    next_second()
    body = {"data": {key: value}} if kind == "ConfigMap" else {"stringData": {key: value}}
    request(kube, "PATCH", f"/api/v1/namespaces/{namespace}/{plural}/{name}", body, manager=manager)


# -- nodes ----------------------------------------------------------------------------------------


@contextmanager
def own_node(kube: KubeClient, name: str) -> Iterator[str]:
    """A kwok node only this test's pods go to (tainted; they tolerate it), deleted afterwards."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", TEST_NODE_TAINT: name, "kubernetes.io/hostname": name},
        },
        "spec": {"taints": [{"key": TEST_NODE_TAINT, "value": name, "effect": "NoSchedule"}]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "localhost"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    }
    create(kube, node)
    try:
        wait_for(lambda: _condition(get(kube, "v1", "Node", None, name), "Ready") == "True", 30, f"node {name} Ready")
        # From now on kwok leaves its status to the test.
        request(
            kube,
            "PATCH",
            f"/api/v1/nodes/{name}",
            {"metadata": {"labels": {NODE_LABEL: "manual"}}},
            manager="k8sbot-tests",
        )
        yield name
    finally:
        delete(kube, "v1", "Node", None, name)


def _condition(node: KubeObject, kind: str) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


def node_stages_leave_labelled_nodes_alone(kube: KubeClient) -> bool:
    """The cluster's node stages have the `sim.k8sbot.dev/node` exclusion (a cluster started from an
    older deploy/local-cluster would heal the test's node at once)."""
    stage = get(kube, "kwok.x-k8s.io/v1alpha1", "Stage", None, "node-initialize")
    return NODE_LABEL in str(stage.get("spec", {}).get("selector"))


def deploy_on_node(kube: KubeClient, namespace: str, node: str, *, name: str = "checkout", replicas: int = 2) -> App:
    deployment, service = checkout_manifests(namespace, name=name, replicas=replicas)
    spec = deployment["spec"]["template"]["spec"]
    spec["nodeSelector"] = {TEST_NODE_TAINT: node}
    spec["tolerations"] = [{"key": TEST_NODE_TAINT, "operator": "Equal", "value": node, "effect": "NoSchedule"}]
    create(kube, deployment)
    create(kube, service)
    wait_for(
        lambda: Observed(
            len([p for p in pods(kube, namespace, f"app={name}") if is_ready(p)]) == replicas,
            [pod_summary(p) for p in pods(kube, namespace, f"app={name}")],
        ),
        60,
        f"{namespace}/{name} ready on {node}",
    )
    return App(namespace, name, {"app": name}, "app", spec["containers"][0]["image"], replicas)


def node_condition(
    kube: KubeClient, node: str, kind: str, status: str, *, reason: str, message: str, manager: str = "kubelet-sim"
) -> None:
    """Set one node condition through the status subresource, as the kubelet reports it."""
    conditions = get(kube, "v1", "Node", None, node)["status"]["conditions"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for c in conditions:
        if c["type"] == kind:
            c.update(status=status, reason=reason, message=message, lastTransitionTime=now, lastHeartbeatTime=now)
    request(
        kube,
        "PATCH",
        f"/api/v1/nodes/{node}/status",
        {"status": {"conditions": conditions}},
        manager=manager,
        kind="strategic",
    )


def mark_pods_unready(kube: KubeClient, app: App, *, message: str = "node is not ready") -> None:
    """The pods of a node whose runtime is down: not ready, as its kubelet reports them."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in pods(kube, app.namespace, app.selector_text):
        conditions = pod["status"].get("conditions") or []
        for c in conditions:
            if c["type"] in ("Ready", "ContainersReady"):
                c.update(status="False", reason="NodeNotReady", message=message, lastTransitionTime=now)
        statuses = pod["status"].get("containerStatuses") or []
        for c in statuses:
            c["ready"] = False
        body = {"status": {"conditions": conditions, "containerStatuses": statuses}}
        path = f"/api/v1/namespaces/{app.namespace}/pods/{pod['metadata']['name']}/status"
        request(kube, "PATCH", path, body, manager="kubelet-sim", kind="strategic")


def cordon(kube: KubeClient, node: str, *, manager: str = ALICE) -> None:
    request(kube, "PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}}, manager=manager)


def taint(kube: KubeClient, node: str, key: str, value: str, *, manager: str = ALICE) -> None:
    """Add a NoSchedule taint `key=value` beside the node's others (`kubectl taint`)."""
    taints = list(get(kube, "v1", "Node", None, node).get("spec", {}).get("taints") or [])
    taints.append({"key": key, "value": value, "effect": "NoSchedule"})
    request(kube, "PATCH", f"/api/v1/nodes/{node}", {"spec": {"taints": taints}}, manager=manager)


def replace_a_pod_held_off(kube: KubeClient, app: App) -> None:
    """Delete one of the app's pods and wait until its replacement is Pending, held off every node
    (the scheduler says why in its PodScheduled condition)."""
    replace_a_pod(kube, app)

    def pending() -> Observed:
        found = pods(kube, app.namespace, app.selector_text)
        held = [
            p
            for p in found
            if p["status"].get("phase") == "Pending"
            and any(
                c.get("type") == "PodScheduled" and c.get("status") == "False"
                for c in p["status"].get("conditions") or []
            )
        ]
        return Observed(bool(held), [pod_summary(p) for p in found])

    wait_for(pending, 45, f"a Pending replacement pod of {app.namespace}/{app.name}")


# -- namespace policy ------------------------------------------------------------------------------


def replace_a_pod(kube: KubeClient, app: App) -> str:
    """Delete one pod, so its ReplicaSet must create a new one (and admission judges it)."""
    victim = str(pods(kube, app.namespace, app.selector_text)[0]["metadata"]["name"])
    delete(kube, "v1", "Pod", app.namespace, victim)
    return victim


def wait_failed_create(kube: KubeClient, app: App, words: str) -> str:
    """Until the app's ReplicaSet reports FailedCreate with `words` in it; returns the message."""

    def refused() -> Observed:
        events = kube.list(f"/api/v1/namespaces/{app.namespace}/events", fieldSelector="involvedObject.kind=ReplicaSet")
        messages = [str(e.get("message")) for e in events if e.get("reason") == "FailedCreate"]
        hit = next((m for m in messages if words in m), None)
        return Observed(hit is not None, messages, hit)

    message: str = wait_for(refused, 45, f"FailedCreate ({words}) on {app.namespace}/{app.name}'s ReplicaSet")
    return message


def add_limit_range(kube: KubeClient, namespace: str, *, max_memory: str = "128Mi", manager: str = ALICE) -> None:
    """A LimitRange whose Container maximum is below what the running pods have (they keep running;
    new ones are refused at admission)."""
    body = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "container-limits", "namespace": namespace},
        "spec": {"limits": [{"type": "Container", "max": {"memory": max_memory}}]},
    }
    kube.request("POST", f"/api/v1/namespaces/{namespace}/limitranges", body=body, query={"fieldManager": manager})


def add_quota(kube: KubeClient, namespace: str, cpu: str, *, manager: str = "k8sbot-tests") -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": namespace},
        "spec": {"hard": {"requests.cpu": cpu}},
    }
    kube.request("POST", f"/api/v1/namespaces/{namespace}/resourcequotas", body=body, query={"fieldManager": manager})
    wait_for(
        lambda: get(kube, "v1", "ResourceQuota", namespace, "compute").get("status", {}).get("used"),
        30,
        "ResourceQuota usage to be computed",
    )


def lower_quota(kube: KubeClient, namespace: str, cpu: str, *, manager: str = ALICE) -> None:
    path = f"/api/v1/namespaces/{namespace}/resourcequotas/compute"
    next_second()
    request(kube, "PATCH", path, {"spec": {"hard": {"requests.cpu": cpu}}}, manager=manager)


def add_autoscaler(kube: KubeClient, app: App, *, min_replicas: int, max_replicas: int) -> None:
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    path = f"/apis/autoscaling/v2/namespaces/{app.namespace}/horizontalpodautoscalers"
    kube.request("POST", path, body=body, query={"fieldManager": "k8sbot-tests"})


def lower_max_replicas(kube: KubeClient, app: App, maximum: int, *, manager: str = ALICE) -> None:
    """Lower the autoscaler's maxReplicas below the running replicas: the HPA controller scales the
    Deployment down to it (no metrics needed for that: the local cluster has no metrics server)."""
    path = f"/apis/autoscaling/v2/namespaces/{app.namespace}/horizontalpodautoscalers/{app.name}"
    next_second()
    request(kube, "PATCH", path, {"spec": {"maxReplicas": maximum, "minReplicas": 1}}, manager=manager)
    wait_for(
        lambda: Observed(
            get(kube, "apps/v1", "Deployment", app.namespace, app.name)["spec"]["replicas"] == maximum,
            get(kube, "apps/v1", "Deployment", app.namespace, app.name)["spec"]["replicas"],
        ),
        60,
        f"the autoscaler to scale {app.namespace}/{app.name} down to {maximum}",
    )


# -- other workload kinds --------------------------------------------------------------------------


def statefulset_with_unbindable_claim(kube: KubeClient, namespace: str, *, storage_class: str = "fast-ssd") -> str:
    """A StatefulSet whose volumeClaimTemplate asks for a StorageClass the cluster doesn't have: its
    PVC stays Pending (the volume controller says why) and its first pod can't be scheduled."""
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": namespace},
        "spec": {
            "serviceName": "db",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "db",
                            "image": "registry.example.com/shop/db:16",
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/db"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": storage_class,
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    create(kube, sts)

    def pending_claim() -> Observed:
        events = kube.list(f"/api/v1/namespaces/{namespace}/events", fieldSelector="involvedObject.name=data-db-0")
        return Observed(any(e.get("reason") == "ProvisioningFailed" for e in events), [e.get("reason") for e in events])

    wait_for(pending_claim, 45, "ProvisioningFailed on PVC data-db-0")
    return "db"


def cronjob_broken_by_template_change(kube: KubeClient, namespace: str, *, manager: str = ALICE) -> str:
    """CronJob `nightly`: a Job made from it succeeds; `manager` changes its job template (the args, and
    the sim label that makes the program fail); the next Job made from it fails. Jobs are made as
    `kubectl create job --from=cronjob/nightly` does (owned by the CronJob), not by waiting for the
    schedule."""
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"app": "nightly"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "report",
                                    "image": "registry.example.com/shop/report:2.0.1",
                                    "args": ["--since=24h"],
                                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                                }
                            ],
                        },
                    },
                }
            },
        },
    }
    created = create(kube, cronjob)
    _job_from(kube, created, "nightly-manual-1")
    wait_for(
        lambda: get(kube, "batch/v1", "Job", namespace, "nightly-manual-1").get("status", {}).get("succeeded"),
        45,
        "the first Job to succeed",
    )
    next_second()
    change = {
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": {SIM_LABEL: "fail"}, "annotations": {"sim.k8sbot.dev/exit-code": "2"}},
                        "spec": {"containers": [{"name": "report", "args": ["--since=24h", "--format=v2"]}]},
                    }
                }
            }
        }
    }
    path = f"/apis/batch/v1/namespaces/{namespace}/cronjobs/nightly"
    updated = request(kube, "PATCH", path, change, manager=manager, kind="strategic")
    _job_from(kube, updated, "nightly-manual-2")

    def failed() -> Observed:
        conditions = (
            get(kube, "batch/v1", "Job", namespace, "nightly-manual-2").get("status", {}).get("conditions") or []
        )
        return Observed(any(c["type"] == "Failed" and c["status"] == "True" for c in conditions), conditions)

    wait_for(failed, 45, "the second Job to fail")
    return "nightly"


def _job_from(kube: KubeClient, cronjob: KubeObject, name: str) -> None:
    meta = cronjob["metadata"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": cronjob["spec"]["jobTemplate"]["spec"],
    }
    create(kube, job)


def rollout_to_a_bad_image(kube: KubeClient, namespace: str, kind: str, *, manager: str = ALICE) -> str:
    """A StatefulSet `db` (2 replicas) or a DaemonSet `agent` (on kwok-node-0) whose pods are ready;
    then `manager` changes its image to a tag that does not exist (and the sim label that makes the
    kubelet simulation fail the pull): its new revision's pod stays in ImagePullBackOff."""
    name = "db" if kind == "StatefulSet" else "agent"
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": f"registry.example.com/shop/{name}:16.4",
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                }
            ]
        },
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    resource = "statefulsets" if kind == "StatefulSet" else "daemonsets"
    if kind == "StatefulSet":
        spec |= {"serviceName": name, "replicas": 2}
    else:
        template["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "kwok-node-0"}
    create(
        kube, {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    )
    selector = f"app={name}"
    want = 2 if kind == "StatefulSet" else 1

    def ready() -> Observed:
        found = pods(kube, namespace, selector)
        return Observed(len(found) == want and all(is_ready(p) for p in found), [pod_summary(p) for p in found])

    wait_for(ready, 60, f"{kind} {name}'s pods ready")
    next_second()
    change = {
        "spec": {
            "template": {
                "metadata": {"labels": {SIM_LABEL: "imagepull"}},
                "spec": {"containers": [{"name": name, "image": f"registry.example.com/shop/{name}:17.0-rc1"}]},
            }
        }
    }
    request(
        kube,
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/{resource}/{name}",
        change,
        manager=manager,
        kind="strategic",
    )

    def pull_fails() -> Observed:
        found = pods(kube, namespace, selector)
        waiting = [
            ((p.get("status", {}).get("containerStatuses") or [{}])[0].get("state") or {})
            .get("waiting", {})
            .get("reason")
            for p in found
        ]
        return Observed("ImagePullBackOff" in waiting, [pod_summary(p) for p in found])

    wait_for(pull_fails, 60, f"a pod of {kind} {name} in ImagePullBackOff")
    return name


INIT_STAGE = "sim-init-crashloop"


def has_init_stage(kube: KubeClient) -> bool:
    """Whether the cluster has the init-container stage (a cluster started before it was added has not)."""
    try:
        get(kube, "kwok.x-k8s.io/v1alpha1", "Stage", None, INIT_STAGE)
    except NotFound:
        return False
    return True


def init_container_broken_by_args(kube: KubeClient, namespace: str, *, manager: str = ALICE) -> str:
    """Deployment `orders` whose init container `migrate` runs (`--to=v42`) and its pods are ready;
    then `manager` changes the init container's args (and the sim label that makes it crash): the new
    revision's pod stays in Init, `migrate` in CrashLoopBackOff."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "orders", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "orders"}},
            "template": {
                "metadata": {"labels": {"app": "orders"}},
                "spec": {
                    "initContainers": [
                        {
                            "name": "migrate",
                            "image": "registry.example.com/shop/orders-migrate:3.1",
                            "args": ["--to=v42"],
                        }
                    ],
                    "containers": [
                        {
                            "name": "orders",
                            "image": "registry.example.com/shop/orders:3.1",
                            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                        }
                    ],
                },
            },
        },
    }
    create(kube, deployment)

    def ready() -> Observed:
        found = pods(kube, namespace, "app=orders")
        return Observed(len(found) == 1 and all(is_ready(p) for p in found), [pod_summary(p) for p in found])

    wait_for(ready, 60, "orders' pod ready")
    next_second()
    change = {
        "spec": {
            "template": {
                "metadata": {"labels": {SIM_LABEL: "initcrash"}},
                "spec": {"initContainers": [{"name": "migrate", "args": ["--to=v43"]}]},
            }
        }
    }
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/orders"
    request(kube, "PATCH", path, change, manager=manager, kind="strategic")

    def stuck_in_init() -> Observed:
        found = pods(kube, namespace, "app=orders")
        waiting = [
            ((p.get("status", {}).get("initContainerStatuses") or [{}])[0].get("state") or {})
            .get("waiting", {})
            .get("reason")
            for p in found
        ]
        return Observed("CrashLoopBackOff" in waiting, [pod_summary(p) for p in found])

    wait_for(stuck_in_init, 60, "a pod of orders with init container migrate in CrashLoopBackOff")
    return "orders"


def add_budget(kube: KubeClient, app: App, *, manager: str = "k8sbot-tests", **rule: int) -> str:
    """A PodDisruptionBudget `<app>-pdb` for the app's pods with `rule` (`minAvailable=1` or
    `maxUnavailable=1`: one disruption allowed), once its controller has computed it."""
    name = f"{app.name}-pdb"
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": app.namespace},
        "spec": {**rule, "selector": {"matchLabels": app.selector}},
    }
    path = f"/apis/policy/v1/namespaces/{app.namespace}/poddisruptionbudgets"
    kube.request("POST", path, body=budget, query={"fieldManager": manager})
    wait_for(_disruptions_allowed(kube, app, name, 1), 45, f"PodDisruptionBudget {name} computed")
    return name


def edit_budget(kube: KubeClient, app: App, name: str, *, manager: str = ALICE, **rule: int) -> None:
    """`manager` sets the budget's `rule` (e.g. `maxUnavailable=0`) so that it allows 0 disruptions
    while every pod is healthy; returns once its controller says so."""
    next_second()
    path = f"/apis/policy/v1/namespaces/{app.namespace}/poddisruptionbudgets/{name}"
    request(kube, "PATCH", path, {"spec": rule}, manager=manager)
    wait_for(_disruptions_allowed(kube, app, name, 0), 45, f"PodDisruptionBudget {name} allowing 0 disruptions")


def _disruptions_allowed(kube: KubeClient, app: App, name: str, count: int) -> Callable[[], Observed]:
    def look() -> Observed:
        status = get(kube, "policy/v1", "PodDisruptionBudget", app.namespace, name).get("status") or {}
        return Observed(status.get("disruptionsAllowed") == count and status.get("expectedPods"), status)

    return look


def budget_raised_to_replicas(kube: KubeClient, app: App, *, manager: str = ALICE) -> str:
    """A PodDisruptionBudget `<app>-pdb` for the app's pods with minAvailable `replicas - 1` (1
    disruption allowed); then `manager` raises minAvailable to the app's replicas: 0 disruptions
    allowed, every pod healthy."""
    name = add_budget(kube, app, minAvailable=app.replicas - 1)
    edit_budget(kube, app, name, manager=manager, minAvailable=app.replicas)
    return name
