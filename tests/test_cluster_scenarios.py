"""Each scenario of tests/scenarios.py produces the pod status, events and revisions it promises."""

from __future__ import annotations

import pytest
from kube_helpers import (
    Observed,
    container_state,
    create,
    event_reasons,
    events_for,
    get,
    is_ready,
    pod_summary,
    pods,
    replica_sets,
    revision_of,
    wait_for,
)
from scenarios import (
    App,
    Breakage,
    break_capacity,
    break_env,
    break_image,
    break_memory_limit,
    break_quota,
    break_readiness,
    break_secret_key,
    break_service_selector,
    deploy_checkout,
    ready_endpoints,
    run_failing_job,
    scale_to_zero,
)

from bot.kube.client import KubeClient
from bot.model import KubeObject


def _pod(kube: KubeClient, namespace: str, name: str) -> KubeObject:
    return get(kube, "v1", "Pod", namespace, name)


def _events_with(kube: KubeClient, namespace: str, pod: str, *reasons: str) -> list[KubeObject]:
    """Wait until the pod has events with all these reasons (kubelet-like events are written after
    the status), then return its events."""
    found: list[KubeObject] = wait_for(
        lambda: Observed(
            set(reasons) <= event_reasons(ev := events_for(kube, namespace, pod)), sorted(event_reasons(ev)), ev
        ),
        20,
        f"events {reasons} on pod {namespace}/{pod}",
    )
    return found


def _new_revision_template_holds(kube: KubeClient, app: App, broke: Breakage) -> None:
    """The breaking change is a real template change: a second ReplicaSet, revision 2, carrying it,
    while revision 1 keeps the old pods serving (maxUnavailable 0)."""
    assert broke.revision == 2
    sets = replica_sets(kube, app.namespace, app.name)
    assert [revision_of(rs) for rs in sets] == [1, 2]
    old = [p for p in pods(kube, app.namespace, app.selector_text) if is_ready(p)]
    assert len(old) == app.replicas, [pod_summary(p) for p in pods(kube, app.namespace, app.selector_text)]


@pytest.fixture
def app(kube: KubeClient, namespace: str) -> App:
    return deploy_checkout(kube, namespace)


