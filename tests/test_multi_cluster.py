"""One bot, two real clusters (issue 14): the same namespace and Deployment in both, broken in one.

The clusters are two local control planes side by side (`cluster` and `second_cluster`, see
tests/conftest.py), configured as `prod` and `staging` with the `clusters` setting. Through Slack
(the emulator) and the real `k8sbot run` wiring: `why` with and without `--cluster` and with a
channel's default cluster; the alert names its cluster and its Rollback, clicked from a channel whose
default is the other cluster, acts on prod only; a person allowed on staging only is refused on prod;
the staging API server stopped mid-test leaves prod answering and alerting, and staging answers again
once it continues; a single-cluster database is read by the two-cluster bot under the old name.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import Cluster, bind_role, get, wait_rolled_out
from scenarios import App, break_image, deploy_checkout

from bot.kube.client import KubeClient
from bot.model import Change
from bot.store.changes import ChangeStore
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.conftest import SECOND_CLUSTER_NAME
from tests.slack_harness import ALICE, BOB, OPS, SHOP, answers_after, running_bot, wait_answer

pytestmark = pytest.mark.kwok
REPO = Path(__file__).resolve().parent.parent

POLICY = """
roles:
  operator: [why, status, logs, describe, changes, timeline, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: {ops}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-mc-edit]}}
  staging-devs:
    clusters: [staging]
    namespaces: [{ns}]
    members: {{users: [{bob}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-mc-edit]}}
