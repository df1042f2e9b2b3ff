"""The daily digest of a bot serving several clusters: one message per team channel, grouped by
cluster; a team's namespaces per cluster; the default channel's share per cluster; the Slack layout.

The content tests record changes straight into the store (as tests/test_digest.py does); the last
test goes through the real wiring (`build_core`, `build_background`'s DigestSender) and the Slack
emulator. None needs a cluster: the kubeconfigs point at a closed port and nothing asks the API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.digest.content import AlertLine, Digest, DigestTeam, build_digest, latest_period
from bot.model import Change, ChangeKind, FieldChange, ObjectRef
from bot.permissions.policy import parse_policy
from bot.settings import Settings
from bot.slack.blocks import MAX_BLOCKS
from bot.slack.client import Poster, make_web_client
from bot.slack.digest import render_digest
from bot.store.changes import ChangeStore, Recorded
from bot.store.database import Database
from bot.store.events import EventStore, WarningEvent
from k8sbot.wiring import build_background, build_core, digest_teams
from slack_emulator import SlackEmulator, validate_blocks
from tests.slack_harness import OPS, SHOP, bot_settings
from tests.wiring_helpers import VERBS, unanswered_kubeconfig

TZ = "Europe/Berlin"
MONDAY_0900 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)  # 09:00 CEST
PERIOD = latest_period("0 9 * * mon-fri", TZ, MONDAY_0900 + timedelta(minutes=1))
EU, US = "prod-eu", "prod-us"
AT = MONDAY_0900 - timedelta(hours=5)


class Stores:
    """One database; each cluster's scoped stores write, the None-scoped ones read (as the bot's digest)."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = Database(tmp_path / "digest.db")
        self.changes = ChangeStore(self.db, cluster=None)
        self.events = EventStore(self.db, cluster=None)

    def change(
        self, cluster: str, namespace: str, name: str, summary: str, kind: ChangeKind = ChangeKind.IMAGE
    ) -> None:
        change = Change(ObjectRef("Deployment", namespace, name), AT, kind, summary, fields=(FieldChange("x", 1, 2),))
        uid = f"{cluster}/{namespace}/{name}/{summary}"
        ChangeStore(self.db, cluster=cluster).commit(changes=[Recorded(change, uid=uid, resource_version="1")])

    def node_event(self, cluster: str, node: str, message: str) -> None:
        event = WarningEvent(f"{cluster}-{node}", ObjectRef("Node", None, node), "NodeNotReady", message, 1, AT, AT)
        EventStore(self.db, cluster=cluster).record(event)

    def digest(
        self, team: DigestTeam, *, clusters: tuple[str, ...] = (EU, US), alerts: list[AlertLine] | None = None
    ) -> Digest:
        assert PERIOD is not None
        provider = (lambda start, end: alerts) if alerts is not None else None
        return build_digest(
            team, period=PERIOD, changes=self.changes, events=self.events, alerts=provider, clusters=clusters
        )


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    return Stores(tmp_path)


def part_texts(digest: Digest) -> dict[str, str]:
    """Each cluster's part of a digest, as plain text."""
    return {
        part.cluster: "\n".join(line for section in part.sections for line in (section.title, *section.lines))
        for part in digest.clusters
    }


def test_the_same_namespace_in_two_clusters_shows_under_each_cluster(stores: Stores) -> None:
    stores.change(EU, "shop", "checkout", "image web: app:1 → app:2")
    stores.change(US, "shop", "checkout", "image web: app:7 → app:8")
    stores.change(US, "shop", "cart", "scaled 2 → 5 replicas", ChangeKind.SCALE)
    digest = stores.digest(DigestTeam("C0SHOP", ("shop",)))
    assert digest.sections == ()  # grouped: the sections are the clusters'
    assert [part.cluster for part in digest.clusters] == [EU, US]  # the configured order
    parts = part_texts(digest)
    assert "app:1 → app:2" in parts[EU] and "app:7" not in parts[EU] and "cart" not in parts[EU]
    assert "app:7 → app:8" in parts[US] and "Scale changes (1)" in parts[US] and "app:1 →" not in parts[US]
    assert "Deploys (1)" in parts[EU] and "Deploys (1)" in parts[US]  # counted per cluster, not summed
    text = digest.text()
    assert text.index("== Cluster prod-eu ==") < text.index("app:1 → app:2") < text.index("== Cluster prod-us ==")
    assert text.index("== Cluster prod-us ==") < text.index("app:7 → app:8")
    assert "--cluster <cluster>" in digest.footer and "prod-eu: shop; prod-us: shop" in digest.footer


