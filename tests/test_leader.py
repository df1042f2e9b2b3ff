"""One leader: two `k8sbot run` processes against the real cluster and the Slack emulator.

Both run the whole bot (each with its own database, as two replicas by mistake would); only the one
holding the `coordination.k8s.io/v1` Lease runs watchers, alerting and the digest. A broken rollout is
alerted once, not twice; the follower stays ready; when the leader is killed (SIGKILL: the Lease is not
released) the follower takes the Lease once it expires and starts alerting. Lease timings are short
here (settings), the client-go defaults in production.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from scenarios import break_image, deploy_checkout

from bot.kube.client import KubeClient
from bot.kube.leasing import LeaseLock, LeaseTiming
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, SHOP
from tests.test_shutdown import POLICY, BotProcess, alert_texts, bot_env

LEASE = 3.0
RENEW = 2.0
RETRY = 0.5


def _holder(kube: KubeClient, namespace: str) -> str | None:
    return LeaseLock(kube, namespace=namespace, name="k8sbot-leader", identity="reader", timing=LeaseTiming()).holder()


@pytest.mark.kwok
def test_two_replicas_alert_once_and_the_follower_takes_over_when_the_leader_is_killed(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    app = deploy_checkout(kube, namespace)
    config = {
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "alert_settle_seconds": 1.0,
        "alert_resolve_seconds": 2.0,
        "leader_namespace": namespace,
        "leader_lease_seconds": LEASE,
        "leader_renew_seconds": RENEW,
        "leader_retry_seconds": RETRY,
        "shutdown_grace_seconds": 5.0,
    }
    env = {"cluster": cluster.kubeconfig}
    first = BotProcess(
        bot_env(slack, tmp_path, db=tmp_path / "first.db", kubeconfig=env["cluster"], config=config), tmp_path
    )
    second: BotProcess | None = None
    try:
        first_url = first.wait_url()
        leader = slack.wait_for(lambda: _holder(kube, namespace), timeout=30, what="a Lease holder")
        assert leader.endswith(f"_{first.process.pid}"), leader
        second = BotProcess(
            bot_env(slack, tmp_path, db=tmp_path / "second.db", kubeconfig=env["cluster"], config=config), tmp_path
        )
        second_url = second.wait_url()
        slack.wait_for(lambda: second.ready(second_url), timeout=30, what="the follower ready")
        assert first.ready(first_url)

        breakage = break_image(kube, app)
        slack.wait_for(lambda: any(breakage.after in t for t in alert_texts(slack, SHOP)), timeout=90, what="the alert")
        time.sleep(5)  # settle (1 s) + a sender round, several times over: a second replica would have posted
        assert len(alert_texts(slack, SHOP)) == 1, alert_texts(slack, SHOP)
        assert _holder(kube, namespace) == leader
        assert not any("alerting:" in line for line in second.lines), second.log

        first.process.send_signal(signal.SIGKILL)  # no release: the Lease must expire
        first.process.wait(10)
        killed = time.monotonic()
        slack.wait_for(
            lambda: (_holder(kube, namespace) or "").endswith(f"_{second.process.pid}"),
            timeout=LEASE + 10,
            what="the follower holding the Lease",
        )
        took = time.monotonic() - killed
        assert took >= LEASE - 1, f"taken over {took:.1f}s after the kill, before the Lease expired"
        # The new leader runs alerting now: its own database does not know the alert, so it posts it.
        slack.wait_for(lambda: len(alert_texts(slack, SHOP)) == 2, timeout=60, what="the new leader's alert")
        assert second.ready(second_url)
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.kwok
def test_a_leader_that_loses_the_lease_stops_and_exits_1(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    config = {
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "leader_namespace": namespace,
        "leader_lease_seconds": LEASE,
        "leader_renew_seconds": RENEW,
        "leader_retry_seconds": RETRY,
        "shutdown_grace_seconds": 5.0,
    }
    bot = BotProcess(
        bot_env(slack, tmp_path, db=tmp_path / "bot.db", kubeconfig=cluster.kubeconfig, config=config), tmp_path
    )
    try:
        bot.wait_url()
        slack.wait_for(
            lambda: (_holder(kube, namespace) or "").endswith(f"_{bot.process.pid}"), timeout=30, what="the bot leading"
        )
        # Another replica's write wins (a network partition, a paused process): the Lease is held by
        # someone else, renewed, and this one cannot renew any more.
        usurper = LeaseLock(
            kube,
            namespace=namespace,
            name="k8sbot-leader",
            identity="usurper_1",
            timing=LeaseTiming(duration=60, renew_deadline=RENEW, retry_period=RETRY),
        )
        lease = usurper.read()
        assert lease is not None
        lease["spec"]["holderIdentity"] = "usurper_1"
        lease["spec"]["leaseDurationSeconds"] = 60
        kube.request("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/k8sbot-leader", body=lease)
        code = bot.process.wait(RENEW + 15)
    finally:
        bot.stop()
    assert code == 1, bot.log
    assert "no longer leading" in bot.log and "watchers stopped" in bot.log
    assert _holder(kube, namespace) == "usurper_1"  # a leader that lost the Lease does not release it
