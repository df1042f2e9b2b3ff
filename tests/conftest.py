"""Fixtures for tests against a real Kubernetes API server.

- `cluster` (session): K8SBOT_TEST_KUBECONFIG if set (any real cluster), else the project's local kwok
  cluster from `scripts/local-cluster up`, which is left running for the next run (a warm `up` takes
  about a second); K8SBOT_TEST_CLUSTER_DOWN=1 stops it at the end of the session.
- `kube`: an admin `KubeClient` for that cluster.
- `namespace`: a fresh namespace per test, deleted afterwards without waiting.
- `second_cluster` (session), `second_kube`, `second_namespace`: a second real cluster for the
  multi-cluster tests (docs/multi-cluster.md): K8SBOT_TEST_SECOND_KUBECONFIG if set, else the local kwok
  cluster `k8sbot-second` (`K8SBOT_CLUSTER_NAME=k8sbot-second scripts/local-cluster up`, side by side with
  the first, on its own free ports). When the first cluster is given by K8SBOT_TEST_KUBECONFIG and the
  second is not, a running `k8sbot-second` is reused but none is started. A second cluster that cannot
  be had skips its tests, saying why, except in CI (`CI` set), where it fails them.
  `second_namespace` is the `namespace` fixture's name created in the second cluster too.
- `@pytest.mark.kwok`: the test needs the local cluster's scenario stages / log serving; it is skipped,
  with the reason, on any other cluster (on either cluster, for a test that uses both).

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
from typing import NoReturn

import pytest
from kube_helpers import REPO, Cluster, create, delete, pod_logs_dir, resource_path, wait_for

from bot.errors import K8sBotError
from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from tests.slack_harness import seeded_emulator

CLUSTER_FIXTURES = {"cluster", "kube", "namespace", "second_cluster", "second_kube", "second_namespace"}
SECOND_CLUSTER_NAME = "k8sbot-second"
"""The local kwok cluster the multi-cluster tests use beside the first (scripts/local-cluster)."""


def _has_scenario_stages(kube: KubeClient) -> bool:
    try:
        kube.get(resource_path("kwok.x-k8s.io/v1alpha1", "Stage", None, "sim-crashloop-start"))
    except K8sBotError:
        return False
    return True


def _local_cluster(*args: str, name: str | None = None) -> str:
    """`scripts/local-cluster ARGS` for the cluster `name` (default: K8SBOT_CLUSTER_NAME or k8sbot-dev);
    its last line of output."""
    env = {**os.environ, "K8SBOT_CLUSTER_NAME": name} if name else None
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), *args], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        label = f"K8SBOT_CLUSTER_NAME={name} " if name else ""
        raise RuntimeError(f"{label}scripts/local-cluster {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _local_cluster_running(name: str) -> bool:
    """The local cluster `name` is running (scripts/local-cluster status, which starts nothing)."""
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), "status"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "K8SBOT_CLUSTER_NAME": name},
    )
    return result.returncode == 0


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


def _unavailable(reason: str) -> NoReturn:
    """A second cluster that cannot be had: a skip, except in CI, where it is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"the second test cluster is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def second_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A second real cluster beside `cluster`, for tests of one bot serving two clusters."""
    given = os.environ.get("K8SBOT_TEST_SECOND_KUBECONFIG")
    started = False
    if given:
        kubeconfig, local = given, False
    elif not cluster.local:
        # The first cluster was handed in (a shared or remote one): start nothing, reuse a running one.
        if not _local_cluster_running(SECOND_CLUSTER_NAME):
            _unavailable(
                "K8SBOT_TEST_KUBECONFIG is set but K8SBOT_TEST_SECOND_KUBECONFIG is not, and the local cluster "
                f"{SECOND_CLUSTER_NAME} is not running; start it with `K8SBOT_CLUSTER_NAME={SECOND_CLUSTER_NAME} "
                "scripts/local-cluster up` and set K8SBOT_TEST_SECOND_KUBECONFIG to the path it prints"
            )
        kubeconfig, local = _local_cluster("kubeconfig", name=SECOND_CLUSTER_NAME), True
    else:
        try:
            kubeconfig = _local_cluster("up", name=SECOND_CLUSTER_NAME)
        except RuntimeError as e:
            _unavailable(str(e))
        local = started = True
    if os.path.realpath(kubeconfig) == os.path.realpath(cluster.kubeconfig):
        pytest.fail(f"the second test cluster is the first one ({kubeconfig})", pytrace=False)
    try:
        kube = KubeClient.from_kubeconfig(kubeconfig)
        kube.get("/version")
    except K8sBotError as e:
        reason = f"the second test cluster ({kubeconfig}) is unreachable: {e}"
        if given:  # asked for by name: a mistake to show, as for K8SBOT_TEST_KUBECONFIG
            pytest.fail(reason, pytrace=False)
        _unavailable(reason)
    yield Cluster(kubeconfig=kubeconfig, local=local, kwok_stages=_has_scenario_stages(kube))
    if started and os.environ.get("K8SBOT_TEST_CLUSTER_DOWN") == "1":
        _local_cluster("down", name=SECOND_CLUSTER_NAME)


