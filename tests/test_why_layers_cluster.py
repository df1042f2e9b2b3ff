"""`why` for causes beyond the target's own pod template, on the real cluster (issue 15, item 2):
a Service it calls is broken, its node is sick, cordoned or tainted, a ConfigMap or Secret was edited
without a rollout, namespace policy refuses its pods (LimitRange, ResourceQuota, an autoscaler's
maxReplicas, a PodDisruptionBudget), other workload kinds (StatefulSet and DaemonSet rollouts, init
containers, claims that cannot bind, CronJob templates).

Every class is asked through `python -m k8sbot ask --json` and through Slack (`/k8s why` typed in the
emulator, answered by one bot for the whole module): the Slack answer must tell the JSON answer's top
cause, evidence and culprit (`assert_told`), and each test checks the words a person reads. Some
dependency cases run the command path in process, as `k8sbot ask` does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import apply, patch, pods, set_pod_logs, wait_for, wait_rolled_out
from scenarios import App, deploy_checkout
from scenarios_layers import (
    ALICE,
    add_autoscaler,
    add_budget,
    add_limit_range,
    add_quota,
    budget_raised_to_replicas,
    cordon,
    crash_pods,
    cronjob_broken_by_template_change,
    deploy_on_node,
    deploy_payments,
    deploy_with_config,
    edit_budget,
    edit_config,
    has_init_stage,
    init_container_broken_by_args,
    lower_max_replicas,
    lower_quota,
    mark_pods_unready,
    node_condition,
    node_stages_leave_labelled_nodes_alone,
    own_node,
    replace_a_pod,
    replace_a_pod_held_off,
    rollout_to_a_bad_image,
    scale_as,
    statefulset_with_unbindable_claim,
    taint,
    wait_failed_create,
)
from test_why_cluster import ask

from bot.kube.client import KubeClient
from bot.model import ObjectRef
from slack_emulator import SlackEmulator
from tests.slack_harness import OPS
from tests.why_helpers import answering_bot, ask_json, assert_told, recording_bot, shown_text, slack_ask


@pytest.fixture(scope="module")
def slack_bot(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackEmulator]:
    """One Slack emulator and one bot answering `/k8s why` there, for the whole module (each test asks
    about its own namespace; the bot reads the cluster with its admin client, as `ask` does)."""
    with answering_bot(cluster.client(), tmp_path_factory.mktemp("why-layers-bot")) as emu:
        yield emu


def both(kubeconfig: str, slack: SlackEmulator, text: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """`k8sbot ask TEXT --json`, then `/k8s TEXT` in Slack: the JSON answer, and the Slack answer's text
    once it is checked to tell the same top cause, evidence and culprit (`assert_told`)."""
    data = ask_json(kubeconfig, text, tmp_path)
    return data, assert_told(slack_ask(slack, text, channel=OPS), data)


# -- dependencies ---------------------------------------------------------------------------------


def _payments_down(kube: KubeClient, namespace: str) -> None:
    """checkout (env PAYMENT_API_URL=http://payments:8080) and payments; alice scales payments to 0."""
    deploy_checkout(kube, namespace)
    payments = deploy_payments(kube, namespace)
    scale_as(kube, payments, 0, manager=ALICE)


def _assert_payments_blamed(data: dict[str, Any], namespace: str) -> None:
    assert data["healthy"] is False, data
    top = data["causes"][0]
    assert top["category"] == "dependency", data
    assert "payments" in top["title"] and "no pods" in top["title"], top
    assert any("PAYMENT_API_URL" in e for e in top["evidence"]), top
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "Deployment", "namespace": namespace, "name": "payments"}, change
    assert (change["path"], change["before"], change["after"], change["actor"]) == ("spec.replicas", 2, 0, ALICE)
    assert "payments" in data["summary"] and ALICE in data["summary"], data["summary"]
    assert top["suggestion"]["command"] == f"/k8s scale payments -n {namespace} --replicas 2", top


@pytest.mark.kwok
def test_dependency_scaled_to_zero_is_the_root_cause(kube: KubeClient, namespace: str) -> None:
    _payments_down(kube, namespace)
    _assert_payments_blamed(ask(kube, f"why checkout -n {namespace}"), namespace)


