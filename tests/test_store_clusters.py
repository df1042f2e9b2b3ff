"""One store, several clusters (issue 14): every change, warning event, alert, silence, audit row and
Alertmanager inbox row names its cluster; a store scoped to a cluster sees only that cluster's rows and
stamps its own on what it writes; one scoped to None reads every cluster and writes nothing; a
database written by the single-cluster bot migrates, its rows given `Database(legacy_cluster=...)`.

On a real SQLite file, no Kubernetes cluster needed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from bot.changes.recording import ChangeRecorder
from bot.commands.dispatch import execute
from bot.kube.client import KubeClient
from bot.model import DEFAULT_CLUSTER, Category, Change, ChangeKind, Command, Decision, ObjectRef, ObjectState, Subject
from bot.settings import Settings
from bot.store import alerts as alerts_module
from bot.store import audit as audit_module
from bot.store import changes as changes_module
from bot.store import events as events_module
from bot.store import inbox as inbox_module
from bot.store.alerts import AlertStore
from bot.store.audit import AlreadyClaimed, AuditLog
from bot.store.changes import ChangeStore, Recorded
from bot.store.database import Database
from bot.store.events import EventStore, WarningEvent
from bot.store.inbox import AlertInbox, ReceivedAlert
from k8sbot.wiring import build_core

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HOUR_AGO = NOW - timedelta(hours=1)
OLD_AT = NOW - timedelta(minutes=30)
"""When the single-cluster bot wrote the rows of the migration test."""
CHECKOUT = ObjectRef("Deployment", "shop", "checkout")
ALICE = Subject(slack_user="U0ALICE", usergroups=frozenset({"S0SHOP"}), k8s_user="alice")
ROLLBACK = Command("rollback", "checkout", "shop", (("to-revision", "1"),))


def clock() -> datetime:
    return NOW


class Stores:
    """The five cluster-scoped stores of one cluster (or of every cluster: None) on one Database."""

    def __init__(self, database: Database, cluster: str | None) -> None:
        self.changes = ChangeStore(database, clock=clock, cluster=cluster)
        self.events = EventStore(database, clock=clock, cluster=cluster)
        self.alerts = AlertStore(database, clock=clock, cluster=cluster)
        self.audit = AuditLog(database, clock=clock, cluster=cluster)
        self.inbox = AlertInbox(database, clock=clock, cluster=cluster)


def change(summary: str = "image checkout: app:1 → app:2", ref: ObjectRef = CHECKOUT) -> Change:
    return Change(ref=ref, at=NOW - timedelta(minutes=5), kind=ChangeKind.IMAGE, summary=summary, actor="dave")


def state(body: dict[str, Any], ref: ObjectRef = CHECKOUT, rv: str = "10") -> ObjectState:
    return ObjectState(ref=ref, uid="uid-checkout", resource_version=rv, body=body, revision=3)


def warning(uid: str = "ev-1", message: str = "Back-off restarting failed container") -> WarningEvent:
    return WarningEvent(
        uid=uid,
        involved=ObjectRef("Pod", "shop", "checkout-1"),
        reason="BackOff",
        message=message,
        count=3,
        first_at=NOW - timedelta(minutes=10),
        last_at=NOW - timedelta(minutes=2),
    )


def received(fingerprint: str = "f00d", status: str = "firing") -> ReceivedAlert:
    return ReceivedAlert(
        fingerprint=fingerprint,
        status=status,
        starts_at=NOW - timedelta(minutes=3),
        ends_at=None,
        labels={"alertname": "HighLatency", "namespace": "shop"},
        annotations={"summary": "p99 above 2s"},
        generator_url="http://prometheus.local/graph",
        group_key="{}:{}",
        external_url="http://alertmanager.local",
    )


def fire(store: AlertStore, title: str, workload: ObjectRef = CHECKOUT) -> int:
    with store.database.transaction() as db:
        return store.insert(
            db,
            workload=workload,
            category=Category.CRASH_LOOP,
            title=title,
            since=NOW - timedelta(minutes=4),
            channel="C0SHOP",
            team="shop",
            route_reason="team shop owns namespace shop",
            details={"title": title},
        )


def write_everything(stores: Stores, tag: str) -> dict[str, int]:
    """One of each row in the stores' cluster, each saying `tag`; returns the ids."""
    (stored,) = stores.changes.commit(
        changes=[Recorded(change(f"image checkout: {tag}"), uid="uid-checkout", resource_version="11")],
        states=[state({"image": tag})],
        checkpoint=("Deployment", f"rv-{tag}"),
    )
    stores.events.record(warning(message=f"Back-off in {tag}"))
    alert_id = fire(stores.alerts, f"checkout is crash-looping in {tag}")
    silence_id = stores.alerts.silence(CHECKOUT, until=NOW + timedelta(hours=1), by=f"U0{tag.upper()}")
    entry = stores.audit.record(
        subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=Decision(False, tag), outcome="denied"
    )
    assert stores.inbox.add([received()]) == 1
    with stores.inbox.database.transaction() as db:
        stores.inbox.link(db, "f00d", alert_id)
    assert stored.id is not None
    return {"change": stored.id, "alert": alert_id, "silence": silence_id, "audit": entry.id}