defaults: {{role: null}}
"""


def _policy(tmp_path: Path, namespace: str) -> str:
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ops=OPS, ns=namespace, alice=ALICE, bob=BOB))
    return str(path)


@contextmanager
def _two_cluster_bot(
    slack: SlackEmulator, tmp_path: Path, namespace: str, prod: Cluster, staging: Cluster, **overrides: Any
) -> Iterator[BotRunner]:
    with running_bot(
        slack,
        mode="socket",
        db=str(tmp_path / "bot.db"),
        clusters=[
            {"name": "prod", "kubeconfig": prod.kubeconfig},
            {"name": "staging", "kubeconfig": staging.kubeconfig},
        ],
        channel_clusters={OPS: "staging"},
        permissions=_policy(tmp_path, namespace),
        watch_namespaces=[namespace],
        background=True,
        **overrides,
    ) as runner:
        yield runner


def _ask(slack: SlackEmulator, text: str, *, user: str = ALICE, channel: str = SHOP) -> dict[str, Any]:
    before = len(slack.response_posts())
    slack.driver.slash_command(text, user_id=user, channel_id=channel)
    return wait_answer(slack, before, what=f"the answer to {text!r}", timeout=60)


def _text(message: dict[str, Any]) -> str:
    return json.dumps(message)


def _buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]}


def _alerts(slack: SlackEmulator, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"]


def _generation(kube: KubeClient, namespace: str) -> int:
    return int(get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"])


def _image(kube: KubeClient, namespace: str) -> str:
    deployment = get(kube, "apps/v1", "Deployment", namespace, "checkout")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _readyz(runner: BotRunner) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(runner.url + "/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _checkout_in_both(prod: KubeClient, staging: KubeClient, namespace: str) -> App:
    """The same healthy checkout in both clusters, editable by the team's identity; prod's app."""
    for client in (prod, staging):
        bind_role(client, namespace, "edit", group="team-mc-edit")
    deploy_checkout(staging, namespace)
    return deploy_checkout(prod, namespace)


def test_why_routes_by_flag_and_channel_and_the_alerts_rollback_acts_on_its_cluster_only(
    kube: KubeClient,
    second_kube: KubeClient,
    namespace: str,
    second_namespace: str,
    cluster: Cluster,
    second_cluster: Cluster,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    prod_app = _checkout_in_both(kube, second_kube, namespace)
    staging_generation = _generation(second_kube, namespace)
    with _two_cluster_bot(
        slack, tmp_path, namespace, cluster, second_cluster, alert_settle_seconds=1.0, alert_resolve_seconds=2.0
    ) as runner:
        assert runner.background is not None
        assert all(work.tracker.wait_synced(60) for work in runner.background.clusters)
        breakage = break_image(kube, prod_app)

        # No --cluster and no channel default: asked back, never a guess.
        asked = _ask(slack, f"why checkout -n {namespace}")
        assert "Which cluster?" in _text(asked) and "prod, staging" in _text(asked)
        # --cluster names it: prod is broken (the new image), staging is healthy.
        prod = _ask(slack, f"why checkout -n {namespace} --cluster prod")
        assert breakage.after in _text(prod) and "cluster `prod`" in _text(prod)
        staging = _ask(slack, f"why checkout -n {namespace} --cluster staging")
        assert breakage.after not in _text(staging) and "cluster `staging`" in _text(staging)
        assert "healthy" in _text(staging)
        # The channel's default cluster (OPS → staging), and the flag over it.
        in_ops = _ask(slack, f"why checkout -n {namespace}", channel=OPS)
        assert "cluster `staging`" in _text(in_ops) and breakage.after not in _text(in_ops)
        flagged = _ask(slack, f"why checkout -n {namespace} --cluster prod", channel=OPS)
        assert breakage.after in _text(flagged)

        # The alert goes to the team's channel (OPS, whose default cluster is staging), names its
        # cluster, and its buttons carry it.
        slack.wait_for(lambda: _alerts(slack, OPS), timeout=90, what="an alert in the team's channel")
        (alert,) = _alerts(slack, OPS)
        assert "*Cluster:* prod" in _text(alert) and breakage.after in _text(alert)
        rollback = _buttons(alert)["Rollback"]
        assert "--cluster prod" in rollback["value"], rollback

        # Clicked there, in a channel whose default is staging: acts on prod only.
        before = len(slack.response_posts())
        slack.driver.click(OPS, alert["ts"], rollback["action_id"], ALICE)
        wait_answer(slack, before, what="the rollback preview", timeout=60)
        preview_ts, preview = _newest_ephemeral(slack, OPS, ALICE)
        confirm = _buttons(preview)["Confirm"]
        assert "--cluster prod" in confirm["value"]
        before = len(slack.response_posts())
        slack.driver.click(OPS, preview_ts, confirm["action_id"], ALICE)
        wait_answer(slack, before, what="the rollback result", timeout=60)
        wait_rolled_out(kube, namespace, "checkout")
        assert _image(kube, namespace) == prod_app.image
        assert _generation(second_kube, namespace) == staging_generation  # staging untouched

        # Bob may act on staging only: refused on prod (file), allowed on staging.
        refused = _ask(slack, f"scale checkout -n {namespace} --replicas 3 --cluster prod", user=BOB)
        assert refused["response_type"] == "ephemeral" and "prod" in _text(refused)
        assert "only in clusters staging" in _text(refused)
        allowed = _ask(slack, f"scale checkout -n {namespace} --replicas 3 --cluster staging", user=BOB)
        assert "Confirm" in _buttons(_newest_ephemeral(slack, SHOP, BOB)[1]), allowed
    audit = [row for c in runner.core.clusters for row in c.audit.since(None, limit=100)] if runner.core else []
    assert {(row.cluster, row.verb) for row in audit if row.verb == "rollback"} == {("prod", "rollback")}


def _newest_ephemeral(slack: SlackEmulator, channel: str, user: str) -> tuple[str, dict[str, Any]]:
    ephemeral = slack.ephemerals(channel, user)[-1]
    return ephemeral.ts, copy.deepcopy(ephemeral.message)


def test_a_single_cluster_database_is_read_by_the_two_cluster_bot_under_its_old_name(
    kube: KubeClient,
    namespace: str,
    second_namespace: str,
    cluster: Cluster,
    second_cluster: Cluster,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    bind_role(kube, namespace, "edit", group="team-mc-edit")
    app = deploy_checkout(kube, namespace)
    db = str(tmp_path / "bot.db")
    # The bot as it ran before: one cluster, named prod by K8SBOT_CLUSTER_NAME, records a change.
    with running_bot(
        slack,
        mode="socket",
        db=db,
        background=True,
        kubeconfig=cluster.kubeconfig,
        cluster_name="prod",
        permissions=_policy(tmp_path, namespace),
        watch_namespaces=[namespace],
    ) as single:
        assert single.background is not None and single.background.tracker.wait_synced(60)
        breakage = break_image(kube, app)
        slack.wait_for(
            lambda: single.core is not None and _recorded(single.core.changes, namespace),
            timeout=60,
            what="the image change recorded",
        )
    with _two_cluster_bot(slack, tmp_path, namespace, cluster, second_cluster, cluster_name="prod") as runner:
        prod = _ask(slack, f"changes checkout -n {namespace} --since 1h --cluster prod")
        assert breakage.after in _text(prod)
        staging = _ask(slack, f"changes checkout -n {namespace} --since 1h --cluster staging")
        assert breakage.after not in _text(staging)
        assert runner.core is not None
        rows = _recorded(runner.core.cluster("prod").changes, namespace)
        assert rows and {c.cluster for c in rows} == {"prod"}
        assert not _recorded(runner.core.cluster("staging").changes, namespace)


def _recorded(changes: ChangeStore, namespace: str) -> list[Change]:
    return changes.query(since=datetime.now(UTC) - timedelta(hours=1), namespace=namespace)


def _local_cluster(command: str, name: str) -> None:
    """`scripts/local-cluster COMMAND` for the local cluster `name` (`stop`, or `up` to start it again)."""
    env = {**os.environ, "K8SBOT_CLUSTER_NAME": name}
    done = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), command],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


# Last of the tests that use the second cluster (and this file sorts after the others that do): in CI,
# pods created in the local cluster after its `stop` and `up` were once not made Ready for minutes.
def test_a_stopped_cluster_degrades_only_itself_and_recovers(
    kube: KubeClient,
    second_kube: KubeClient,
    namespace: str,
    second_namespace: str,
    cluster: Cluster,
    second_cluster: Cluster,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    if not second_cluster.local:
        pytest.skip("stopping the second cluster needs the local one (scripts/local-cluster stop)")
    prod_app = _checkout_in_both(kube, second_kube, namespace)
    with _two_cluster_bot(
        slack, tmp_path, namespace, cluster, second_cluster, alert_settle_seconds=1.0, alert_resolve_seconds=2.0
    ) as runner:
        assert runner.background is not None
        assert all(work.tracker.wait_synced(60) for work in runner.background.clusters)
        status, ready = _readyz(runner)
        slack.wait_for(
            lambda: all(c["reachable"] for c in _readyz(runner)[1]["clusters"].values()),
            timeout=20,
            what="both clusters reachable",
        )
        _local_cluster("stop", SECOND_CLUSTER_NAME)  # staging goes away: every component stopped
        try:
            slack.wait_for(
                lambda: _readyz(runner)[1]["clusters"]["staging"]["reachable"] is False,
                timeout=30,
                what="/readyz to report staging unreachable",
            )
            status, ready = _readyz(runner)
            assert status == 200 and ready["clusters"]["prod"]["reachable"] is True, ready
            away = _ask(slack, f"status -n {namespace} --cluster staging")
            assert "staging is unreachable since" in _text(away), away
            started = time.monotonic()
            fine = _ask(slack, f"why checkout -n {namespace} --cluster prod")
            assert "healthy" in _text(fine) and time.monotonic() - started < 30
            # prod's alerts keep flowing while staging is away.
            breakage = break_image(kube, prod_app)
            slack.wait_for(
                lambda: any(breakage.after in _text(a) for a in _alerts(slack, OPS)),
                timeout=90,
                what="prod's alert while staging is stopped",
            )
        finally:
            _local_cluster("up", SECOND_CLUSTER_NAME)  # started again, on the same ports
        slack.wait_for(
            lambda: _readyz(runner)[1]["clusters"]["staging"]["reachable"] is True,
            timeout=60,
            what="staging reachable again",
        )
        back = _ask(slack, f"why checkout -n {namespace} --cluster staging")
        assert "unreachable" not in _text(back) and "cluster `staging`" in _text(back)
        assert not [a for a in answers_after(slack, 0) if "Traceback" in _text(a)]