@pytest.mark.kwok
def test_crashing_caller_blames_the_dependency_not_itself(kube: KubeClient, namespace: str) -> None:
    _payments_down(kube, namespace)
    crash_pods(kube, namespace, "app=checkout")
    data = ask(kube, f"why checkout -n {namespace}")
    _assert_payments_blamed(data, namespace)
    # Its own crash is still there, as a lesser cause.
    assert "crash_loop" in [c["category"] for c in data["causes"][1:]], data


@pytest.mark.kwok
def test_dependency_named_only_in_a_log_line(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace)
    ledger = deploy_checkout(kube, namespace, name="ledger")
    scale_as(kube, ledger, 0)
    crash_pods(kube, namespace, "app=checkout")
    set_pod_logs(
        kube,
        namespace,
        "app=checkout",
        "app",
        current=["starting"],
        previous=["starting", "ERROR dial tcp: lookup ledger on 10.96.0.10:53: connection refused", "exiting"],
    )
    data = ask(kube, f"why checkout -n {namespace}")
    top = data["causes"][0]
    assert top["category"] == "dependency", data
    assert "ledger" in top["title"], top
    assert any("log line" in e and "ledger" in e for e in top["evidence"]), top
    assert top["change"]["ref"]["name"] == "ledger" and top["change"]["after"] == 0, top


@pytest.mark.kwok
def test_dependency_named_in_a_configmap_value(kube: KubeClient, namespace: str) -> None:
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-upstreams", "namespace": namespace},
            "data": {"INVENTORY_ADDR": f"inventory.{namespace}.svc:9090", "API_TOKEN": "inventory"},
        },
    )
    deploy_checkout(kube, namespace)
    patch(
        kube,
        "apps/v1",
        "Deployment",
        namespace,
        "checkout",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "checkout-upstreams"}}]}]
                    }
                }
            }
        },
    )
    inventory = deploy_checkout(kube, namespace, name="inventory")
    scale_as(kube, inventory, 0)
    data = ask(kube, f"why checkout -n {namespace}")
    top = data["causes"][0]
    assert top["category"] == "dependency", data
    assert any("INVENTORY_ADDR" in e and "checkout-upstreams" in e for e in top["evidence"]), top


def test_a_healthy_dependency_is_not_blamed(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace)
    deploy_payments(kube, namespace)
    data = ask(kube, f"why checkout -n {namespace}")
    assert data["healthy"] is True, data


def _checkout_calls_inventory_through_a_configmap(kube: KubeClient, namespace: str) -> App:
    """checkout reads INVENTORY_ADDR from a ConfigMap (a link found only after the ConfigMaps are read)."""
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-upstreams", "namespace": namespace},
            "data": {"INVENTORY_ADDR": f"inventory.{namespace}.svc:9090"},
        },
    )
    deploy_checkout(kube, namespace)
    envfrom = [{"name": "app", "envFrom": [{"configMapRef": {"name": "checkout-upstreams"}}]}]
    template = {"spec": {"template": {"spec": {"containers": envfrom}}}}
    patch(kube, "apps/v1", "Deployment", namespace, "checkout", template)
    inventory = deploy_checkout(kube, namespace, name="inventory")
    wait_rolled_out(kube, namespace, "checkout")
    return inventory


@pytest.mark.kwok
def test_dependency_read_by_the_targeted_path_is_judged_by_its_own_pods(kube: KubeClient, namespace: str) -> None:
    """`ask` without a bot reads from the API, only what checkout needs: the pods of the Service it
    calls are read too, so a healthy one is not blamed and one whose pods are all unready is."""
    inventory = _checkout_calls_inventory_through_a_configmap(kube, namespace)
    healthy = ask(kube, f"why checkout -n {namespace}")
    assert healthy["source"]["from"] == "api", healthy
    assert healthy["healthy"] is True, healthy
    mark_pods_unready(kube, inventory, message="runtime is down")
    broken = ask(kube, f"why checkout -n {namespace}")
    top = broken["causes"][0]
    assert top["category"] == "dependency", broken
    assert "inventory" in top["title"] and "no ready endpoints" in top["title"], top
    assert any("INVENTORY_ADDR" in e and "checkout-upstreams" in e for e in top["evidence"]), top