def test_a_team_scoped_to_one_cluster_gets_nothing_from_the_other(stores: Stores) -> None:
    stores.change(EU, "shop", "checkout", "image web: app:1 → app:2")
    stores.change(US, "shop", "checkout", "image web: app:7 → app:8")
    stores.node_event(US, "us-node-1", "us kubelet stopped posting")
    stores.node_event(EU, "eu-node-1", "eu kubelet stopped posting")
    team = DigestTeam("C0SHOP", per_cluster=((EU, ("shop",)),))
    digest = stores.digest(team, alerts=[AlertLine("shop", "checkout OOMKilled (firing)", cluster=US)])
    assert [part.cluster for part in digest.clusters] == [EU]
    text = digest.text()
    assert "app:1 → app:2" in text and "eu kubelet" in text
    assert "app:7" not in text and "us-node-1" not in text and "OOMKilled" not in text and "prod-us" not in text


def test_a_teams_namespaces_may_differ_per_cluster(stores: Stores) -> None:
    stores.change(EU, "shop", "checkout", "image eu-shop: 1 → 2")
    stores.change(EU, "shop-us", "checkout", "image eu-shop-us: 1 → 2")
    stores.change(US, "shop", "checkout", "image us-shop: 1 → 2")
    stores.change(US, "shop-us", "checkout", "image us-shop-us: 1 → 2")
    team = DigestTeam("C0SHOP", per_cluster=((EU, ("shop",)), (US, ("shop-us",))))
    parts = part_texts(stores.digest(team))
    assert "eu-shop:" in parts[EU] and "eu-shop-us" not in parts[EU]
    assert "us-shop-us" in parts[US] and "us-shop:" not in parts[US]


def test_alerts_and_node_events_go_under_their_cluster(stores: Stores) -> None:
    stores.node_event(EU, "eu-node-1", "eu kubelet stopped posting")
    stores.node_event(US, "us-node-1", "us kubelet stopped posting")
    alerts = [
        AlertLine("shop", "checkout CrashLoopBackOff (firing)", cluster=EU),
        AlertLine("shop", "checkout OOMKilled (resolved)", cluster=US),
    ]
    parts = part_texts(stores.digest(DigestTeam("C0SHOP", ("shop",)), alerts=alerts))
    assert "eu-node-1" in parts[EU] and "CrashLoopBackOff" in parts[EU]
    assert "us-node" not in parts[EU] and "OOMKilled" not in parts[EU]
    assert "us-node-1" in parts[US] and "OOMKilled" in parts[US] and "CrashLoop" not in parts[US]


def test_a_quiet_cluster_is_named_with_nothing_to_report(stores: Stores) -> None:
    stores.change(EU, "shop", "checkout", "image web: app:1 → app:2")
    digest = stores.digest(DigestTeam("C0SHOP", ("shop",)))
    assert [(p.cluster, bool(p.sections)) for p in digest.clusters] == [(EU, True), (US, False)]
    assert "== Cluster prod-us: nothing to report ==" in digest.text()
    assert not digest.title.endswith("config changes")  # not empty: one cluster had changes
    quiet = stores.digest(DigestTeam("C0OPS", ("ops",)))
    assert quiet.empty and quiet.title.endswith(": no deploys, rollbacks, scale or config changes")


