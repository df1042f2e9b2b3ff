"""`why` against the real local control plane: every scenario of tests/scenarios.py gives the right top
category and (where a change caused it) the right culprit change; healthy, ambiguous, unknown,
forbidden and unreachable targets get clear answers."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from kube_helpers import SIM_LABEL, apply, create, get, set_pod_logs
from kubernetes import client as k8s_client
from scenarios import (
    BREAKERS,
    EXPECTED_CATEGORY,
    checkout_manifests,
    deploy_checkout,
    run_failing_job,
)
from scenarios_layers import deploy_payments

from bot.commands.context import VerbContext
from bot.commands.parsing import parse
from bot.errors import Ambiguous, ClusterUnavailable, NotFound, PermissionDenied
from bot.kube.client import KubeClient
from bot.model import Subject
from bot.store.database import Database
from tests.wiring_helpers import VERBS, command_services

EXPECTED = EXPECTED_CATEGORY


def ask(kube: KubeClient, text: str, *, subject: Subject | None = None, tmp_db: Any = None) -> dict[str, Any]:
    """Run a verb the way `k8sbot ask --json` does and return its JSON contract."""
    services = command_services(kube, tmp_db or Database(":memory:"))
    ctx = VerbContext(services=services, subject=subject or Subject(slack_user=None))
    command = parse(text, registry=VERBS)
    answer = VERBS.funcs[command.verb](ctx, command)
    return answer.data


@pytest.mark.kwok
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_why_names_category_and_culprit(kube: KubeClient, namespace: str, scenario: str) -> None:
    app = deploy_checkout(kube, namespace)
    breakage = BREAKERS[scenario](kube, app)
    data = ask(kube, f"why checkout -n {namespace}")
    assert data["healthy"] is False, data
    top = data["causes"][0]
    assert top["category"] == EXPECTED[scenario], data
    assert data["summary"]
    if breakage.path is not None:
        change = top["change"]
        assert change is not None, data
        assert change["path"] == _actual_path(kube, namespace, breakage), change
        assert change["before"] == breakage.before, change
        assert change["after"] == breakage.after, change
        if breakage.revision is not None:
            assert change["revision"] == breakage.revision
    assert top["suggestion"] is not None


def _actual_path(kube: KubeClient, namespace: str, breakage: Any) -> str:
    """Breakage.path, except that a strategic-merge patch puts a NEW env entry first, not last:
    scenarios.break_secret_key says env[len(env)], the cluster says env[0]. Ask the cluster."""
    if breakage.scenario != "missing_secret_key":
        return str(breakage.path)
    deployment = get(kube, "apps/v1", "Deployment", namespace, "checkout")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    index = next(i for i, e in enumerate(env) if e["name"] == breakage.after["name"])
    return f"spec.template.spec.containers[0].env[{index}]"


@pytest.mark.kwok
def test_template_change_suggests_rollback_to_the_good_revision(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace)
    BREAKERS["bad_image"](kube, app)
    data = ask(kube, f"why checkout -n {namespace}")
    suggestion = data["causes"][0]["suggestion"]
    assert suggestion["command"] == f"/k8s rollback checkout -n {namespace} --to-revision 1"
    assert app.image in suggestion["text"]
    # The new revision fails while the old pods keep serving (maxUnavailable 0): said on the top cause.
    assert any("still serving" in e for e in data["causes"][0]["evidence"]), data


@pytest.mark.kwok
def test_crash_loop_evidence_has_redacted_log_lines(kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace)
    breakage = BREAKERS["crash_after_env_change"](kube, app)
    set_pod_logs(
        kube,
        namespace,
        f"{SIM_LABEL}=crashloop",
        "app",
        current=["starting checkout"],
        previous=[
            "connecting to https://payments.internal:8443/v2",
            "FATAL: auth failed: password=hunter2 token=abc.def",
            "exiting",
        ],
    )
    assert breakage.pods
    data = ask(kube, f"why checkout -n {namespace}")
    evidence = "\n".join(data["causes"][0]["evidence"])
    assert "FATAL: auth failed" in evidence
    assert "hunter2" not in evidence and "[REDACTED]" in evidence
    assert "exited with code 1" in evidence


@pytest.mark.kwok
def test_failing_job(kube: KubeClient, namespace: str) -> None:
    run_failing_job(kube, namespace, exit_code=2)
    data = ask(kube, f"why job/nightly-report -n {namespace}")
    top = data["causes"][0]
    assert top["category"] == "job_failed", data
    assert any("code 2" in e for e in top["evidence"]), top
    assert data["target"] == {"kind": "Job", "namespace": namespace, "name": "nightly-report"}
    # By name alone, too (the Job is the only thing called that).
    assert ask(kube, f"why nightly-report -n {namespace}")["causes"][0]["category"] == "job_failed"


def test_healthy_service_says_healthy(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace)
    data = ask(kube, f"why checkout -n {namespace}")
    assert data["healthy"] is True, data
    assert data["target"] == {"kind": "Deployment", "namespace": namespace, "name": "checkout"}
    assert [c["category"] for c in data["causes"]] == ["healthy"]


def test_api_calls_are_bounded(kube: KubeClient, namespace: str) -> None:
    """The snapshot path lists what the target needs: its cost follows the target, not the namespace."""
    deploy_checkout(kube, namespace, replicas=4)
    before = kube.calls
    ask(kube, f"why checkout -n {namespace}")
    alone = kube.calls - before
    # The namespace's small kinds (12, LimitRanges included), the target's pods, ReplicaSets, pods per Service and
    # EndpointSlices (4), the pods' nodes (<= 2) and the events of each object in scope (4 pods, <= 2
    # ReplicaSets, the Deployment and Service share a name): nothing per pod of the namespace.
    assert alone <= 12 + 4 + 2 + 7, alone
    deploy_checkout(kube, namespace, name="noise", replicas=6)
    before = kube.calls
    ask(kube, f"why checkout -n {namespace}")
    assert kube.calls - before == alone  # six more pods elsewhere in the namespace cost nothing
    # A Service checkout calls (env PAYMENT_API_URL=http://payments:8080): its pods, EndpointSlices and
    # its Deployment's ReplicaSets (3), the ConfigMaps/Secrets that names (none), its pods' nodes
    # (<= 2 new) and the events of its Service/Deployment (one name), 2 pods and 1 ReplicaSet (4).
    deploy_payments(kube, namespace, replicas=2)
    before = kube.calls
    ask(kube, f"why checkout -n {namespace}")
    assert 3 <= kube.calls - before - alone <= 3 + 2 + 4, kube.calls - before - alone


def test_ambiguous_and_unknown_targets(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace, wait=False)
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "checkout", "namespace": namespace},
        "spec": {
            "serviceName": "checkout-db",
            "replicas": 0,
            "selector": {"matchLabels": {"app": "checkout-db"}},
            "template": {
                "metadata": {"labels": {"app": "checkout-db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
        },
    }
    create(kube, sts)
    with pytest.raises(Ambiguous) as ambiguous:
        ask(kube, f"why checkout -n {namespace}")
    assert set(ambiguous.value.candidates) == {"service/checkout", "statefulset/checkout"}
    # A kind settles it.
    assert ask(kube, f"why deploy/checkout -n {namespace}")["target"]["kind"] == "Deployment"
    with pytest.raises(NotFound) as unknown:
        ask(kube, f"why checkuot -n {namespace}")
    assert "checkout" in unknown.value.candidates


def test_namespace_the_caller_may_not_read(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace, wait=False)
    with pytest.raises(PermissionDenied) as denied:
        ask(
            kube,
            f"why checkout -n {namespace}",
            subject=Subject(slack_user="U1", k8s_user="nobody@example.com", k8s_groups=("no-rbac",)),
        )
    assert namespace in str(denied.value)


def test_unreachable_cluster_is_a_clear_message() -> None:

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = k8s_client.Configuration()
    configuration.host = f"https://127.0.0.1:{port}"
    with pytest.raises(ClusterUnavailable) as unreachable:
        ask(KubeClient(configuration), "why checkout -n shop")
    assert "cannot reach" in str(unreachable.value)


def test_status_lists_the_broken_workload(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace)
    deployment, service = checkout_manifests(namespace, name="cart", replicas=1)
    deployment["spec"]["replicas"] = 0
    apply(kube, deployment)
    apply(kube, service)
    data = ask(kube, f"status -n {namespace}")
    assert data["workloads"] == 2
    assert [(p["name"], p["category"]) for p in data["problems"]] == [("cart", "scaled_to_zero")]


@pytest.mark.kwok
def test_logs_are_redacted_and_long_logs_attached(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace, replicas=1)
    lines = [f"line {i}" for i in range(100)] + ["Authorization: Bearer abcdefghijklmnop", "db password=s3cret"]
    set_pod_logs(kube, namespace, "app=checkout", "app", current=lines)
    ctx = VerbContext(services=command_services(kube, Database(":memory:")), subject=Subject(slack_user=None))
    answer = VERBS.funcs["logs"](ctx, parse(f"logs checkout -n {namespace}", registry=VERBS))
    text = "\n".join(answer.lines) + "".join(content for _, content in answer.attachments)
    assert "abcdefghijklmnop" not in text and "s3cret" not in text
    assert answer.data["truncated"] is True and answer.attachments
    assert "line 0" in answer.attachments[0][1]
    grep = VERBS.funcs["logs"](ctx, parse(f"logs checkout -n {namespace} --grep password", registry=VERBS))
    assert grep.data["lines"] == ["db password=[REDACTED]"]


def test_describe_deployment_and_secret_keys(kube: KubeClient, namespace: str) -> None:
    deploy_checkout(kube, namespace, replicas=1)
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": namespace},
            "stringData": {"password": "topsecret-value"},
        },
    )
    describe = ask(kube, f"describe deploy/checkout -n {namespace}")
    assert any("Replicas: 1 desired" in line for line in describe["lines"])
    assert any("Events:" in line for line in describe["lines"])
    secret = ask(kube, f"describe secret/db -n {namespace}")
    assert any("Keys: password" in line for line in secret["lines"])
    assert "topsecret-value" not in "\n".join(secret["lines"])
