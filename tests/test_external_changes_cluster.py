"""External changes and GitOps marks on the real cluster, through Slack (the emulator) and `k8sbot ask --json`.

* A feature flag flipped (recorded with `k8sbot record-change`) minutes before a crash that no change in
  the cluster explains: `why` and an alert name it as the culprit, with its source and link.
* An Argo CD-managed Deployment: its recorded change names the application and the controller, and a
  rollback's confirmation warns that Argo CD will revert it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import SIM_LABEL, create, patch, wait_for, wait_rolled_out
from scenarios import App, _wait_symptom, _waiting, checkout_manifests
from test_alerts_cluster import CHANNEL, Bot, bot  # noqa: F401 - the alert engine fixture

from bot.integrations.external import ExternalChanges
from bot.kube.client import KubeClient
from bot.redaction import Redactor
from bot.store.changes import ChangeStore
from bot.store.database import Database
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, running_bot, wait_answer
from tests.why_helpers import ask_json, slack_why

pytestmark = pytest.mark.kwok

TOKEN = "integration-token-for-tests-0123"
REPO = Path(__file__).resolve().parent.parent
FLAG_LINK = "https://flags.example.com/projects/shop/flags/new_payment?env=prod&x=1"


def crashing_checkout(kube: KubeClient, namespace: str) -> App:
    """`checkout` whose only revision crashes (exit 1): no template change can explain it."""
    deployment, service = checkout_manifests(namespace)
    template = deployment["spec"]["template"]
    template["metadata"]["labels"][SIM_LABEL] = "crashloop"
    template["metadata"]["annotations"] = {"sim.k8sbot.dev/reason": "Error", "sim.k8sbot.dev/exit-code": "1"}
    create(kube, deployment)
    create(kube, service)
    app = App(namespace, "checkout", {"app": "checkout"}, "app", "", 2)
    _wait_symptom(kube, app, "a pod in CrashLoopBackOff", _waiting("CrashLoopBackOff"))
    return app


def record_change(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "K8SBOT_URL": url,
        "K8SBOT_INTEGRATION_TOKEN": TOKEN,
    }
    return subprocess.run(
        [sys.executable, "-m", "k8sbot", "record-change", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def minutes_ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def test_why_blames_a_flag_flip_recorded_minutes_before_a_crash(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    with running_bot(slack, mode="http", db=str(db), kube=kube, integration_token=TOKEN) as runner:
        recorded = record_change(
            runner.url,
            "--source", "flags", "-n", namespace, "--summary", "new_payment on for 100%",
            "--actor", "<!channel> *carol*", "--link", FLAG_LINK, "--at", minutes_ago(4),
            "--field", "flags.new_payment=off=>on",
        )  # fmt: skip
        assert recorded.returncode == 0, recorded.stderr
        crashing_checkout(kube, namespace)
        shown = slack_why(slack, f"why checkout -n {namespace}")
    assert "crash_loop" in shown
    assert "Changed outside the cluster (from flags, about the namespace)" in shown
    assert "new_payment on for 100%" in shown
    assert "flags.example.com/projects/shop/flags/new_payment?env=prod&amp;x=1" in shown  # escaped, whole
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert slack.lints(kind="broadcast_ping") == []

    data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path, db=db)
    top = data["causes"][0]
    assert top["category"] == "crash_loop"
    change = top["change"]
    assert (change["source"], change["link"], change["summary"]) == ("flags", FLAG_LINK, "new_payment on for 100%")
    assert (change["path"], change["before"], change["after"]) == ("flags.new_payment", "off", "on")
    assert "flags" in top["suggestion"]["text"] and top["suggestion"]["command"] is None

    changes = ask_json(cluster.kubeconfig, f"changes -n {namespace} --since 1h", tmp_path, db=db)
    assert [(c["source"], c["kind"]) for c in changes["changes"]] == [("flags", "external")]
    assert changes["changes"][0]["cluster"] == "k8sbot-dev"  # the cluster the bot's store stamped


def test_an_alert_names_the_external_change_when_nothing_in_the_cluster_explains_the_crash(
    bot: Bot,  # noqa: F811 - the fixture of test_alerts_cluster
    kube: KubeClient,
    namespace: str,
) -> None:
    receiver = ExternalChanges(changes=[ChangeStore(Database(bot.db_path))], redactor=Redactor())
    outcome = receiver.receive(
        {
            "id": "deploy-cfg-77",
            "source": "ci",
            "at": minutes_ago(3),
            "target": {"kind": "deploy", "namespace": namespace, "name": "checkout"},
            "summary": "pushed payments config <@U0ALICE> `v77`",
            "actor": "jenkins",
            "link": "https://ci.example.com/job/shop/77/",
        }
    )
    assert outcome.status == 200, outcome.body
    bot.start()
    crashing_checkout(kube, namespace)
    alerts = wait_for(bot.alerts, 90, "the crash loop alert")
    blocks = json.dumps(alerts[0]["blocks"])
    assert "Likely cause (changed outside the cluster)" in blocks
    assert "https://ci.example.com/job/shop/77/" in blocks and "jenkins" in blocks
    assert "<@U0ALICE>" not in blocks and "&lt;@U0ALICE&gt;" in blocks
    assert "Rollback" not in blocks  # nothing in the cluster to roll back to


ARGO_ANNOTATIONS = {"argocd.argoproj.io/tracking-id": "shop-checkout:apps/Deployment:{ns}/checkout"}


def argo_checkout(kube: KubeClient, namespace: str) -> None:
    deployment, service = checkout_manifests(namespace)
    deployment["metadata"]["annotations"] = {k: v.format(ns=namespace) for k, v in ARGO_ANNOTATIONS.items()}
    deployment["metadata"]["labels"]["app.kubernetes.io/instance"] = "shop-checkout"
    create(kube, deployment)
    create(kube, service)
    wait_rolled_out(kube, namespace, "checkout")


def test_an_argo_cd_managed_deployment_names_its_application_and_its_rollback_warns(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    argo_checkout(kube, namespace)
    db = tmp_path / "bot.db"
    with running_bot(
        slack,
        mode="http",
        db=str(db),
        kube=kube,
        background=True,
        watch_namespaces=[namespace],
    ) as runner:
        assert runner.background is not None and runner.background.tracker.wait_synced(60)
        image = "registry.example.com/shop/checkout:1.4.3"
        body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        patch(kube, "apps/v1", "Deployment", namespace, "checkout", body)
        wait_rolled_out(kube, namespace, "checkout")
        store = ChangeStore(Database(db))

        def image_change() -> Any:
            since = datetime.now(UTC) - timedelta(hours=1)
            return next((c for c in store.query(since=since, namespace=namespace) if c.kind == "image"), None)

        change = wait_for(image_change, 60, "the image change to be recorded")
        assert change.managed_by is not None
        assert (change.managed_by.tool, change.managed_by.name) == ("argocd", "shop-checkout")

        before = len(slack.response_posts())
        result = slack.driver.slash_command(f"rollback checkout -n {namespace}", user_id=ALICE, channel_id=OPS)
        assert result.ok
        preview = json.dumps(wait_answer(slack, before, what="the rollback preview")["blocks"])
    assert "Argo CD application shop-checkout" in preview and "argocd app rollback shop-checkout" in preview
    assert "revert the commit" in preview

    shown = ask_json(cluster.kubeconfig, f"changes deploy/checkout -n {namespace}", tmp_path, db=db)
    managed = [c["managed_by"] for c in shown["changes"] if c["kind"] == "image"]
    assert managed and managed[0]["tool"] == "argocd" and managed[0]["name"] == "shop-checkout"
    assert shown["changes"][0]["source"] == "kubernetes"

    data = ask_json(cluster.kubeconfig, f"rollback checkout -n {namespace}", tmp_path, flags=("--yes",))
    assert data["outcome"] == "done"  # warned, not refused
    (warning,) = data["warnings"]
    assert "Argo CD will revert this rollback" in warning and "argocd app rollback shop-checkout" in warning
