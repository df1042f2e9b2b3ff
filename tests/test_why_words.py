"""`why` in words a person acts on, blaming what plausibly caused the symptom (issue 15, items 5 and 7).

Through `k8sbot ask --json` and through Slack, on the real cluster: the changed thing is named as a
person names it (the env var, the ConfigMap and key, the memory limit; never `env[0].value` or a Python
dict), a ConfigMap edit is undone by putting the key back (not by a rollback that would not undo it),
an object's creation is not blamed as a "scale from 0", and a change to what the container does (its
env) can explain an OOM kill.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import Observed, apply, patch, pods, wait_for
from scenarios import (
    CHECKOUT_IMAGE,
    SYMPTOM_TIMEOUT,
    App,
    _template_patch,
    _wait_symptom,
    _waiting,
    break_env,
    break_secret_key,
    checkout_manifests,
    create,
    deploy_checkout,
)

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import running_bot
from tests.why_helpers import ask_json, recording_bot, shown_text, slack_ask

ARGO = "argocd.argoproj.io/instance"
RAW_PATH = re.compile(r"env\[\d+\]|containers\[\d+\]|\{'|'\}")
"""What a person should never have to read: list indices of the API's JSON, Python dict reprs."""


def _both(
    kube: KubeClient, cluster: Any, slack: SlackEmulator, tmp_path: Path, namespace: str
) -> tuple[dict[str, Any], str]:
    """`why checkout` as JSON (k8sbot ask) and as Slack shows it (the bot without watchers)."""
    data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path)
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), kube=kube):
        message = slack_ask(slack, f"why checkout -n {namespace}", channel="C0OPS0001")
    return data, shown_text(message)


@pytest.mark.kwok
def test_env_change_is_named_by_the_variable(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    breakage = break_env(kube, app)
    data, shown = _both(kube, cluster, slack, tmp_path, namespace)
    top = data["causes"][0]
    assert top["category"] == "crash_loop", data
    assert top["change"]["what"] == "env var PAYMENT_API_URL of container app", top
    assert "env var PAYMENT_API_URL of container app changed from http://payments:8080 to" in data["summary"]
    assert "env var PAYMENT_API_URL" in shown and str(breakage.after) in shown, shown
    for text in (data["summary"], top["suggestion"]["text"], shown):
        assert not RAW_PATH.search(text), text


@pytest.mark.kwok
def test_new_secret_reference_is_said_in_words_not_as_a_dict(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    break_secret_key(kube, app)
    data, shown = _both(kube, cluster, slack, tmp_path, namespace)
    top = data["causes"][0]
    assert top["category"] == "config_error", data
    said = "env var DB_PASSWORD of container app was added (from Secret db-credentials key password)"
    assert said in data["summary"], data["summary"]
    assert said in shown, shown
    for text in (data["summary"], shown):
        assert not RAW_PATH.search(text), text


@pytest.mark.kwok
def test_configmap_edit_suggests_putting_the_key_back_not_a_rollback(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """The ConfigMap is edited without a rollout; the pods break when they next start (a restart)."""
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "checkout-config", "namespace": namespace},
            "data": {"PAYMENT_URL": "http://payments:8080", "LOG_LEVEL": "info"},
        },
    )
    deployment, service = checkout_manifests(namespace)
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "checkout-config"}}]
    create(kube, deployment)
    create(kube, service)
    wait_for(
        lambda: Observed(
            len([p for p in pods(kube, namespace, "app=checkout") if p["status"].get("phase") == "Running"]) >= 2,
            "",
            True,
        ),
        60,
        "checkout running",
    )
    with recording_bot(slack, kube, cluster, namespace, tmp_path):
        patch(kube, "v1", "ConfigMap", namespace, "checkout-config", {"data": {"PAYMENT_URL": "https://pay:8443"}})
        # Later, a restart: the pods read the new value and crash (kwok's crashloop stage plays the program).
        shop = App(namespace, "checkout", {"app": "checkout"}, "app", CHECKOUT_IMAGE, 2)
        _template_patch(
            kube,
            shop,
            {},
            scenario="crashloop",
            annotations={
                "kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z",
                "sim.k8sbot.dev/reason": "Error",
                "sim.k8sbot.dev/exit-code": "1",
            },
        )
        _wait_symptom(kube, shop, "a pod in CrashLoopBackOff", _waiting("CrashLoopBackOff"), timeout=SYMPTOM_TIMEOUT)
        wait_for(lambda: Observed(bool(_recorded(tmp_path)), "", True), 30, "the ConfigMap edit to be recorded")
        message = slack_ask(slack, f"why checkout -n {namespace}")
        # `k8sbot ask` on the bot's database reads the same recorded history.
        data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path, db=tmp_path / "bot.db")
    top = data["causes"][0]
    assert top["category"] == "crash_loop", data
    assert top["change"]["what"] == "key PAYMENT_URL of ConfigMap checkout-config", top
    assert top["suggestion"]["command"] is None and "a rollback would not undo it" in top["suggestion"]["text"]
    shown = shown_text(message)
    assert "key PAYMENT_URL of ConfigMap checkout-config changed from http://payments:8080 to https://pay:8443" in shown
    assert "Set key `PAYMENT_URL` of ConfigMap `checkout-config` back to http://payments:8080" in shown, shown
    assert "Roll back" not in shown and "--to-revision" not in shown, shown