@pytest.mark.kwok
def test_bad_image_tag_gives_image_pull_backoff(kube: KubeClient, app: App) -> None:
    broke = break_image(kube, app)
    _new_revision_template_holds(kube, app, broke)
    assert broke.before == app.image and broke.after.endswith(":1.4.3-rc0")
    pod = _pod(kube, app.namespace, broke.pods[0])
    assert pod["spec"]["containers"][0]["image"] == broke.after
    waiting = container_state(pod)["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff" and broke.after in waiting["message"]
    events = _events_with(kube, app.namespace, pod["metadata"]["name"], "Pulling", "Failed", "BackOff")
    messages = {e["message"] for e in events}
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages
    # events.k8s.io writers (the scheduler) fill reportingComponent; core/v1 writers (kwok as kubelet) source
    components = {(e.get("source") or {}).get("component") or e.get("reportingComponent") for e in events}
    assert components <= {"kubelet", "default-scheduler"}, components


@pytest.mark.kwok
def test_lower_memory_limit_gives_oomkilled_crashloop_with_growing_restarts(kube: KubeClient, app: App) -> None:
    broke = break_memory_limit(kube, app)
    _new_revision_template_holds(kube, app, broke)
    assert (broke.before, broke.after) == ("256Mi", "48Mi")
    name = broke.pods[0]
    pod = _pod(kube, app.namespace, name)
    status = container_state(pod)
    assert pod["status"]["phase"] == "Running" and not is_ready(pod)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    first = status["restartCount"]
    # Restarts keep coming, like kubelet's back-off loop (the first tick is 5 s after the first crash).
    wait_for(
        lambda: Observed(container_state(p := _pod(kube, app.namespace, name))["restartCount"] > first, pod_summary(p)),
        20,
        "restartCount to grow",
    )
    events = _events_with(kube, app.namespace, name, "BackOff")
    backoff = next(e for e in events if e["reason"] == "BackOff")
    assert backoff["type"] == "Warning" and backoff["message"].startswith("Back-off restarting failed container app")


@pytest.mark.kwok
def test_env_change_gives_crashloop_with_exit_code_1(kube: KubeClient, app: App) -> None:
    broke = break_env(kube, app)
    _new_revision_template_holds(kube, app, broke)
    assert broke.path == "spec.template.spec.containers[0].env[1].value"
    assert broke.before == "http://payments:8080"
    pod = _pod(kube, app.namespace, broke.pods[0])
    assert {"name": "PAYMENT_API_URL", "value": broke.after} in pod["spec"]["containers"][0]["env"]
    terminated = container_state(pod)["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("Error", 1)
    _events_with(kube, app.namespace, broke.pods[0], "BackOff")


@pytest.mark.kwok
def test_missing_secret_key_gives_create_container_config_error(kube: KubeClient, app: App) -> None:
    broke = break_secret_key(kube, app)
    _new_revision_template_holds(kube, app, broke)
    template = get(kube, "apps/v1", "Deployment", app.namespace, app.name)["spec"]["template"]
    env = template["spec"]["containers"][0]["env"]
    assert broke.path == f"spec.template.spec.containers[0].env[{env.index(broke.after)}]"
    pod = _pod(kube, app.namespace, broke.pods[0])
    assert pod["status"]["phase"] == "Pending"
    waiting = container_state(pod)["state"]["waiting"]
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": f"couldn't find key password in Secret {app.namespace}/db-credentials",
    }
    events = _events_with(kube, app.namespace, broke.pods[0], "Failed")
    assert f"Error: {waiting['message']}" in {e["message"] for e in events}
    # The Secret really lacks the key: the scenario is consistent with the cluster's objects.
    assert "password" not in get(kube, "v1", "Secret", app.namespace, "db-credentials").get("data", {})


@pytest.mark.kwok
def test_readiness_probe_change_gives_running_unready_pods(kube: KubeClient, app: App) -> None:
    broke = break_readiness(kube, app)
    _new_revision_template_holds(kube, app, broke)
    assert (broke.before, broke.after) == ("/healthz", "/ready")
    pod = _pod(kube, app.namespace, broke.pods[0])
    status = container_state(pod)
    assert pod["status"]["phase"] == "Running" and not is_ready(pod)
    assert "running" in status["state"] and status["started"] is True and status["ready"] is False
    events = _events_with(kube, app.namespace, broke.pods[0], "Unhealthy")
    assert any(e["message"].startswith("Readiness probe failed") for e in events)


def test_replicas_beyond_capacity_are_unschedulable(kube: KubeClient, app: App) -> None:
    broke = break_capacity(kube, app)
    assert (broke.before, broke.after) == (2, 20)
    pending = [p for p in pods(kube, app.namespace, app.selector_text) if not p["spec"].get("nodeName")]
    assert pending
    events = _events_with(kube, app.namespace, broke.pods[0], "FailedScheduling")
    message = next(e["message"] for e in events if e["reason"] == "FailedScheduling")
    assert "Insufficient cpu" in message, message


def test_quota_exceeded_gives_replicaset_failed_create(kube: KubeClient, app: App) -> None:
    broke = break_quota(kube, app)
    assert broke.revision == 2 and (broke.before, broke.after) == ("500m", "1")
    rs = broke.extra["replicaset"]
    events = [
        e
        for e in _events_with_kind(kube, app.namespace, rs, "ReplicaSet", "FailedCreate")
        if e["reason"] == "FailedCreate"
    ]
    assert "exceeded quota: compute" in events[0]["message"], events[0]["message"]
    assert get(kube, "apps/v1", "ReplicaSet", app.namespace, rs)["status"].get("replicas", 0) == 0


def _events_with_kind(kube: KubeClient, namespace: str, name: str, kind: str, *reasons: str) -> list[KubeObject]:
    found: list[KubeObject] = wait_for(
        lambda: Observed(
            set(reasons) <= event_reasons(ev := events_for(kube, namespace, name, kind)), sorted(event_reasons(ev)), ev
        ),
        20,
        f"events {reasons} on {kind} {namespace}/{name}",
    )
    return found


def test_service_selector_matching_nothing_leaves_no_endpoints(kube: KubeClient, app: App) -> None:
    assert len(wait_for(lambda: ready_endpoints(kube, app.namespace, app.name), 20, "endpoints")) == 2
    broke = break_service_selector(kube, app)
    assert (broke.path, broke.before, broke.after) == ("spec.selector.app", "checkout", "checkout-v2")
    assert ready_endpoints(kube, app.namespace, app.name) == []
    assert len([p for p in pods(kube, app.namespace, app.selector_text) if is_ready(p)]) == 2


def test_scale_to_zero_removes_all_pods(kube: KubeClient, app: App) -> None:
    broke = scale_to_zero(kube, app)
    assert (broke.before, broke.after) == (2, 0)
    assert pods(kube, app.namespace, app.selector_text) == []
    _events_with_kind(kube, app.namespace, app.name, "Deployment", "ScalingReplicaSet")


@pytest.mark.kwok
def test_failing_job_fails_with_the_exit_code(kube: KubeClient, namespace: str) -> None:
    broke = run_failing_job(kube, namespace, exit_code=2)
    job = get(kube, "batch/v1", "Job", namespace, "nightly-report")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert len(broke.pods) == 1
    pod = _pod(kube, namespace, broke.pods[0])
    assert pod["status"]["phase"] == "Failed"
    assert container_state(pod)["state"]["terminated"]["exitCode"] == 2


def test_job_without_scenario_label_completes(kube: KubeClient, namespace: str) -> None:
    create(
        kube,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "ok", "namespace": namespace},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "registry.example.com/tools/once:1"}],
                    }
                },
            },
        },
    )

    def complete() -> Observed:
        status = get(kube, "batch/v1", "Job", namespace, "ok").get("status", {})
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions") or [])
        return Observed(done, status)

    wait_for(complete, 30, "Job ok to complete")
