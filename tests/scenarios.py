"""A small shop on the test cluster, and one realistic way to break it per failure category.

`deploy_checkout` creates a healthy Deployment + Service `checkout`. Each `break_*` function then makes
ONE real change to a real object (a patch of the pod template, of replicas, of a Service...), so the
real controllers do what they do in production: a template change makes a new ReplicaSet revision (2),
the scheduler says Unschedulable, quota admission refuses pods. A later `why` must find that change.

How the pods then misbehave comes from the local kwok cluster's scenario stages: the same patch adds
the pod label `sim.k8sbot.dev/scenario` (and `sim.k8sbot.dev/*` annotations) to the template, which
stands in for "the program now crashes / the image does not exist". Those sim keys are part of the
template diff too; `Breakage.path` names the field a person would blame. Capacity-, quota- and
Service-based scenarios need no stage and work on any cluster.

Sizes are tied to deploy/local-cluster/nodes.yaml: 2 nodes x 4 CPU; checkout pods request 500m CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kube_helpers import (
    SIM_LABEL,
    Observed,
    apply,
    container_state,
    create,
    event_reasons,
    events_for,
    get,
    is_ready,
    patch,
    pod_summary,
    pods,
    replica_sets,
    revision_of,
    wait_for,
    wait_rolled_out,
)

from bot.kube.client import KubeClient
from bot.model import KubeObject, ObjectRef

CHECKOUT_IMAGE = "registry.example.com/shop/checkout:1.4.2"
CHECKOUT_CPU = "500m"
NODE_CPU_TOTAL_MILLI = 2 * 4000  # deploy/local-cluster/nodes.yaml
SYMPTOM_TIMEOUT = 45.0


@dataclass(frozen=True)
class App:
    """A deployed Deployment + Service pair."""

    namespace: str
    name: str
    selector: dict[str, str]
    container: str
    image: str
    replicas: int

    @property
    def selector_text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.selector.items())

    @property
    def deployment(self) -> ObjectRef:
        return ObjectRef("Deployment", self.namespace, self.name)

    @property
    def service(self) -> ObjectRef:
        return ObjectRef("Service", self.namespace, self.name)


@dataclass(frozen=True)
class Breakage:
    """What a `break_*` function changed: the object, the field a person would blame, before/after.

    `path` uses the dotted form of `bot.model.FieldChange` (`spec.template.spec.containers[0].image`).
    `revision` is the Deployment's revision after the change when it made a new one (else None).
    `symptom` is what the failure looks like (a waiting reason, event reason or condition).
    `pods` are the pods showing the symptom when the function returned (if it waited for them).
    """

    scenario: str
    ref: ObjectRef
    path: str | None
    before: Any
    after: Any
    symptom: str
    revision: int | None = None
    pods: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


# -- the healthy shop ------------------------------------------------------------------------------


def checkout_manifests(
    namespace: str,
    *,
    name: str = "checkout",
    replicas: int = 2,
    image: str = CHECKOUT_IMAGE,
    progress_deadline_seconds: int = 30,
) -> tuple[KubeObject, KubeObject]:
    """The Deployment and Service of a healthy `checkout`, as JSON."""
    labels = {"app": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, "tier": "web"}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            # Short, so a stuck rollout turns Progressing=False/ProgressDeadlineExceeded within a test.
            "progressDeadlineSeconds": progress_deadline_seconds,
            "selector": {"matchLabels": labels},
            # maxUnavailable 0: a broken new revision leaves the old pods serving, as careful teams do.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "PAYMENT_API_URL", "value": "http://payments:8080"},
                            ],
                            "resources": {
                                "requests": {"cpu": CHECKOUT_CPU, "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return deployment, service


def deploy_checkout(
    kube: KubeClient,
    namespace: str,
    *,
    name: str = "checkout",
    replicas: int = 2,
    image: str = CHECKOUT_IMAGE,
    progress_deadline_seconds: int = 30,
    wait: bool = True,
) -> App:
    """Create the healthy Deployment + Service; with `wait`, until all replicas are Ready (revision 1)."""
    deployment, service = checkout_manifests(
        namespace, name=name, replicas=replicas, image=image, progress_deadline_seconds=progress_deadline_seconds
    )
    create(kube, deployment)
    create(kube, service)
    if wait:
        wait_rolled_out(kube, namespace, name)
    return App(namespace, name, {"app": name}, "app", image, replicas)


# -- template changes (new revision) ---------------------------------------------------------------


def _template_patch(
    kube: KubeClient, app: App, container: dict[str, Any], *, scenario: str, annotations: dict[str, str] | None = None
) -> int:
    """ONE strategic-merge patch of the pod template: the real change (`container` fields, merged by
    container name) plus the sim label/annotations. One patch, so exactly one new revision."""
    template_meta: dict[str, Any] = {"labels": {SIM_LABEL: scenario}}
    if annotations:
        template_meta["annotations"] = annotations
    body = {
        "spec": {
            "template": {"metadata": template_meta, "spec": {"containers": [{"name": app.container, **container}]}}
        }
    }
    patch(kube, "apps/v1", "Deployment", app.namespace, app.name, body)
    return _wait_new_revision(kube, app)


def _wait_new_revision(kube: KubeClient, app: App) -> int:
    """The revision of the ReplicaSet the Deployment controller made for the new template."""

    def newest() -> Observed:
        d = get(kube, "apps/v1", "Deployment", app.namespace, app.name)
        sets = replica_sets(kube, app.namespace, app.name)
        rev = revision_of(d)
        done = d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
        return Observed(done and any(revision_of(rs) == rev for rs in sets), {"revision": rev}, rev)

    revision: int = wait_for(newest, 30, f"a new ReplicaSet revision of {app.namespace}/{app.name}")
    return revision


def _container(kube: KubeClient, app: App) -> dict[str, Any]:
    d = get(kube, "apps/v1", "Deployment", app.namespace, app.name)
    for c in d["spec"]["template"]["spec"]["containers"]:
        if c["name"] == app.container:
            return dict(c)
    raise KeyError(app.container)


def _wait_symptom(
    kube: KubeClient, app: App, what: str, check: Any, *, selector: str | None = None, timeout: float = SYMPTOM_TIMEOUT
) -> tuple[str, ...]:
    """Wait until at least one of the app's pods passes `check(pod)`; return those pods' names."""

    def look() -> Observed:
        found = pods(kube, app.namespace, selector or app.selector_text)
        bad = tuple(p["metadata"]["name"] for p in found if check(p))
        return Observed(bool(bad), [pod_summary(p) for p in found], bad)

    names: tuple[str, ...] = wait_for(look, timeout, f"{what} in {app.namespace}/{app.name}")
    return names


def _waiting(reason: str) -> Any:
    return lambda p: (container_state(p).get("state") or {}).get("waiting", {}).get("reason") == reason


def break_image(kube: KubeClient, app: App, *, tag: str = "1.4.3-rc0", wait: bool = True) -> Breakage:
    """Deploy an image tag that does not exist -> ErrImagePull, then ImagePullBackOff (revision 2)."""
    before = _container(kube, app)["image"]
    after = f"{before.rsplit(':', 1)[0]}:{tag}"
    revision = _template_patch(kube, app, {"image": after}, scenario="imagepull")
    bad = _wait_symptom(kube, app, "a pod in ImagePullBackOff", _waiting("ImagePullBackOff")) if wait else ()
    return Breakage(
        "bad_image",
        app.deployment,
        "spec.template.spec.containers[0].image",
        before,
        after,
        "ImagePullBackOff",
        revision,
        bad,
    )


def break_memory_limit(kube: KubeClient, app: App, *, limit: str = "48Mi", wait: bool = True) -> Breakage:
    """Lower the memory limit below what the program needs -> OOMKilled (137), CrashLoopBackOff."""
    resources = copy.deepcopy(_container(kube, app).get("resources") or {})
    before = (resources.get("limits") or {}).get("memory")
    requests = resources.get("requests") or {}
    # A request above the limit is invalid, so the request follows the limit down.
    new_resources = {"limits": {"memory": limit}, "requests": {**requests, "memory": limit}}
    revision = _template_patch(
        kube,
        app,
        {"resources": new_resources},
        scenario="crashloop",
        annotations={"sim.k8sbot.dev/reason": "OOMKilled", "sim.k8sbot.dev/exit-code": "137"},
    )
    bad = _wait_symptom(kube, app, "a pod OOMKilled in CrashLoopBackOff", _waiting("CrashLoopBackOff")) if wait else ()
    return Breakage(
        "oom_killed",
        app.deployment,
        "spec.template.spec.containers[0].resources.limits.memory",
        before,
        limit,
        "OOMKilled",
        revision,
        bad,
    )


def break_env(
    kube: KubeClient,
    app: App,
    *,
    var: str = "PAYMENT_API_URL",
    value: str = "https://payments.internal:8443/v2",
    wait: bool = True,
) -> Breakage:
    """Change an environment variable the program can't live with -> exits 1, CrashLoopBackOff."""
    env = _container(kube, app).get("env") or []
    index = next(i for i, e in enumerate(env) if e["name"] == var)
    before = env[index].get("value")
    revision = _template_patch(
        kube,
        app,
        {"env": [{"name": var, "value": value}]},
        scenario="crashloop",
        annotations={"sim.k8sbot.dev/reason": "Error", "sim.k8sbot.dev/exit-code": "1"},
    )
    bad = _wait_symptom(kube, app, "a pod in CrashLoopBackOff", _waiting("CrashLoopBackOff")) if wait else ()
    return Breakage(
        "crash_after_env_change",
        app.deployment,
        f"spec.template.spec.containers[0].env[{index}].value",
        before,
        value,
        "CrashLoopBackOff",
        revision,
        bad,
        {"var": var},
    )