def test_with_one_cluster_the_digest_is_not_grouped_and_other_clusters_rows_stay_out(stores: Stores) -> None:
    stores.change(EU, "shop", "checkout", "image web: app:1 → app:2")
    stores.change(US, "shop", "checkout", "image web: app:7 → app:8")  # e.g. a cluster no longer configured
    digest = stores.digest(DigestTeam("C0SHOP", ("shop",)), clusters=(EU,))
    assert digest.clusters == () and digest.sections
    text = digest.text()
    assert "app:1 → app:2" in text and "app:7" not in text and "Cluster" not in text and "==" not in text
    assert digest.footer == "More: /k8s changes -n <namespace> --since 24h  (shop)"


POLICY = """
roles:
  viewer: [why, status, logs, describe, changes, can-i]
teams:
  shop:
    channel: C0SHOP
    namespaces: {prod-eu: [shop], prod-us: [shop-us]}
    role: viewer
  payments:
    channel: C0PAY
    clusters: [prod-eu]
    namespaces: [payments]
    role: viewer
  nochannel:
    namespaces: [ops]
    role: viewer
  elsewhere:
    channel: C0ELSE
    clusters: [staging]
    namespaces: [shop]
    role: viewer
defaults: {role: null}
"""


def test_teams_from_permissions_yaml_carry_their_namespaces_per_cluster_and_the_default_channel_the_rest(
    stores: Stores,
) -> None:
    settings = Settings(clusters=[{"name": EU}, {"name": US, "kubeconfig": "/k"}], default_channel="C0DEFAULT")
    teams = {t.channel: t for t in digest_teams(parse_policy(POLICY, verbs=VERBS.names()), settings)}
    assert set(teams) == {"C0SHOP", "C0PAY", "C0DEFAULT"}  # no channel, or no scope in these clusters: no digest
    assert teams["C0SHOP"].per_cluster == ((EU, ("shop",)), (US, ("shop-us",)))
    assert teams["C0PAY"].per_cluster == ((EU, ("payments",)),)
    for cluster, namespace in ((EU, "shop"), (EU, "payments"), (US, "shop-us"), (US, "ops"), (EU, "ops")):
        stores.change(cluster, namespace, "web", f"image {cluster}-{namespace}: 1 → 2")
    stores.change(US, "payments", "web", "image prod-us-payments: 1 → 2")
    stores.change(US, "shop", "web", "image prod-us-shop: 1 → 2")
    parts = part_texts(stores.digest(teams["C0DEFAULT"]))
    # what no team's channel claims, cluster by cluster: payments is claimed in prod-eu only, shop in prod-eu only
    assert "prod-eu-ops" in parts[EU] and "prod-eu-shop" not in parts[EU] and "prod-eu-payments" not in parts[EU]
    assert "prod-us-ops" in parts[US] and "prod-us-payments" in parts[US] and "prod-us-shop:" in parts[US]
    assert "prod-us-shop-us" not in parts[US]
    assert "namespaces no team claims" in stores.digest(teams["C0DEFAULT"]).footer


def test_with_one_cluster_and_no_teams_the_default_channel_gets_everything() -> None:
    settings = Settings(cluster_name="staging", default_channel="C0DEFAULT")
    (team,) = digest_teams(None, settings)
    assert (team.channel, team.globs_in("staging"), team.claimed_in("staging")) == ("C0DEFAULT", ("*",), ())


# -- the Slack layout ---------------------------------------------------------------------------------


def valid(blocks: list[dict[str, object]]) -> bool:
    """What Slack would accept, and nothing the emulator would lint."""
    checked = validate_blocks(blocks)
    assert checked.errors == [] and checked.lint == []
    return True


def test_each_cluster_has_a_header_and_many_clusters_still_fit_in_one_message(stores: Stores) -> None:
    names = tuple(f"c{i:02d}" for i in range(30))
    for name in names:
        for namespace in ("shop", "ops"):
            stores.change(name, namespace, "web", f"image {name}: 1 → 2")
            stores.change(name, namespace, "web", f"scaled {name}", ChangeKind.SCALE)
    few = render_digest(stores.digest(DigestTeam("C0SHOP"), clusters=names[:2])).blocks
    assert [b["text"]["text"] for b in few if b["type"] == "header"] == ["Cluster c00", "Cluster c01"]
    assert valid(few)
    many = render_digest(stores.digest(DigestTeam("C0SHOP"), clusters=names)).blocks
    assert len(many) <= MAX_BLOCKS and valid(many)
    shown = json.dumps(many)
    assert "*Cluster c00*" in shown and "*Cluster c29*" in shown  # one block per cluster: all 30 are there
    assert "scaled c29" in shown


