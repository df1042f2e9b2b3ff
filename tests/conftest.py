"""Fixtures for tests against a real Kubernetes API server.

- `cluster` (session): K8SBOT_TEST_KUBECONFIG if set (any real cluster), else the project's local kwok
  cluster from `scripts/local-cluster up`, which is left running for the next run (a warm `up` takes
  about a second); K8SBOT_TEST_CLUSTER_DOWN=1 stops it at the end of the session.
- `kube`: an admin `KubeClient` for that cluster.
- `namespace`: a fresh namespace per test, deleted afterwards without waiting.
- `@pytest.mark.kwok`: the test needs the local cluster's scenario stages / log serving; it is skipped,
  with the reason, on any other cluster.

Only tests that ask for these fixtures touch a cluster: nothing here runs at import or collection.
Tests using them are marked `cluster` automatically, so `-m "not cluster"` runs the rest alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kube_helpers import REPO, Cluster, create, delete, pod_logs_dir, resource_path, wait_for

from bot.errors import K8sBotError
from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from tests.slack_harness import seeded_emulator

CLUSTER_FIXTURES = {"cluster", "kube", "namespace"}


def _has_scenario_stages(kube: KubeClient) -> bool:
    try:
        kube.get(resource_path("kwok.x-k8s.io/v1alpha1", "Stage", None, "sim-crashloop-start"))
    except K8sBotError:
        return False
    return True


def _local_cluster(*args: str) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/local-cluster {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("kwok"):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    given = os.environ.get("K8SBOT_TEST_KUBECONFIG")
    if given:
        kubeconfig, local = given, False
    else:
        # A cold machine builds the binaries first (15-25 min): run `scripts/local-cluster up` once
        # by hand there, or this first test will hit its timeout.
        kubeconfig, local = _local_cluster("up"), True
    kube = KubeClient.from_kubeconfig(kubeconfig)
    kube.get("/version")  # fail here, clearly, if the cluster is unreachable
    yield Cluster(kubeconfig=kubeconfig, local=local, kwok_stages=_has_scenario_stages(kube))
    if local and os.environ.get("K8SBOT_TEST_CLUSTER_DOWN") == "1":
        _local_cluster("down")


@pytest.fixture(autouse=True)
def _kwok_only(request: pytest.FixtureRequest) -> None:
    """Skip `@pytest.mark.kwok` tests unless the cluster has our scenario stages (asks for `cluster`
    only for those tests, so unmarked tests that need no cluster never start one)."""
    if request.node.get_closest_marker("kwok") is None:
        return
    found: Cluster = request.getfixturevalue("cluster")
    if not found.kwok_stages:
        pytest.skip(
            f"needs the local kwok cluster's scenario stages and log serving "
            f"(scripts/local-cluster up); {found.kubeconfig} has no Stage sim-crashloop-start"
        )


@pytest.fixture
def kube(cluster: Cluster) -> KubeClient:
    return cluster.client()


@pytest.fixture
def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace named after the test. Pods can't be created before its `default`
    ServiceAccount exists, so that is waited for too."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:5]}"
    create(
        kube,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"k8sbot.dev/test": "true"}}},
    )
    wait_for(
        lambda: kube.get(resource_path("v1", "ServiceAccount", name, "default")), 30, f"ServiceAccount {name}/default"
    )
    yield name
    delete(kube, "v1", "Namespace", None, name)
    shutil.rmtree(pod_logs_dir() / name, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    given = os.environ.get("K8SBOT_TEST_KUBECONFIG")
    return f"k8sbot cluster: {given or 'local kwok cluster (scripts/local-cluster), started on first use'}"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    """The Slack emulator with the users and channels of tests/slack_harness.py, proxies unset."""
    with clean_slack_env():
        emulator = seeded_emulator()
        try:
            yield emulator
        finally:
            emulator.stop()