def break_secret_key(
    kube: KubeClient,
    app: App,
    *,
    secret: str = "db-credentials",
    key: str = "password",
    env_name: str = "DB_PASSWORD",
    wait: bool = True,
) -> Breakage:
    """Reference a key the Secret doesn't have -> CreateContainerConfigError.

    The Secret exists beforehand (with `username` only), as in life; the change is the new env entry.
    """
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": app.namespace},
            "type": "Opaque",
            "stringData": {"username": "checkout"},
        },
    )
    entry = {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    message = f"couldn't find key {key} in Secret {app.namespace}/{secret}"
    revision = _template_patch(
        kube, app, {"env": [entry]}, scenario="configerror", annotations={"sim.k8sbot.dev/message": message}
    )
    bad = (
        _wait_symptom(kube, app, "a pod in CreateContainerConfigError", _waiting("CreateContainerConfigError"))
        if wait
        else ()
    )
    # A strategic-merge patch puts a new list entry FIRST, not last: ask the cluster where it went.
    index = next(i for i, e in enumerate(_container(kube, app)["env"]) if e["name"] == env_name)
    return Breakage(
        "missing_secret_key",
        app.deployment,
        f"spec.template.spec.containers[0].env[{index}]",
        None,
        entry,
        "CreateContainerConfigError",
        revision,
        bad,
        {"secret": secret, "key": key, "message": message},
    )


def break_readiness(kube: KubeClient, app: App, *, probe_path: str = "/ready", wait: bool = True) -> Breakage:
    """Point the readiness probe at a path the program doesn't serve -> Running, never Ready, Unhealthy."""
    probe = copy.deepcopy(_container(kube, app)["readinessProbe"])
    before = probe["httpGet"]["path"]
    probe["httpGet"]["path"] = probe_path
    message = "Readiness probe failed: HTTP probe failed with statuscode: 404"
    revision = _template_patch(
        kube, app, {"readinessProbe": probe}, scenario="unready", annotations={"sim.k8sbot.dev/message": message}
    )

    def unready(p: KubeObject) -> bool:
        return p["status"].get("phase") == "Running" and not is_ready(p) and SIM_LABEL in p["metadata"]["labels"]

    bad = _wait_symptom(kube, app, "a Running pod that is not Ready", unready) if wait else ()
    return Breakage(
        "readiness_failing",
        app.deployment,
        "spec.template.spec.containers[0].readinessProbe.httpGet.path",
        before,
        probe_path,
        "Unhealthy",
        revision,
        bad,
        {"message": message},
    )


def break_quota(
    kube: KubeClient, app: App, *, cpu_quota: str = "1200m", new_cpu: str = "1", wait: bool = True
) -> Breakage:
    """A ResourceQuota the healthy app fits in, then a CPU request raise it doesn't -> the new
    ReplicaSet's pods are refused by quota admission (FailedCreate "exceeded quota")."""
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": app.namespace},
            "spec": {"hard": {"requests.cpu": cpu_quota}},
        },
    )
    # Quota admission needs the quota's usage computed before it can refuse anything.
    wait_for(
        lambda: get(kube, "v1", "ResourceQuota", app.namespace, "compute").get("status", {}).get("used"),
        30,
        "ResourceQuota usage to be computed",
    )
    resources = copy.deepcopy(_container(kube, app).get("resources") or {})
    before = (resources.get("requests") or {}).get("cpu")
    patch(
        kube,
        "apps/v1",
        "Deployment",
        app.namespace,
        app.name,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": app.container, "resources": {"requests": {"cpu": new_cpu}}}]}
                }
            }
        },
    )
    revision = _wait_new_revision(kube, app)
    rs_name = next(
        rs["metadata"]["name"] for rs in replica_sets(kube, app.namespace, app.name) if revision_of(rs) == revision
    )
    if wait:
        wait_for(
            lambda: Observed(
                "FailedCreate" in (r := event_reasons(events_for(kube, app.namespace, rs_name, "ReplicaSet"))), r
            ),
            SYMPTOM_TIMEOUT,
            f"FailedCreate on ReplicaSet {rs_name}",
        )
    return Breakage(
        "quota_exceeded",
        app.deployment,
        "spec.template.spec.containers[0].resources.requests.cpu",
        before,
        new_cpu,
        "FailedCreate",
        revision,
        (),
        {"replicaset": rs_name, "quota": "compute"},
    )


