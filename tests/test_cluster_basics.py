"""The test cluster behaves like Kubernetes: rollouts, revisions, rollback, scale, logs, loopback only."""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

import pytest
from kube_helpers import (
    REPO,
    Cluster,
    create,
    is_ready,
    patch,
    pod_summary,
    pods,
    replica_sets,
    revision_of,
    rollback_to,
    set_pod_logs,
    wait_for,
    wait_rolled_out,
)
from kubernetes import client as k8s_client
from scenarios import deploy_checkout

from bot.errors import K8sBotError
from bot.kube.client import KubeClient


def test_deployment_rolls_out_and_pods_become_ready(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace, replicas=2)
    found = pods(kube, namespace, app.selector_text)
    assert len(found) == 2
    assert all(is_ready(p) and p["status"]["phase"] == "Running" for p in found), [pod_summary(p) for p in found]
    assert all(p["spec"].get("nodeName") for p in found)  # placed by the real scheduler


def test_image_change_makes_revision_2_and_rollback_restores_ready_pods(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace)
    patch(
        kube,
        "apps/v1",
        "Deployment",
        namespace,
        app.name,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": app.image + "-hotfix"}]}}}},
    )
    wait_rolled_out(kube, namespace, app.name)
    sets = replica_sets(kube, namespace, app.name)
    assert [revision_of(rs) for rs in sets] == [1, 2]
    assert sets[1]["spec"]["template"]["spec"]["containers"][0]["image"] == app.image + "-hotfix"
    assert sets[0]["spec"]["replicas"] == 0  # the old revision was scaled down by the controller

    rollback_to(kube, namespace, app.name, 1)
    deployment = wait_rolled_out(kube, namespace, app.name)
    # The controller reuses revision 1's ReplicaSet and gives it the next number, as `rollout undo` does.
    assert revision_of(deployment) == 3
    sets = {rs["metadata"]["name"]: rs for rs in replica_sets(kube, namespace, app.name)}
    assert len(sets) == 2
    restored = [rs for rs in sets.values() if revision_of(rs) == 3]
    assert restored and restored[0]["spec"]["template"]["spec"]["containers"][0]["image"] == app.image
    ready = [p for p in pods(kube, namespace, app.selector_text) if is_ready(p)]
    assert len(ready) == 2
    assert all(p["spec"]["containers"][0]["image"] == app.image for p in ready)


def test_scale_subresource_changes_replicas(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace, replicas=1)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{app.name}/scale"
    assert kube.get(path)["spec"]["replicas"] == 1
    patch(
        kube,
        "apps/v1",
        "Deployment",
        namespace,
        app.name,
        {"spec": {"replicas": 3}},
        kind_of_patch="merge",
        subresource="scale",
    )
    wait_rolled_out(kube, namespace, app.name)
    assert kube.get(path)["status"]["replicas"] == 3
    assert len([p for p in pods(kube, namespace, app.selector_text) if is_ready(p)]) == 3


@pytest.mark.kwok
def test_pod_logs_and_previous_logs_come_back_through_the_api(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace, replicas=1)
    names = set_pod_logs(
        kube,
        namespace,
        app.selector_text,
        "app",
        current=["starting checkout 1.4.2", "listening on :8080"],
        previous=["panic: dial tcp payments:8080: connection refused"],
    )
    assert len(names) == 1
    path = f"/api/v1/namespaces/{namespace}/pods/{names[0]}/log"
    # kwok picks up a new Logs object through a watch: wait for it rather than assume it is instant.
    current = wait_for(lambda: _text_or_none(kube, path, container="app"), 15, "current logs to be served")
    assert current.splitlines() == ["starting checkout 1.4.2", "listening on :8080"]
    previous = kube.text(path, container="app", previous="true")
    assert previous.splitlines() == ["panic: dial tcp payments:8080: connection refused"]
    assert kube.text(path, container="app", tailLines="1").splitlines() == ["listening on :8080"]

    # Replacing the lines replaces what the API serves (same Logs object, new file contents).
    set_pod_logs(kube, namespace, names[0], "app", current=["second run"])
    assert wait_for(lambda: kube.text(path, container="app").splitlines() == ["second run"], 15, "the new current logs")


def _text_or_none(kube: KubeClient, path: str, **query: str) -> str | None:
    try:
        return kube.text(path, **query)
    except K8sBotError:
        return None


def test_no_node_has_a_non_loopback_address(kube: KubeClient, cluster: Cluster) -> None:
    if not cluster.local:
        pytest.skip("only the local cluster promises loopback-only nodes")
    nodes = kube.list("/api/v1/nodes")
    assert len(nodes) >= 2
    for node in nodes:
        addresses = node["status"]["addresses"]
        assert {a["type"] for a in addresses} == {"InternalIP", "Hostname"}
        for a in addresses:
            if a["type"] == "Hostname":
                assert a["address"] == "localhost"
            else:
                assert ipaddress.ip_address(a["address"]).is_loopback, (node["metadata"]["name"], a)


def test_cluster_processes_listen_on_loopback_only(cluster: Cluster) -> None:
    if not cluster.local:
        pytest.skip("checks the processes of the local cluster")
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), "listeners"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    components = {line.split()[0] for line in result.stdout.splitlines()}
    assert components == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}


def test_local_cluster_up_again_reuses_the_running_cluster(cluster: Cluster, kube: KubeClient) -> None:
    if not cluster.local:
        pytest.skip("exercises scripts/local-cluster")
    before = kube.get("/api/v1/namespaces/kube-system")["metadata"]["uid"]
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), "up"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == cluster.kubeconfig
    assert "reusing it" in result.stderr
    # Same cluster (same etcd data), still serving.
    assert kube.get("/api/v1/namespaces/kube-system")["metadata"]["uid"] == before


def test_a_token_kubeconfig_authenticates_as_its_serviceaccount(kube: KubeClient, namespace: str, cluster: Any) -> None:
    """The bot in a pod (in-cluster config) and a token kubeconfig both keep the token under the client
    library's "BearerToken": requests must carry it, or the API server sees system:anonymous."""
    create(
        kube, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tokened", "namespace": namespace}}
    )
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    token = kube.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/tokened/token", body=request)[
        "status"
    ]["token"]
    configuration = k8s_client.Configuration()
    configuration.host = kube.configuration.host
    configuration.ssl_ca_cert = kube.configuration.ssl_ca_cert
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    me = KubeClient(configuration).request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
    assert me["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:tokened"