# -- two clusters on one database -----------------------------------------------------------------


def test_two_scoped_stores_never_see_each_others_rows(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    eu, us = Stores(database, "prod-eu"), Stores(database, "prod-us")
    ids = {"prod-eu": write_everything(eu, "prod-eu"), "prod-us": write_everything(us, "prod-us")}

    for name, mine, other in (("prod-eu", eu, us), ("prod-us", us, eu)):
        theirs = ids["prod-us" if name == "prod-eu" else "prod-eu"]
        # changes: history, one change by id, an object's changes, counts, state, checkpoint, names
        (seen,) = mine.changes.query(since=HOUR_AGO)
        assert seen.summary == f"image checkout: {name}" and seen.cluster == name
        assert mine.changes.get(theirs["change"]) is None
        assert mine.changes.get(ids[name]["change"]) == seen
        assert [c.summary for c in mine.changes.changes_for([CHECKOUT], HOUR_AGO)] == [seen.summary]
        assert mine.changes.count(since=HOUR_AGO) == 1 == mine.changes.count(since=HOUR_AGO, namespace="shop")
        found = mine.changes.state(CHECKOUT)
        assert found is not None and found.body == {"image": name}
        assert mine.changes.checkpoint("Deployment") == f"rv-{name}"
        assert mine.changes.states("Deployment") == [CHECKOUT]
        assert mine.changes.known_names(namespace="shop") == [CHECKOUT]
        # warning events
        (event,) = mine.events.since(HOUR_AGO)
        assert event.message == f"Back-off in {name}" and event.cluster == name
        # alerts and silences
        (alert,) = mine.alerts.open_alerts()
        assert alert.title == f"checkout is crash-looping in {name}" and alert.cluster == name
        assert mine.alerts.get(theirs["alert"]) is None
        assert mine.alerts.since(HOUR_AGO) == [alert] == mine.alerts.since(HOUR_AGO, namespace="shop")
        assert mine.alerts.recent_by_namespace() == {"shop": [alert]}
        silence = mine.alerts.silenced(CHECKOUT, Category.CRASH_LOOP)
        assert silence is not None and silence.id == ids[name]["silence"] and silence.cluster == name
        assert silence.created_by == f"U0{name.upper()}"
        # audit
        (entry,) = mine.audit.since(None)
        assert entry.reason == name and entry.cluster == name and entry.to_json()["cluster"] == name
        assert mine.audit.get(theirs["audit"]) is None and mine.audit.count() == 1
        # the Alertmanager inbox and its links
        (row,) = mine.inbox.pending()
        assert row.cluster == name
        assert mine.inbox.count() == 1 == mine.inbox.count(pending=True)
        assert mine.inbox.linked("f00d") == ids[name]["alert"]
        assert other.inbox.linked("f00d") == theirs["alert"]


def test_writes_by_id_do_not_reach_another_clusters_rows(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    eu, us = Stores(database, "prod-eu"), Stores(database, "prod-us")
    eu_alert = fire(eu.alerts, "eu")
    us_alert = fire(us.alerts, "us")
    with database.transaction() as db:
        us.alerts.set_state(db, eu_alert, state="resolved", at=NOW)  # another cluster's id: nothing happens
        us.alerts.set_details(db, eu_alert, {"title": "overwritten"})
    us.alerts.set_ts(eu_alert, channel="C0OTHER", ts="1.2")
    record = eu.alerts.get(eu_alert)
    assert record is not None and record.state == "firing" and record.details == {"title": "eu"} and record.ts is None

    eu.inbox.add([received()])
    (row,) = eu.inbox.pending()
    with database.transaction() as db:
        us.inbox.processed(db, [row.id])
    assert eu.inbox.pending() == [row]

    entry = eu.audit.begin(
        subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=Decision(True, "ok"), action_id="abcdef12"
    )
    us.audit.finish(entry, outcome="done", message="not ours")
    found = eu.audit.get(entry.id)
    assert found is not None and found.outcome == "running"
    assert us.alerts.get(us_alert) is not None and us.alerts.get(eu_alert) is None


def test_the_same_alert_key_in_two_clusters_is_two_alerts(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    eu, us = AlertStore(database, clock=clock, cluster="prod-eu"), AlertStore(database, clock=clock, cluster="prod-us")
    eu_id, us_id = fire(eu, "checkout (eu)"), fire(us, "checkout (us)")
    assert eu_id != us_id
    eu_open, us_open = eu.open_for(CHECKOUT, Category.CRASH_LOOP), us.open_for(CHECKOUT, Category.CRASH_LOOP)
    assert eu_open is not None and eu_open.id == eu_id and eu_open.cluster == "prod-eu"
    assert us_open is not None and us_open.id == us_id and us_open.cluster == "prod-us"
    assert [a.id for a in eu.open_all_for(CHECKOUT)] == [eu_id]

    with database.transaction() as db:  # resolving it in one cluster leaves the other firing
        eu.set_state(db, eu_id, state="resolved", at=NOW)
    assert eu.open_for(CHECKOUT, Category.CRASH_LOOP) is None
    assert us.open_for(CHECKOUT, Category.CRASH_LOOP) == us_open

    eu.silence(CHECKOUT, until=NOW + timedelta(hours=2), category=Category.CRASH_LOOP, by="U0EU")
    assert eu.silenced(CHECKOUT, Category.CRASH_LOOP) is not None
    assert us.silenced(CHECKOUT, Category.CRASH_LOOP) is None  # muted in prod-eu, still paging in prod-us


def test_the_same_event_ids_in_two_clusters_are_two_changes(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    eu = ChangeStore(database, clock=clock, cluster="prod-eu")
    us = ChangeStore(database, clock=clock, cluster="prod-us")
    event = Recorded(change(), uid="uid-checkout", resource_version="11")
    assert len(eu.commit(changes=[event])) == 1
    assert len(us.commit(changes=[event])) == 1  # the same uid and resourceVersion, another cluster
    assert eu.commit(changes=[event]) == []  # a replay in one cluster still records nothing
    deploy = replace(change("deploy 42"), source="ci", kind=ChangeKind.EXTERNAL)
    eu_stored, eu_duplicate = eu.record_external(deploy, event_id="ci-42")
    us_stored, us_duplicate = us.record_external(deploy, event_id="ci-42")
    assert not eu_duplicate and not us_duplicate and eu_stored.id != us_stored.id
    assert (eu_stored.cluster, us_stored.cluster) == ("prod-eu", "prod-us")
    assert eu.record_external(deploy, event_id="ci-42") == (eu_stored, True)
    assert [c.summary for c in us.query(since=HOUR_AGO)] == ["deploy 42", "image checkout: app:1 → app:2"]


def test_recorders_of_two_clusters_keep_their_own_baselines(tmp_path: Path) -> None:
    """The same ConfigMap in two clusters: each recorder compares with its own cluster's last-seen
    state, so listing prod-us after prod-eu records no change (a shared state would record one)."""

    def configmap(value: str, rv: str, uid: str) -> dict[str, Any]:
        meta = {"name": "cfg", "namespace": "shop", "uid": uid, "resourceVersion": rv}
        return {"kind": "ConfigMap", "metadata": meta, "data": {"level": value}}

    database = Database(tmp_path / "bot.db")
    eu, us = (
        ChangeRecorder(
            ChangeStore(database, clock=clock, cluster=name), EventStore(database, clock=clock, cluster=name)
        )
        for name in ("prod-eu", "prod-us")
    )
    assert eu.record_listing("ConfigMap", iter([([configmap("debug", "5", "uid-eu")], "5")])) == ([], "5")
    assert us.record_listing("ConfigMap", iter([([configmap("info", "7", "uid-us")], "7")])) == ([], "7")
    (edited,) = eu.record_event("ConfigMap", "MODIFIED", configmap("warn", "6", "uid-eu"))
    assert edited.cluster == "prod-eu" and edited.kind is ChangeKind.CONFIG
    assert us.changes.query(since=HOUR_AGO) == []
    us_state = us.changes.state(ObjectRef("ConfigMap", "shop", "cfg"))
    assert us_state is not None and us_state.body["data"] == {"level": "info"} and us_state.uid == "uid-us"
    assert us.record_event("ConfigMap", "MODIFIED", configmap("info", "8", "uid-us")) == []  # unchanged there


def test_a_store_of_every_cluster_reads_both_and_refuses_writes(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    eu, us = Stores(database, "prod-eu"), Stores(database, "prod-us")
    ids = {"prod-eu": write_everything(eu, "prod-eu"), "prod-us": write_everything(us, "prod-us")}
    every = Stores(database, None)

    assert sorted(c.cluster for c in every.changes.query(since=HOUR_AGO)) == ["prod-eu", "prod-us"]
    by_id = every.changes.get(ids["prod-us"]["change"])
    assert by_id is not None and by_id.cluster == "prod-us" and by_id.to_json()["cluster"] == "prod-us"
    assert every.changes.count(since=HOUR_AGO) == 2
    assert every.changes.known_names(namespace="shop") == [CHECKOUT]
    assert sorted(e.cluster for e in every.events.since(HOUR_AGO)) == ["prod-eu", "prod-us"]
    assert sorted(a.cluster for a in every.alerts.open_alerts()) == ["prod-eu", "prod-us"]
    assert len(every.alerts.open_all_for(CHECKOUT)) == 2
    assert [a.cluster for a in every.alerts.recent_by_namespace()["shop"]] == ["prod-us", "prod-eu"]
    silence = every.alerts.silenced(CHECKOUT, Category.CRASH_LOOP)
    assert silence is not None and silence.cluster in {"prod-eu", "prod-us"}
    assert [e.cluster for e in every.audit.since(None)] == ["prod-eu", "prod-us"] and every.audit.count() == 2
    assert sorted(r.cluster for r in every.inbox.pending()) == ["prod-eu", "prod-us"] and every.inbox.count() == 2

    refused: list[Callable[[], object]] = [
        lambda: every.changes.commit(changes=[Recorded(change(), uid="u", resource_version="1")]),
        lambda: every.changes.commit(states=[state({})]),
        lambda: every.changes.set_checkpoint("Deployment", "1"),
        lambda: every.changes.record_external(change(), event_id="ci-1"),
        every.changes.prune,
        # an object's last-seen state and a watch checkpoint exist per cluster only
        lambda: every.changes.state(CHECKOUT),
        lambda: every.changes.states("Deployment"),
        lambda: every.changes.checkpoint("Deployment"),
        lambda: every.events.record(warning("ev-9")),
        every.events.prune,
        lambda: fire(every.alerts, "nowhere"),
        lambda: every.alerts.set_ts(ids["prod-eu"]["alert"], channel="C0X", ts="1.1"),
        lambda: every.alerts.silence(CHECKOUT, until=NOW + timedelta(hours=1)),
        lambda: every.audit.record(
            subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(False, "no"), outcome="denied"
        ),
        lambda: every.audit.begin(
            subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(True, "ok"), action_id="abcdef99"
        ),
        lambda: every.inbox.add([received("beef")]),
        every.inbox.prune,
    ]
    before = _counts(database)
    for write in refused:
        with pytest.raises(ValueError, match="cluster"):
            write()
    assert _counts(database) == before


def test_an_action_id_is_claimed_once_across_clusters(tmp_path: Path) -> None:
    """An action id is the one-time token of one confirmation: claimed in prod-eu, the same id in
    prod-us is refused as already claimed (the prod-eu row answers), never run a second time."""
    database = Database(tmp_path / "bot.db")
    eu = AuditLog(database, clock=clock, cluster="prod-eu")
    us = AuditLog(database, clock=clock, cluster="prod-us")
    claimed = eu.begin(
        subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=Decision(True, "ok"), action_id="abcdef12"
    )
    with pytest.raises(AlreadyClaimed) as repeat:
        us.begin(subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=Decision(True, "ok"), action_id="abcdef12")
    assert repeat.value.entry.id == claimed.id and repeat.value.entry.cluster == "prod-eu"
    assert us.count() == 0 and us.for_action("abcdef12") is None


def test_the_changes_verb_json_rows_carry_the_cluster(tmp_path: Path) -> None:
    """`changes --json` through the command path of a bot configured for cluster prod-eu."""
    settings = Settings(db=str(tmp_path / "bot.db"), cluster_name="prod-eu")
    # the `changes` verb without a target reads only the database: a client that is never used
    core = build_core(settings, permissions=False, kube=KubeClient(k8s_client.Configuration()))
    assert core.changes.cluster == "prod-eu" and core.alerts.cluster == "prod-eu" and core.audit.cluster == "prod-eu"
    assert core.events.cluster == "prod-eu" and core.inbox.cluster == "prod-eu"
    core.changes.commit(changes=[Recorded(replace(change(), at=datetime.now(UTC)), uid="u1", resource_version="1")])
    answer = execute(core.commands, text="changes -n shop --since 1h")
    (row,) = answer.data["changes"]
    assert row["cluster"] == "prod-eu" and row["summary"] == "image checkout: app:1 → app:2"
    (audited,) = core.audit.since(None)
    assert audited.cluster == "prod-eu" and audited.verb == "changes"
    assert Settings().cluster_name == DEFAULT_CLUSTER == "k8sbot-dev"


# -- the migration of a single-cluster database ---------------------------------------------------

# How many steps each component had before clusters were recorded (main at issue 14): those steps
# still come first in each list, so applying them alone writes a database exactly as that bot did.
SINGLE_CLUSTER_STEPS = {
    "changes": changes_module.MIGRATIONS[:2],
    "events": events_module.MIGRATIONS[:1],
    "alerts": alerts_module.MIGRATIONS[:1],
    "audit": audit_module.MIGRATIONS[:1],
    "alertmanager": inbox_module.MIGRATIONS[:1],
}
CLUSTER_TABLES = (
    "changes",
    "change_state",
    "watch_checkpoints",
    "warning_events",
    "alerts",
    "silences",
    "audit",
    "am_inbox",
    "am_links",
)


def _counts(database: Database) -> dict[str, int]:
    return {t: int(database.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in CLUSTER_TABLES}


def _rows(database: Database, table: str) -> list[dict[str, Any]]:
    cursor = database.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _single_cluster_database(path: Path) -> Database:
    """A database as the single-cluster bot left it: its schema, and rows in every table."""
    database = Database(path)
    for component, steps in SINGLE_CLUSTER_STEPS.items():
        database.ensure_schema(component, steps)
    for table in CLUSTER_TABLES:
        assert "cluster" not in {str(c[1]) for c in database.db.execute(f"PRAGMA table_info({table})")}
    at = OLD_AT.timestamp()
    fields = json.dumps([{"path": "spec.replicas", "before": 1, "after": 3}])
    with database.transaction() as db:
        for i in range(1, 6):
            db.execute(
                "INSERT INTO changes (id, at, kind, namespace, name, change_kind, summary, actor, revision, fields, "
                "uid, resource_version) VALUES (?, ?, 'Deployment', 'shop', 'checkout', 'scale', ?, 'dave', ?, ?, "
                "'uid-checkout', ?)",
                [i * 10, at + i, f"scaled checkout to {i}", i, fields, str(100 + i)],
            )
        db.execute(
            "INSERT INTO changes (id, at, kind, namespace, name, change_kind, summary, fields, source, link, "
            "event_id) VALUES (99, ?, 'Namespace', 'shop', 'shop', 'external', 'deploy 41', '[]', 'ci', "
            "'https://ci/41', 'ci-41')",
            [at],
        )
        db.execute(
            "INSERT INTO change_state (kind, namespace, name, uid, resource_version, revision, first_revision, owner, "
            "template_hash, body) VALUES ('Deployment', 'shop', 'checkout', 'uid-checkout', '105', 5, 1, NULL, NULL, "
            "'{\"replicas\":5}')"
        )
        db.execute(
            "INSERT INTO watch_checkpoints (kind, resource_version, updated_at) VALUES ('Deployment', '105', ?)", [at]
        )
        db.execute(
            "INSERT INTO warning_events (uid, namespace, involved_kind, involved_namespace, involved_name, reason, "
            "message, count, first_at, last_at, source) VALUES ('ev-1', 'shop', 'Pod', 'shop', 'checkout-1', "
            "'BackOff', 'Back-off restarting', 4, ?, ?, 'kubelet')",
            [at, at + 60],
        )
        db.execute(
            "INSERT INTO alerts (id, kind, namespace, name, category, state, title, since, fired_at, channel, team, "
            "route_reason, ts, details) VALUES (7, 'Deployment', 'shop', 'checkout', 'crash_loop', 'firing', "
            "'checkout is crash-looping', ?, ?, 'C0SHOP', 'shop', 'team shop', '1700000000.000100', '{}')",
            [at, at + 30],
        )
        db.execute(
            "INSERT INTO silences (id, kind, namespace, name, category, until, created_by, created_at) "
            "VALUES (3, 'Deployment', 'shop', 'checkout', NULL, ?, 'U0ALICE', ?)",
            [(NOW + timedelta(hours=4)).timestamp(), at],
        )
        db.execute(
            "INSERT INTO audit (id, at, slack_user, usergroups, k8s_user, k8s_groups, channel, verb, target, "
            "namespace, params, command, action_id, decision, reason, outcome, message, finished_at, repeats) "
            "VALUES (5, ?, 'U0ALICE', '[]', 'alice', '[]', 'C0SHOP', 'rollback', 'checkout', 'shop', '{}', "
            "'rollback checkout -n shop', 'abcdef12', 'allowed', 'rule 1', 'done', 'Rolled back', ?, 1)",
            [NOW.isoformat(), NOW.isoformat()],
        )
        db.execute(
            "INSERT INTO am_inbox (id, fingerprint, status, starts_at, labels, annotations, generator_url, group_key, "
            "external_url, received_at) VALUES (4, 'f00d', 'firing', ?, '{}', '{}', '', '{}:{}', '', ?)",
            [at, at],
        )
        db.execute("INSERT INTO am_links (fingerprint, alert_id, linked_at) VALUES ('f00d', 7, ?)", [at])
    return database


def test_a_single_cluster_database_migrates_to_the_legacy_cluster(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    old = _single_cluster_database(path)
    counts = _counts(old)
    before = {table: _rows(old, table) for table in CLUSTER_TABLES}
    assert all(counts.values())
    old.close()

    database = Database(path, legacy_cluster="prod-eu")
    eu = Stores(database, "prod-eu")
    assert _counts(database) == counts  # nothing lost, nothing added
    for table in CLUSTER_TABLES:  # every old row, every value, now in prod-eu
        assert _rows(database, table) == [{"cluster": "prod-eu", **row} for row in before[table]], table
        cluster = {str(c[1]): c for c in database.db.execute(f"PRAGMA table_info({table})")}["cluster"]
        assert cluster[3] == 1 and cluster[4] is None, f"{table}.cluster is NOT NULL without a default"
    versions = dict(database.db.execute("SELECT component, version FROM schema_versions").fetchall())
    assert {c: versions[c] for c in SINGLE_CLUSTER_STEPS} == {
        "changes": len(changes_module.MIGRATIONS),
        "events": len(events_module.MIGRATIONS),
        "alerts": len(alerts_module.MIGRATIONS),
        "audit": len(audit_module.MIGRATIONS),
        "alertmanager": len(inbox_module.MIGRATIONS),
    }

    # the stores of prod-eu read the old rows as theirs, by the same ids
    history = eu.changes.query(since=NOW - timedelta(days=1))
    assert [c.id for c in history] == [50, 40, 30, 20, 10, 99] and {c.cluster for c in history} == {"prod-eu"}
    assert eu.changes.checkpoint("Deployment") == "105"
    migrated_state = eu.changes.state(CHECKOUT)
    assert migrated_state is not None and migrated_state.body == {"replicas": 5}
    (event,) = eu.events.since(NOW - timedelta(days=1))
    assert event.uid == "ev-1" and event.count == 4
    alert = eu.alerts.open_for(CHECKOUT, Category.CRASH_LOOP)
    assert alert is not None and alert.id == 7 and alert.ts == "1700000000.000100" and alert.cluster == "prod-eu"
    silence = eu.alerts.silenced(CHECKOUT, Category.CRASH_LOOP)
    assert silence is not None and silence.id == 3
    entry = eu.audit.for_action("abcdef12")
    assert entry is not None and entry.id == 5 and entry.cluster == "prod-eu" and entry.repeats == 1
    assert eu.inbox.linked("f00d") == 7 and [r.id for r in eu.inbox.pending()] == [4]

    # their keys hold on, now per cluster: a replayed watch event, a resent external event, a reclick
    replay = Recorded(change(), uid="uid-checkout", resource_version="101")
    assert eu.changes.commit(changes=[replace(replay, change=replace(change(), kind=ChangeKind.SCALE))]) == []
    assert eu.changes.record_external(change(), event_id="ci-41")[1] is True
    assert eu.inbox.add([replace(received(), starts_at=OLD_AT)]) == 0
    with pytest.raises(AlreadyClaimed):
        eu.audit.begin(
            subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(True, "ok"), action_id="abcdef12"
        )
    # and another cluster starts empty beside them
    us = Stores(database, "prod-us")
    assert us.changes.query(since=NOW - timedelta(days=1)) == [] and us.changes.checkpoint("Deployment") is None
    assert us.alerts.open_alerts() == [] and us.audit.count() == 0 and us.inbox.count() == 0

    # a second open does not migrate again: the rows keep prod-eu whatever legacy name is given now
    us.changes.commit(changes=[Recorded(change("in us"), uid="uid-us", resource_version="1")])
    after = _counts(database)
    database.close()
    again = Database(path, legacy_cluster="staging")
    Stores(again, "staging")
    assert _counts(again) == after
    clusters = {t: {str(r[0]) for r in again.db.execute(f"SELECT DISTINCT cluster FROM {t}")} for t in CLUSTER_TABLES}
    assert clusters["changes"] == {"prod-eu", "prod-us"}
    assert all(clusters[t] == {"prod-eu"} for t in CLUSTER_TABLES if t != "changes"), clusters
    assert dict(again.db.execute("SELECT component, version FROM schema_versions").fetchall()) == versions


def test_a_write_that_names_no_cluster_fails(tmp_path: Path) -> None:
    """The migrated column has no default: SQL that forgets the cluster is an error, not a silent guess."""
    database = Database(tmp_path / "bot.db")
    Stores(database, "prod-eu")
    with pytest.raises(sqlite3.IntegrityError, match=r"NOT NULL constraint failed: silences\.cluster"):
        database.db.execute(
            "INSERT INTO silences (kind, namespace, name, until, created_at) VALUES ('Deployment', 'shop', 'x', 1, 1)"
        )
    with pytest.raises(ValueError, match="legacy_cluster"):
        Database(tmp_path / "other.db", legacy_cluster="")