# -- spec changes without a new template -----------------------------------------------------------


def break_capacity(kube: KubeClient, app: App, *, replicas: int = 20, wait: bool = True) -> Breakage:
    """Raise replicas beyond what the nodes hold (20 x 500m > 8 CPU) -> Pending, FailedScheduling."""
    before = get(kube, "apps/v1", "Deployment", app.namespace, app.name)["spec"]["replicas"]
    patch(
        kube,
        "apps/v1",
        "Deployment",
        app.namespace,
        app.name,
        {"spec": {"replicas": replicas}},
        kind_of_patch="merge",
        subresource="scale",
    )

    def unschedulable(p: KubeObject) -> bool:
        return any(
            c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p["status"].get("conditions") or []
        )

    bad = _wait_symptom(kube, app, "an Unschedulable pod", unschedulable) if wait else ()
    return Breakage("unschedulable", app.deployment, "spec.replicas", before, replicas, "FailedScheduling", None, bad)


def scale_to_zero(kube: KubeClient, app: App, *, wait: bool = True) -> Breakage:
    """Scale the Deployment to 0 through the scale subresource -> no pods, no endpoints."""
    before = get(kube, "apps/v1", "Deployment", app.namespace, app.name)["spec"]["replicas"]
    patch(
        kube,
        "apps/v1",
        "Deployment",
        app.namespace,
        app.name,
        {"spec": {"replicas": 0}},
        kind_of_patch="merge",
        subresource="scale",
    )
    if wait:
        wait_for(
            lambda: Observed(
                not (found := pods(kube, app.namespace, app.selector_text)), [pod_summary(p) for p in found], True
            ),
            SYMPTOM_TIMEOUT,
            f"all pods of {app.namespace}/{app.name} gone",
        )
    return Breakage("scaled_to_zero", app.deployment, "spec.replicas", before, 0, "ScalingReplicaSet")


