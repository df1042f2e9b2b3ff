"""The integrations of a bot serving several clusters, through its HTTP routes (`BotRunner`, its server
and wiring): an external change event names its cluster (`cluster`), or is refused with the choices;
it is stored with that cluster only, its id unique per cluster, and shown by `changes --cluster` of that
cluster only; `k8sbot record-change --cluster`. Alertmanager's alerts go to the inbox of the cluster
their `cluster` label names (the engine's side, with the real cluster: tests/test_alertmanager_cluster.py).

These need no cluster: the two clusters' kubeconfigs point at a closed port on 127.0.0.1 (nothing here
reads a cluster: the receivers write the store, and `changes` reads it).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alertmanager_payloads import alert, webhook
from test_integrations_changes import REPO, TOKEN, event, post, record

from bot.commands.context import Placement
from bot.commands.dispatch import execute
from bot.commands.routing import ClusterRouter
from bot.kube.client import UnconfiguredKubeClient
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.inbox import AlertInbox
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import running_bot
from tests.wiring_helpers import command_services, unanswered_kubeconfig

CLUSTERS = ("prod-us", "prod-eu")


@pytest.fixture
def bot(slack: SlackEmulator, tmp_path: Path) -> Iterator[BotRunner]:
    """The bot with two clusters configured, prod-us first (home), and the integrations served."""
    configs = [
        {"name": name, "kubeconfig": unanswered_kubeconfig(tmp_path / f"{name}.yaml", name)} for name in CLUSTERS
    ]
    with running_bot(
        slack,
        mode="http",
        db=str(tmp_path / "bot.db"),
        integration_token=TOKEN,
        kubeconfig=configs[0]["kubeconfig"],
        permissions=str(REPO / "permissions.yaml"),
        clusters=configs,
    ) as runner:
        yield runner


def stored_in(runner: BotRunner, cluster: str | None) -> list[dict[str, Any]]:
    """The changes the bot's database holds for `cluster` (None: every cluster), as `changes` JSON."""
    store = ChangeStore(Database(runner.settings.db), cluster=cluster)
    return [c.to_json() for c in store.query(since=datetime.now(UTC) - timedelta(days=40), limit=1000)]


def changes_answer(runner: BotRunner, text: str) -> dict[str, Any]:
    """`changes ...` through the command path's cluster routing, over the bot's database (each cluster's
    services with that cluster's store, as the wiring builds them; no cluster is read by `changes`)."""
    database = Database(runner.settings.db)
    router = ClusterRouter(
        {
            name: command_services(
                UnconfiguredKubeClient("not read by changes"),
                database,
                changes=ChangeStore(database, cluster=name),
                placement=Placement(name, clusters=CLUSTERS),
            )
            for name in CLUSTERS
        }
    )
    return dict(execute(router, text=text, slack_user=None).data)


def test_an_event_naming_a_cluster_is_stored_and_shown_there_only(bot: BotRunner) -> None:
    status, answer = post(bot.url, event(cluster="prod-eu"))
    assert status == 200 and answer["duplicate"] is False, answer
    assert answer["change"]["cluster"] == "prod-eu"
    assert [c["cluster"] for c in stored_in(bot, None)] == ["prod-eu"]
    assert stored_in(bot, "prod-us") == []

    eu = changes_answer(bot, "changes -n shop --since 1h --cluster prod-eu")
    assert eu["cluster"] == "prod-eu"
    assert [(c["source"], c["cluster"], c["summary"]) for c in eu["changes"]] == [("ci", "prod-eu", "deploy 1f2e3d")]
    us = changes_answer(bot, "changes -n shop --since 1h --cluster prod-us")
    assert us["cluster"] == "prod-us" and us["changes"] == []


def test_without_a_cluster_the_bot_asks_which_and_stores_nothing(bot: BotRunner) -> None:
    status, answer = post(bot.url, event())
    assert status == 400 and answer["ok"] is False
    assert answer["error"] == "cluster: which cluster? this bot serves prod-us, prod-eu: name one in `cluster`"
    assert answer["problems"] == [{"field": "cluster", "problem": answer["error"].removeprefix("cluster: ")}]
    assert stored_in(bot, None) == []


def test_a_cluster_the_bot_does_not_serve_is_refused_with_the_choices(bot: BotRunner) -> None:
    status, answer = post(bot.url, event(cluster="staging"))
    assert status == 400
    assert answer["error"] == "cluster: 'staging' is not a cluster this bot serves (one of: prod-us, prod-eu)"
    assert stored_in(bot, None) == []


def test_an_id_is_unique_per_cluster(bot: BotRunner) -> None:
    us = post(bot.url, event(cluster="prod-us"))
    eu = post(bot.url, event(cluster="prod-eu", summary="the same id in the other cluster"))
    assert us[0] == eu[0] == 200 and us[1]["duplicate"] is False and eu[1]["duplicate"] is False
    again = post(bot.url, event(cluster="prod-eu", summary="a retry"))
    assert again[1]["duplicate"] is True and again[1]["change"]["id"] == eu[1]["change"]["id"]
    assert again[1]["change"]["summary"] == "the same id in the other cluster"
    assert sorted((c["cluster"], c["summary"]) for c in stored_in(bot, None)) == [
        ("prod-eu", "the same id in the other cluster"),
        ("prod-us", "deploy 1f2e3d"),
    ]


def test_record_change_names_the_cluster_and_without_it_is_refused_with_the_choices(bot: BotRunner) -> None:
    args = ("--source", "ci", "--target", "deploy/checkout", "-n", "shop", "--summary", "deploy 9f8e7d")
    named = record(*args, "--cluster", "prod-eu", "--id", "deploy-9f8e7d", url=bot.url)
    assert named.returncode == 0, named.stderr
    assert "in prod-eu" in named.stdout
    unnamed = record(*args, url=bot.url)
    assert unnamed.returncode == 1
    assert "which cluster? this bot serves prod-us, prod-eu" in unnamed.stderr
    wrong = record(*args, "--cluster", "Prod EU", url=bot.url)
    assert wrong.returncode == 1 and "cluster:" in wrong.stderr
    assert [(c["cluster"], c["summary"]) for c in stored_in(bot, None)] == [("prod-eu", "deploy 9f8e7d")]


def test_alertmanager_alerts_are_stored_in_the_inbox_of_the_cluster_their_label_names(bot: BotRunner) -> None:
    labels = {"alertname": "HighLatency", "namespace": "shop", "deployment": "checkout"}
    payload = webhook(
        alert({**labels, "cluster": "prod-eu"}),
        alert({**labels, "cluster": "prod-us"}),
        alert(labels),
        alert({**labels, "cluster": "staging"}),
    )
    request = urllib.request.Request(
        bot.url + "/integrations/alertmanager",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert (response.status, json.loads(response.read())) == (200, {"ok": True, "received": 4, "new": 4})
    database = Database(bot.settings.db)
    eu = AlertInbox(database, cluster="prod-eu").pending()
    us = AlertInbox(database, cluster="prod-us").pending()
    assert [r.alert.labels.get("cluster") for r in eu] == ["prod-eu"]
    assert sorted(r.alert.labels.get("cluster", "-") for r in us) == ["-", "prod-us", "staging"]