@pytest.mark.kwok
def test_healthy_service_named_in_a_log_line_is_not_blamed(kube: KubeClient, namespace: str) -> None:
    """A Service named only in a crash's log line: its pods are read then, and they are fine."""
    deploy_checkout(kube, namespace)
    deploy_checkout(kube, namespace, name="ledger")
    crash_pods(kube, namespace, "app=checkout")
    set_pod_logs(
        kube,
        namespace,
        "app=checkout",
        "app",
        current=["starting"],
        previous=["starting", "ERROR dial tcp: lookup ledger on 10.96.0.10:53: connection refused", "exiting"],
    )
    data = ask(kube, f"why checkout -n {namespace}")
    assert data["causes"][0]["category"] == "crash_loop", data
    assert not [c for c in data["causes"] if c["category"] == "dependency"], data


@pytest.mark.kwok
def test_dependency_through_ask_json_and_slack(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    _payments_down(kube, namespace)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    _assert_payments_blamed(data, namespace)
    assert "Deployment payments replicas changed from 2 to 0" in shown, shown


# -- config that acts late ------------------------------------------------------------------------


@pytest.mark.kwok
def test_configmap_edited_without_rollout_is_blamed_not_the_restart(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_with_config(kube, namespace)
    edit_config(kube, namespace, "ConfigMap", "checkout-config", "FEATURE_FLAGS", "fast-checkout,new-tax")
    crash_pods(kube, namespace, app.selector_text)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "crash_loop", data
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "ConfigMap", "namespace": namespace, "name": "checkout-config"}, change
    assert change["path"] == "data.FEATURE_FLAGS" and change["actor"] == ALICE, change
    assert "ConfigMap checkout-config" in data["summary"], data["summary"]
    assert "key FEATURE_FLAGS of ConfigMap checkout-config" in shown, shown


@pytest.mark.kwok
def test_secret_edited_without_rollout_is_blamed_and_never_shown(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_with_config(kube, namespace)
    edit_config(kube, namespace, "Secret", "checkout-db", "password", "second-s3cret-value")
    crash_pods(kube, namespace, app.selector_text)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    change = data["causes"][0]["change"]
    assert change["ref"]["kind"] == "Secret" and change["path"] == "data.password", data
    assert change["actor"] == ALICE, change
    assert "key password of Secret checkout-db" in shown, shown
    for text in (json.dumps(data), shown):
        assert "s3cret" not in text


# -- nodes ----------------------------------------------------------------------------------------


@pytest.fixture
def node(kube: KubeClient, namespace: str) -> Any:
    if not node_stages_leave_labelled_nodes_alone(kube):
        pytest.skip("the cluster's kwok node stages predate the sim.k8sbot.dev/node label (scripts/local-cluster up)")
    with own_node(kube, f"n-{namespace[-20:]}-{uuid.uuid4().hex[:4]}") as name:
        yield name


@pytest.mark.kwok
def test_node_not_ready_names_the_node_its_change_and_the_unready_pods(
    kube: KubeClient, namespace: str, node: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_on_node(kube, namespace, node)
    node_condition(kube, node, "Ready", "False", reason="KubeletNotReady", message="container runtime is down")
    mark_pods_unready(kube, app)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "node_not_ready", data
    assert node in top["title"], top
    evidence = "\n".join(top["evidence"])
    assert "container runtime is down" in evidence
    assert all(p["metadata"]["name"] in evidence for p in pods(kube, namespace, app.selector_text)), evidence
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "Node", "namespace": None, "name": node}, change
    assert change["path"] == "status.conditions.Ready" and change["after"] == "False", change
    assert f"condition Ready of Node {node}" in shown, shown


@pytest.mark.kwok
def test_node_memory_pressure_is_the_cause(
    kube: KubeClient, namespace: str, node: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    deploy_on_node(kube, namespace, node)
    node_condition(kube, node, "MemoryPressure", "True", reason="KubeletHasInsufficientMemory", message="memory low")
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "node_not_ready", data
    assert "MemoryPressure" in "\n".join(top["evidence"]), top
    assert top["change"]["path"] == "status.conditions.MemoryPressure", top
    assert node in top["title"] and "memory low" in shown, shown
    assert f"condition MemoryPressure of Node {node}" in shown, shown


@pytest.mark.kwok
def test_cordoned_node_blamed_for_pending_pods(
    kube: KubeClient, namespace: str, node: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_on_node(kube, namespace, node)
    cordon(kube, node, manager=ALICE)
    replace_a_pod_held_off(kube, app)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "unschedulable", data
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "Node", "namespace": None, "name": node}, change
    assert change["path"] == "spec.unschedulable" and change["after"] is True and change["actor"] == ALICE, change
    assert f"cordon (spec.unschedulable) of Node {node} changed from false to true" in shown, shown


@pytest.mark.kwok
def test_tainted_node_blamed_for_pending_pods(
    kube: KubeClient, namespace: str, node: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_on_node(kube, namespace, node)
    taint(kube, node, "dedicated", "gpu", manager=ALICE)
    replace_a_pod_held_off(kube, app)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "unschedulable", data
    assert any("untolerated taint" in line for line in top["evidence"]), top["evidence"]
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "Node", "namespace": None, "name": node}, change
    assert (change["path"], change["after"], change["actor"]) == (
        "spec.taints.dedicated",
        "dedicated=gpu:NoSchedule",
        ALICE,
    ), change
    assert f"taints of Node {node}" in shown and "dedicated=gpu:NoSchedule" in shown, shown


# -- namespace policy ------------------------------------------------------------------------------


def test_new_limit_range_that_refuses_pods_is_blamed(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)  # limits.memory 256Mi
    add_limit_range(kube, namespace, max_memory="128Mi", manager=ALICE)
    replace_a_pod(kube, app)
    wait_failed_create(kube, app, "maximum memory usage per Container is 128Mi")
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "quota_exceeded" and "LimitRange" in top["title"], data
    assert any("LimitRange container-limits: Container max memory 128Mi" in e for e in top["evidence"]), top
    change = top["change"]
    assert change["ref"] == {"kind": "LimitRange", "namespace": namespace, "name": "container-limits"}, change
    assert change["path"] == "spec.limits" and change["actor"] == ALICE, change
    assert "LimitRange container-limits" in shown and "128Mi" in shown, shown


def test_lowered_quota_is_blamed_for_pods_it_refuses(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)  # 2 x 500m CPU
    add_quota(kube, namespace, "2")
    lower_quota(kube, namespace, "600m", manager=ALICE)
    replace_a_pod(kube, app)
    wait_failed_create(kube, app, "exceeded quota: compute")
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "quota_exceeded", data
    change = top["change"]
    assert change["ref"] == {"kind": "ResourceQuota", "namespace": namespace, "name": "compute"}, change
    assert (change["path"], change["after"], change["actor"]) == ("spec.hard.requests.cpu", "600m", ALICE), change
    assert "exceeded quota: compute" in shown and "ResourceQuota compute" in shown and "600m" in shown, shown


def test_lowered_max_replicas_is_blamed_for_the_scale_down(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace, replicas=3)
    add_autoscaler(kube, app, min_replicas=2, max_replicas=3)
    lower_max_replicas(kube, app, 1, manager=ALICE)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why checkout -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "hpa_limited", data
    assert "scaled Deployment checkout down to its maxReplicas 1" in top["title"], top
    change = top["change"]
    assert change["ref"] == {"kind": "HorizontalPodAutoscaler", "namespace": namespace, "name": "checkout"}, change
    assert (change["path"], change["after"], change["actor"]) == ("spec.maxReplicas", 1, ALICE), change
    assert "maxReplicas of HorizontalPodAutoscaler checkout" in shown, shown


# -- other workload kinds --------------------------------------------------------------------------


def test_statefulset_claim_that_cannot_bind(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    statefulset_with_unbindable_claim(kube, namespace, storage_class="fast-ssd")
    data, shown = both(cluster.kubeconfig, slack_bot, f"why sts/db -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "volume_error", data
    evidence = "\n".join(top["evidence"])
    assert "PersistentVolumeClaim `data-db-0` is Pending" in evidence, evidence
    assert 'storageclass.storage.k8s.io "fast-ssd" not found' in evidence, evidence
    assert "data-db-0" in shown and "fast-ssd" in shown, shown


@pytest.mark.kwok
def test_cronjob_template_change_is_blamed_for_the_failing_job(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    cronjob_broken_by_template_change(kube, namespace, manager=ALICE)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why cronjob/nightly -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "job_failed", data
    change = top["change"]
    assert change["ref"] == {"kind": "CronJob", "namespace": namespace, "name": "nightly"}, change
    assert change["path"] == "spec.jobTemplate.spec.template.spec.containers[0].args", change
    assert change["before"] == ["--since=24h"] and change["after"] == ["--since=24h", "--format=v2"], change
    assert change["actor"] == ALICE, change
    assert "--format=v2" in shown, shown


@pytest.mark.kwok
@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_rollout_to_a_failing_image_is_blamed_on_the_template_change(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path, kind: str
) -> None:
    name = rollout_to_a_bad_image(kube, namespace, kind, manager=ALICE)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why {kind.lower()}/{name} -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "image_pull", data
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": kind, "namespace": namespace, "name": name}, change
    assert change["path"] == "spec.template.spec.containers[0].image", change
    assert change["before"] == f"registry.example.com/shop/{name}:16.4", change
    assert change["after"] == f"registry.example.com/shop/{name}:17.0-rc1", change
    assert change["actor"] == ALICE, change
    assert f"kubectl rollout undo {kind.lower()}/{name}" in top["suggestion"]["text"], top
    said = f"image of container {name} changed from registry.example.com/shop/{name}:16.4 to "
    assert said in shown and f"{name}:17.0-rc1" in shown, shown
    assert f"kubectl rollout undo {kind.lower()}/{name}" in shown, shown


@pytest.mark.kwok
def test_init_container_crash_is_blamed_on_its_template_change(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    if not has_init_stage(kube):
        pytest.skip("the cluster predates the sim-init-crashloop stage (scripts/local-cluster up applies it)")
    name = init_container_broken_by_args(kube, namespace, manager=ALICE)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why {name} -n {namespace}", tmp_path)
    top = data["causes"][0]
    assert top["category"] == "init_failure", data
    assert any("init container migrate" in line for line in top["evidence"]), top
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "Deployment", "namespace": namespace, "name": name}, change
    assert change["path"] == "spec.template.spec.initContainers[0].args", change
    assert (change["before"], change["after"], change["actor"]) == (["--to=v42"], ["--to=v43"], ALICE), change
    assert "migrate" in data["summary"] and ALICE in data["summary"], data["summary"]
    assert "init container migrate" in shown and "--to=v43" in shown, shown


def test_budget_raised_to_the_replicas_is_a_warning_blamed_on_its_edit(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace, replicas=2)
    budget = budget_raised_to_replicas(kube, app, manager=ALICE)
    data, shown = both(cluster.kubeconfig, slack_bot, f"why {app.name} -n {namespace}", tmp_path)
    assert data["healthy"] is False, data
    top = data["causes"][0]
    assert top["category"] == "disruption_blocked", data
    evidence = "\n".join(top["evidence"])
    assert f"PodDisruptionBudget {budget}: minAvailable 2; 2 of 2 pods healthy" in evidence, evidence
    assert "allows 0 disruptions" in evidence, evidence
    change = top["change"]
    assert change is not None, top
    assert change["ref"] == {"kind": "PodDisruptionBudget", "namespace": namespace, "name": budget}, change
    assert (change["path"], change["after"], change["actor"]) == ("spec.minAvailable", 2, ALICE), change
    assert f"minAvailable of PodDisruptionBudget {budget}" in shown, shown


def test_budget_edit_recorded_by_the_bot_is_blamed_with_before_and_after(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """The running bot records the budget's edit (maxUnavailable 1 → 0): the culprit says both values
    and who, in Slack and in `ask --json` over the bot's database, not only "was added" (managedFields)."""
    app = deploy_checkout(kube, namespace, replicas=2)
    budget = add_budget(kube, app, maxUnavailable=1)
    ref = ObjectRef("PodDisruptionBudget", namespace, budget)
    with recording_bot(slack, kube, cluster, namespace, tmp_path) as runner:
        assert runner.core is not None
        changes = runner.core.changes
        edit_budget(kube, app, budget, manager=ALICE, maxUnavailable=0)
        since = datetime.now(UTC) - timedelta(hours=1)
        wait_for(lambda: changes.changes_for([ref], since), 30, f"the edit of {budget} to be recorded")
        message = slack_ask(slack, f"why checkout -n {namespace}")
        data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path, db=tmp_path / "bot.db")
    top = data["causes"][0]
    assert top["category"] == "disruption_blocked", data
    change = top["change"]
    assert change["ref"] == {"kind": "PodDisruptionBudget", "namespace": namespace, "name": budget}, change
    assert (change["path"], change["before"], change["after"], change["actor"]) == ("spec.maxUnavailable", 1, 0, ALICE)
    said = f"maxUnavailable of PodDisruptionBudget {budget} changed from 1 to 0"
    assert said in data["summary"], data["summary"]
    shown = shown_text(message)
    assert said in shown and f"by {ALICE}" in shown, shown