def break_service_selector(kube: KubeClient, app: App, *, value: str | None = None, wait: bool = True) -> Breakage:
    """Change the Service's selector so it matches no pod -> no endpoints (pods stay healthy)."""
    service = get(kube, "v1", "Service", app.namespace, app.name)
    key = next(iter(app.selector))
    before = service["spec"]["selector"][key]
    after = value or f"{before}-v2"
    patch(kube, "v1", "Service", app.namespace, app.name, {"spec": {"selector": {key: after}}})
    if wait:
        wait_for(
            lambda: Observed(not (eps := ready_endpoints(kube, app.namespace, app.name)), eps, True),
            SYMPTOM_TIMEOUT,
            f"Service {app.namespace}/{app.name} to have no ready endpoints",
        )
    return Breakage("no_endpoints", app.service, f"spec.selector.{key}", before, after, "NoEndpoints")


def ready_endpoints(kube: KubeClient, namespace: str, service: str) -> list[str]:
    """Addresses of ready endpoints of a Service, from its EndpointSlices."""
    slices = kube.list(
        "/apis/discovery.k8s.io/v1/namespaces/" + namespace + "/endpointslices",
        labelSelector=f"kubernetes.io/service-name={service}",
    )
    return [
        address
        for s in slices
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
        for address in e.get("addresses") or []
    ]