@pytest.fixture(autouse=True)
def _kwok_only(request: pytest.FixtureRequest) -> None:
    """Skip `@pytest.mark.kwok` tests unless the cluster (and the second one, for a test that uses it) has
    our scenario stages. Asks for the clusters only for those tests, so unmarked tests that need no
    cluster never start one."""
    if request.node.get_closest_marker("kwok") is None:
        return
    wanted = ["cluster"] + (["second_cluster"] if "second_cluster" in request.fixturenames else [])
    for fixture in wanted:
        found: Cluster = request.getfixturevalue(fixture)
        if not found.kwok_stages:
            pytest.skip(
                f"needs the local kwok cluster's scenario stages and log serving "
                f"(scripts/local-cluster up); {found.kubeconfig} has no Stage sim-crashloop-start"
            )


@pytest.fixture
def kube(cluster: Cluster) -> KubeClient:
    return cluster.client()


@pytest.fixture
def second_kube(second_cluster: Cluster) -> KubeClient:
    """An admin `KubeClient` for the second cluster."""
    return second_cluster.client()


def _create_namespace(kube: KubeClient, name: str) -> None:
    """Create a test namespace and wait for its `default` ServiceAccount (pods can't be created before)."""
    create(
        kube,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"k8sbot.dev/test": "true"}}},
    )
    wait_for(
        lambda: kube.get(resource_path("v1", "ServiceAccount", name, "default")), 30, f"ServiceAccount {name}/default"
    )


@pytest.fixture
def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace named after the test. Pods can't be created before its `default`
    ServiceAccount exists, so that is waited for too."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:5]}"
    _create_namespace(kube, name)
    yield name
    delete(kube, "v1", "Namespace", None, name)
    shutil.rmtree(pod_logs_dir() / name, ignore_errors=True)


@pytest.fixture
def second_namespace(namespace: str, second_kube: KubeClient) -> Iterator[str]:
    """The `namespace` fixture's namespace created in the second cluster too (same name: the case where
    only the cluster tells two objects apart); deleted afterwards without waiting."""
    _create_namespace(second_kube, namespace)
    yield namespace
    delete(second_kube, "v1", "Namespace", None, namespace)


def pytest_report_header(config: pytest.Config) -> str:
    given = os.environ.get("K8SBOT_TEST_KUBECONFIG")
    second = os.environ.get("K8SBOT_TEST_SECOND_KUBECONFIG") or (
        f"local kwok cluster {SECOND_CLUSTER_NAME} if running (none is started)"
        if given
        else f"local kwok cluster {SECOND_CLUSTER_NAME}, started on first use"
    )
    return (
        f"k8sbot cluster: {given or 'local kwok cluster (scripts/local-cluster), started on first use'}; "
        f"second cluster: {second}"
    )


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    """The Slack emulator with the users and channels of tests/slack_harness.py, proxies unset."""
    with clean_slack_env():
        emulator = seeded_emulator()
        try:
            yield emulator
        finally:
            emulator.stop()
