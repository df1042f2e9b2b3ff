"""Two real clusters side by side (the `cluster` and `second_cluster` fixtures): the ground the
multi-cluster tests stand on. The same namespace and Deployment name in both are two objects; a change
in one is not seen in the other."""

from __future__ import annotations

import pytest
from kube_helpers import Cluster, get, is_ready, patch, pods, revision_of, wait_rolled_out
from scenarios import break_image, deploy_checkout

from bot.kube.client import KubeClient


def _server(kube: KubeClient) -> str:
    """Where a client's requests go (the API server's URL from its kubeconfig)."""
    return str(kube.configuration.host)


def test_the_two_clusters_are_two_api_servers_with_their_own_nodes(
    cluster: Cluster, second_cluster: Cluster, kube: KubeClient, second_kube: KubeClient
) -> None:
    assert cluster.kubeconfig != second_cluster.kubeconfig
    assert _server(kube) != _server(second_kube)
    first_nodes = {n["metadata"]["name"]: n["metadata"]["uid"] for n in kube.list("/api/v1/nodes")}
    second_nodes = {n["metadata"]["name"]: n["metadata"]["uid"] for n in second_kube.list("/api/v1/nodes")}
    assert first_nodes and second_nodes
    assert not set(first_nodes.values()) & set(second_nodes.values()), "a Node object is shared"


@pytest.mark.kwok
def test_the_same_namespace_and_deployment_in_both_clusters_are_two_objects(
    kube: KubeClient, second_kube: KubeClient, second_namespace: str
) -> None:
    namespace = second_namespace  # the `namespace` fixture's name, in both clusters
    first = deploy_checkout(kube, namespace)
    second = deploy_checkout(second_kube, namespace)
    assert (first.namespace, first.name) == (second.namespace, second.name)
    uid_first = get(kube, "apps/v1", "Deployment", namespace, first.name)["metadata"]["uid"]
    uid_second = get(second_kube, "apps/v1", "Deployment", namespace, second.name)["metadata"]["uid"]
    assert uid_first != uid_second

    # A bad image in the first cluster: a new revision whose pods cannot pull, there only.
    breakage = break_image(kube, first)
    assert revision_of(get(kube, "apps/v1", "Deployment", namespace, first.name)) == breakage.revision == 2
    untouched = wait_rolled_out(second_kube, namespace, second.name)
    assert revision_of(untouched) == 1
    assert untouched["spec"]["template"]["spec"]["containers"][0]["image"] == second.image
    second_pods = pods(second_kube, namespace, second.selector_text)
    assert len(second_pods) == 2 and all(is_ready(p) for p in second_pods)
    assert all(p["spec"]["containers"][0]["image"] == second.image for p in second_pods)

    # Scaling in the second cluster leaves the first one's replicas alone.
    patch(
        second_kube, "apps/v1", "Deployment", namespace, second.name, {"spec": {"replicas": 3}}, kind_of_patch="merge"
    )
    wait_rolled_out(second_kube, namespace, second.name)
    assert len(pods(second_kube, namespace, second.selector_text)) == 3
    assert get(kube, "apps/v1", "Deployment", namespace, first.name)["spec"]["replicas"] == 2