def _recorded(tmp_path: Path) -> bool:
    with sqlite3.connect(tmp_path / "bot.db") as db:
        return bool(db.execute("SELECT 1 FROM changes WHERE kind = 'ConfigMap'").fetchall())


@pytest.mark.kwok
def test_creation_is_not_a_scale_from_zero(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Created with more replicas than the nodes hold: unschedulable from the start, and nobody
    "scaled it from 0"."""
    deploy_checkout(kube, namespace, replicas=20, wait=False)
    wait_for(
        lambda: Observed(
            any(
                c.get("reason") == "Unschedulable"
                for p in pods(kube, namespace, "app=checkout")
                for c in p["status"].get("conditions") or []
            ),
            "",
            True,
        ),
        SYMPTOM_TIMEOUT,
        "an Unschedulable pod",
    )
    data, shown = _both(kube, cluster, slack, tmp_path, namespace)
    top = data["causes"][0]
    assert top["category"] == "unschedulable", data
    assert top["change"] is None, top
    assert "from 0" not in data["summary"] and "(none) to 20" not in shown, data["summary"]
    assert "replicas changed" not in shown, shown


@pytest.mark.kwok
def test_env_change_explains_an_oom_kill(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """One edit raises the cache size (env) and nothing else; the container is then OOM-killed."""
    app = deploy_checkout(kube, namespace)
    _template_patch(
        kube,
        app,
        {"env": [{"name": "CACHE_MB", "value": "2048"}]},
        scenario="crashloop",
        annotations={"sim.k8sbot.dev/reason": "OOMKilled", "sim.k8sbot.dev/exit-code": "137"},
    )
    _wait_symptom(kube, app, "a pod OOMKilled in CrashLoopBackOff", _waiting("CrashLoopBackOff"))
    data, shown = _both(kube, cluster, slack, tmp_path, namespace)
    top = data["causes"][0]
    assert top["category"] == "oom_killed", data
    assert top["change"] is not None and top["change"]["what"] == "env var CACHE_MB of container app", top
    assert "env var CACHE_MB of container app was added (2048)" in data["summary"], data["summary"]
    assert "env var CACHE_MB" in shown, shown
    assert json.dumps(top["change"]).count("labels") == 0  # the sim label in the same edit is not blamed


@pytest.mark.kwok
def test_actor_is_the_deployer_not_the_client_librarys_default(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """Argo CD applies with kubectl's client-side apply: the manager says `kubectl-client-side-apply`,
    the object's Argo CD label says who. The answer names Argo CD's app."""
    app = deploy_checkout(kube, namespace)
    patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"metadata": {"labels": {ARGO: "shop-checkout"}}})
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout",
        body={
            "spec": {
                "template": {
                    "metadata": {"labels": {"sim.k8sbot.dev/scenario": "imagepull"}},
                    "spec": {"containers": [{"name": "app", "image": f"{CHECKOUT_IMAGE}-rc9"}]},
                }
            }
        },
        content_type="application/strategic-merge-patch+json",
        query={"fieldManager": "kubectl-client-side-apply"},
    )
    _wait_symptom(kube, app, "a pod in ImagePullBackOff", _waiting("ImagePullBackOff"))
    data, shown = _both(kube, cluster, slack, tmp_path, namespace)
    top = data["causes"][0]
    assert top["category"] == "image_pull", data
    expected = "Argo CD (app shop-checkout) via kubectl-client-side-apply"
    assert top["change"]["actor"] == expected, top["change"]
    assert f"by {expected}" in data["summary"] and expected in shown, shown