# -- a failing Job ---------------------------------------------------------------------------------


def run_failing_job(
    kube: KubeClient, namespace: str, *, name: str = "nightly-report", exit_code: int = 2, wait: bool = True
) -> Breakage:
    """A Job (backoffLimit 0) whose pod exits `exit_code` -> pod Failed, Job Failed/BackoffLimitExceeded."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {"app": name, SIM_LABEL: "fail"},
                    "annotations": {"sim.k8sbot.dev/exit-code": str(exit_code)},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "report",
                            "image": "registry.example.com/shop/report:2.0.1",
                            "args": ["--since=24h"],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    create(kube, job)
    if wait:

        def failed() -> Observed:
            conditions = get(kube, "batch/v1", "Job", namespace, name).get("status", {}).get("conditions") or []
            done = any(c["type"] == "Failed" and c["status"] == "True" for c in conditions)
            return Observed(done, conditions, True)

        wait_for(failed, SYMPTOM_TIMEOUT, f"Job {namespace}/{name} to fail")
    job_pods = tuple(p["metadata"]["name"] for p in pods(kube, namespace, f"job-name={name}"))
    return Breakage(
        "job_failed",
        ObjectRef("Job", namespace, name),
        None,
        None,
        None,
        "BackoffLimitExceeded",
        None,
        job_pods,
        {"exit_code": exit_code},
    )


BREAKERS = {
    "bad_image": break_image,
    "oom_killed": break_memory_limit,
    "crash_after_env_change": break_env,
    "missing_secret_key": break_secret_key,
    "readiness_failing": break_readiness,
    "unschedulable": break_capacity,
    "quota_exceeded": break_quota,
    "no_endpoints": break_service_selector,
    "scaled_to_zero": scale_to_zero,
}
"""Every Deployment/Service breaker by scenario name, each `(kube, app) -> Breakage`."""

EXPECTED_CATEGORY = {
    "bad_image": "image_pull",
    "oom_killed": "oom_killed",
    "crash_after_env_change": "crash_loop",
    "missing_secret_key": "config_error",
    "readiness_failing": "probe_failure",
    "unschedulable": "unschedulable",
    "quota_exceeded": "quota_exceeded",
    "no_endpoints": "no_endpoints",
    "scaled_to_zero": "scaled_to_zero",
}
"""The diagnosis category each breaker must produce as `why`'s top cause."""
