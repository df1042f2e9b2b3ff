"""The change store and the recorder's restart semantics, on a real SQLite file (no cluster needed)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.changes.recording import ChangeRecorder, NamespaceFilter
from bot.model import ChangeKind, ObjectRef
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore

SECRET_VALUE = "correct-horse-battery-staple-7f3a"
SECRET_B64 = "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZS03ZjNh"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def stores(path: Path, clock: Clock) -> tuple[Database, ChangeStore, ChangeRecorder]:
    db = Database(path)
    changes = ChangeStore(db, clock=clock)
    recorder = ChangeRecorder(changes, EventStore(db, clock=clock), clock=clock)
    return db, changes, recorder


def configmap(value: str, rv: str, name: str = "cfg", namespace: str = "shop") -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": rv},
        "data": {"level": value},
    }


def listing(*objects: dict[str, Any], rv: str = "500"):  # type: ignore[no-untyped-def]
    return iter([(list(objects), rv)])


def test_first_listing_is_a_baseline_and_a_restart_records_each_offline_change_once(tmp_path: Path) -> None:
    clock = Clock()
    db, changes, recorder = stores(tmp_path / "k.db", clock)
    found, rv = recorder.record_listing("ConfigMap", listing(configmap("info", "1"), configmap("x", "2", "gone")))
    assert found == [] and rv == "500"
    assert changes.checkpoint("ConfigMap") == "500"
    db.close()

    # "restart": a new recorder over the same file sees one edited, one deleted, one new object
    _, changes, recorder = stores(tmp_path / "k.db", clock)
    objects = [configmap("debug", "7"), configmap("n", "8", "fresh")]
    found, _ = recorder.record_listing("ConfigMap", listing(*objects, rv="600"))
    assert sorted((str(c.ref), c.kind) for c in found) == [
        ("ConfigMap/shop/cfg", ChangeKind.CONFIG),
        ("ConfigMap/shop/fresh", ChangeKind.CREATED),
        ("ConfigMap/shop/gone", ChangeKind.DELETED),
    ]
    # the same listing again (another restart, or a 410 re-list): nothing new
    again, _ = recorder.record_listing("ConfigMap", listing(*objects, rv="700"))
    assert again == []
    # and the watch event that was already covered by the listing records nothing either
    assert recorder.record_event("ConfigMap", "MODIFIED", configmap("debug", "7")) == []
    assert len(changes.query(since=clock.now - timedelta(hours=1))) == 3


def test_watch_events_record_once_even_when_replayed(tmp_path: Path) -> None:
    clock = Clock()
    _, changes, recorder = stores(tmp_path / "k.db", clock)
    recorder.record_listing("ConfigMap", listing(configmap("info", "1")))
    first = recorder.record_event("ConfigMap", "MODIFIED", configmap("debug", "2"))
    replay = recorder.record_event("ConfigMap", "MODIFIED", configmap("debug", "2"))
    assert [c.summary for c in first] == ["ConfigMap keys changed: level"]
    assert replay == []
    stored = changes.query(since=clock.now - timedelta(minutes=1))
    assert [(f.path, f.before, f.after) for f in stored[0].fields] == [("data.level", "info", "debug")]
    assert stored[0].id == first[0].id


def test_queries_by_object_and_namespace_and_since(tmp_path: Path) -> None:
    clock = Clock()
    _, changes, recorder = stores(tmp_path / "k.db", clock)
    recorder.record_listing("ConfigMap", listing(configmap("a", "1"), configmap("a", "1", "other", "ops")))
    recorder.record_event("ConfigMap", "MODIFIED", configmap("b", "2"))
    clock.now += timedelta(hours=3)
    recorder.record_event("ConfigMap", "MODIFIED", configmap("c", "3"))
    recorder.record_event("ConfigMap", "MODIFIED", configmap("z", "4", "other", "ops"))
    ref = ObjectRef("ConfigMap", "shop", "cfg")
    assert [c.fields[0].after for c in changes.query(since=clock.now - timedelta(hours=4), ref=ref)] == ["c", "b"]
    assert [c.fields[0].after for c in changes.query(since=clock.now - timedelta(hours=1), ref=ref)] == ["c"]
    assert [c.ref.name for c in changes.query(since=clock.now - timedelta(hours=4), namespace="ops")] == ["other"]


def test_retention_prunes_old_changes(tmp_path: Path) -> None:
    clock = Clock()
    _, changes, recorder = stores(tmp_path / "k.db", clock)
    recorder.record_listing("ConfigMap", listing(configmap("a", "1")))
    recorder.record_event("ConfigMap", "MODIFIED", configmap("b", "2"))
    clock.now += timedelta(days=29)
    recorder.record_event("ConfigMap", "MODIFIED", configmap("c", "3"))
    clock.now += timedelta(days=2)
    assert changes.prune() == 1
    assert [c.fields[0].after for c in changes.query(since=clock.now - timedelta(days=90))] == ["c"]


def test_namespace_filter_globs(tmp_path: Path) -> None:
    clock = Clock()
    db = Database(tmp_path / "k.db")
    changes = ChangeStore(db, clock=clock)
    recorder = ChangeRecorder(
        changes, EventStore(db), clock=clock, namespaces=NamespaceFilter(include=("shop*",), exclude=("shop-sandbox",))
    )
    recorder.record_listing(
        "ConfigMap",
        listing(
            configmap("a", "1", "x", "shop"), configmap("a", "1", "y", "ops"), configmap("a", "1", "z", "shop-sandbox")
        ),
    )
    assert changes.states("ConfigMap") == [ObjectRef("ConfigMap", "shop", "x")]


def test_secret_value_never_in_the_database_file(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "k.db"
    db, changes, recorder = stores(path, clock)

    def secret(value_b64: str, rv: str) -> dict[str, Any]:
        return {
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "uid": "s1",
                "resourceVersion": rv,
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"password":"{value_b64}"}},"stringData":'  # noqa: E501
                    f'{{"p":"{SECRET_VALUE}"}}}}'
                },
            },
            "data": {"password": value_b64, "user": "YWRtaW4="},
        }

    recorder.record_listing("Secret", listing(secret("b2xk", "1")))
    found = recorder.record_event("Secret", "MODIFIED", secret(SECRET_B64, "2"))
    found += recorder.record_event("Secret", "MODIFIED", secret("bmV3ZXI=", "3"))
    assert [c.summary for c in found] == ["Secret keys changed: password"] * 2
    assert found[0].fields[0].after.startswith("hmac:")
    assert found[0].fields[0].after == found[1].fields[0].before  # equal values, equal fingerprints
    rendered = repr([c.to_json() for c in changes.query(since=clock.now - timedelta(days=1))])
    assert SECRET_B64 not in rendered and SECRET_VALUE not in rendered
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("k.db"))
    assert raw, "the database and its WAL were read"
    assert SECRET_B64.encode() not in raw and SECRET_VALUE.encode() not in raw
    db.close()


def test_events_are_upserted_by_uid(tmp_path: Path) -> None:
    clock = Clock()
    db = Database(tmp_path / "k.db")
    events = EventStore(db, clock=clock)
    recorder = ChangeRecorder(ChangeStore(db, clock=clock), events, clock=clock)
    event = {
        "kind": "Event",
        "type": "Warning",
        "reason": "NodeNotReady",
        "message": "node n1 not ready",
        "metadata": {"uid": "e1", "namespace": "default", "name": "n1.1"},
        "involvedObject": {"kind": "Node", "name": "n1"},
        "count": 1,
        "firstTimestamp": "2026-05-04T08:00:00Z",
        "lastTimestamp": "2026-05-04T08:00:00Z",
    }
    recorder.record_warning(event)
    later = copy.deepcopy(event)
    later.update(count=4, lastTimestamp="2026-05-04T08:30:00Z")
    recorder.record_warning(later)
    recorder.record_warning({**event, "type": "Normal", "metadata": {"uid": "e2"}})
    stored = events.since(clock.now - timedelta(hours=2))
    assert [(e.reason, e.count, e.involved.kind) for e in stored] == [("NodeNotReady", 4, "Node")]