def test_more_clusters_than_blocks_are_counted(stores: Stores) -> None:
    names = tuple(f"c{i:02d}" for i in range(60))
    stores.change("c00", "shop", "web", "image: 1 → 2")
    blocks = render_digest(stores.digest(DigestTeam("C0SHOP"), clusters=names)).blocks
    assert len(blocks) == MAX_BLOCKS and valid(blocks)
    assert "… and 13 more clusters" in json.dumps(blocks, ensure_ascii=False)


# -- through the wiring and the Slack emulator ---------------------------------------------------------

WIRED_POLICY = """
roles:
  viewer: [why, status, logs, describe, changes, can-i]
teams:
  shop:
    channel: {shop}
    namespaces: {{prod-eu: [shop], prod-us: [shop, shop-us]}}
    role: viewer
  ops:
    channel: {ops}
    clusters: [prod-us]
    namespaces: [ops]
    role: viewer
defaults: {{role: null}}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_one_message_per_team_channel_with_each_clusters_section(slack: SlackEmulator, tmp_path: Path) -> None:
    policy = tmp_path / "permissions.yaml"
    policy.write_text(WIRED_POLICY.format(shop=SHOP, ops=OPS))
    settings = bot_settings(
        slack,
        db=str(tmp_path / "bot.db"),
        permissions=str(policy),
        clusters=[
            {"name": EU, "kubeconfig": unanswered_kubeconfig(tmp_path / "eu.yaml", "eu")},
            {"name": US, "kubeconfig": unanswered_kubeconfig(tmp_path / "us.yaml", "us")},
        ],
        digest_cron="0 9 * * mon-fri",
        timezone=TZ,
    )
    clock = Clock(AT)
    client = make_web_client(token=slack.bot_token, base_url=slack.api_url)
    core = build_core(settings, permissions=True, slack=client, clock=clock)
    background = build_background(core, Poster(client))
    for cluster, namespace, image in (
        (EU, "shop", "eu:2"),
        (US, "shop", "us:2"),
        (US, "shop-us", "usx:2"),
        (US, "ops", "ops:2"),
    ):
        change = Change(ObjectRef("Deployment", namespace, "web"), AT, ChangeKind.IMAGE, f"image web: 1 → {image}")
        core.cluster(cluster).changes.commit(
            changes=[Recorded(change, uid=f"{cluster}{namespace}", resource_version="1")]
        )
    clock.now = MONDAY_0900 + timedelta(minutes=1)
    assert sorted(d.channel for d in background.digest.send_due()) == sorted([SHOP, OPS])
    (shop,) = slack.messages(SHOP)  # one message for both clusters
    headers = [b["text"]["text"] for b in shop["blocks"] if b["type"] == "header"]
    assert headers == ["Cluster prod-eu", "Cluster prod-us"]
    shown = [b["text"]["text"] for b in shop["blocks"] if b["type"] in ("header", "section")]
    eu, us = shown.index("Cluster prod-eu"), shown.index("Cluster prod-us")
    assert any("eu:2" in t for t in shown[eu:us]) and not any("us:2" in t or "usx:2" in t for t in shown[eu:us])
    assert any("us:2" in t for t in shown[us:]) and any("usx:2" in t for t in shown[us:])
    assert "--cluster" in json.dumps(shop["blocks"]) and "ops:2" not in json.dumps(shop)
    (ops,) = slack.messages(OPS)
    assert [b["text"]["text"] for b in ops["blocks"] if b["type"] == "header"] == ["Cluster prod-us"]
    assert "ops:2" in json.dumps(ops) and "eu:2" not in json.dumps(ops)
    assert slack.lints() == []
