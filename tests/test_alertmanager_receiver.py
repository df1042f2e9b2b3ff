"""`POST /integrations/alertmanager`'s receiver and the label mapping: pure, with a real SQLite inbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alertmanager_payloads import alert, webhook

from bot.alerting.external import Named, named_by
from bot.errors import ConfigError
from bot.integrations.alertmanager import AlertmanagerReceiver
from bot.settings import load_settings
from bot.store.database import Database
from bot.store.inbox import AlertInbox


@pytest.fixture
def inbox(tmp_path: Path) -> AlertInbox:
    return AlertInbox(Database(tmp_path / "bot.db"))


def test_a_valid_notification_is_stored_once_and_a_retry_stores_nothing(inbox: AlertInbox) -> None:
    receiver = AlertmanagerReceiver(inbox)
    payload = webhook(
        alert({"alertname": "A", "namespace": "shop", "deployment": "checkout"}), alert({"alertname": "B"})
    )
    first = receiver.receive(payload)
    assert (first.status, first.body) == (200, {"ok": True, "received": 2, "new": 2})
    again = receiver.receive(payload)
    assert (again.status, again.body["new"]) == (200, 0)
    assert inbox.count() == 2 and len(inbox.pending()) == 2
    row = inbox.pending()[0].alert
    assert row.labels["deployment"] == "checkout" and row.ends_at is None and row.starts_at.microsecond == 123456


def test_resolved_is_a_new_state_of_the_same_alert(inbox: AlertInbox) -> None:
    receiver = AlertmanagerReceiver(inbox)
    labels = {"alertname": "A", "namespace": "shop"}
    receiver.receive(webhook(alert(labels)))
    out = receiver.receive(webhook(alert(labels, status="resolved", ends="2026-11-30T10:05:00Z"), status="resolved"))
    assert out.body["new"] == 1 and [r.alert.status for r in inbox.pending()] == ["firing", "resolved"]


def _broken(path: str, value: Any) -> dict[str, Any]:
    payload = webhook(alert({"alertname": "A"}))
    target: Any = payload
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("version", "3", "version"),
        ("version", 4, "version"),
        ("status", "pending", "status"),
        ("groupKey", None, "groupKey"),
        ("alerts", {"a": 1}, "alerts"),
        ("alerts.0.status", "FIRING", "alerts.0.status"),
        ("alerts.0.labels", {"a": 1}, "alerts.0.labels.a"),
        ("alerts.0.labels", {"x": "y" * 5000}, "alerts.0.labels.x"),
        ("alerts.0.labels", {f"l{i}": "v" for i in range(200)}, "alerts.0.labels"),
        ("alerts.0.startsAt", "yesterday", "alerts.0.startsAt"),
        ("alerts.0.startsAt", 1700000000, "alerts.0.startsAt"),
        ("alerts.0.startsAt", "2026-11-30T10:00:00", "alerts.0.startsAt"),
        ("alerts.0.fingerprint", "../../etc", "alerts.0.fingerprint"),
        ("alerts.0.fingerprint", KeyError, "alerts.0.fingerprint"),
        ("truncatedAlerts", -1, "truncatedAlerts"),
    ],
)
def test_every_wrong_field_is_refused_naming_it_and_nothing_is_stored(
    inbox: AlertInbox, path: str, value: Any, named: str
) -> None:
    out = AlertmanagerReceiver(inbox).receive(_broken(path, value))
    assert out.status == 400 and out.body["ok"] is False
    assert f": {named}:" in out.body["error"] or out.body["error"].split(": ", 1)[1].startswith(named)
    assert inbox.count() == 0


@pytest.mark.parametrize("payload", [None, [], "text", 4, {"version": "4"}])
def test_bodies_that_are_not_a_payload_are_refused(inbox: AlertInbox, payload: Any) -> None:
    out = AlertmanagerReceiver(inbox).receive(payload)
    assert out.status == 400 and inbox.count() == 0


def test_a_thousand_alerts_in_one_call_are_all_stored_in_one_transaction(inbox: AlertInbox) -> None:
    alerts = [alert({"alertname": "Flood", "namespace": "shop", "pod": f"p-{i}"}) for i in range(1000)]
    out = AlertmanagerReceiver(inbox).receive(webhook(*alerts))
    assert out.body == {"ok": True, "received": 1000, "new": 1000}
    assert inbox.count(pending=True) == 1000


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"namespace": "shop", "deployment": "checkout", "pod": "checkout-1"}, Named("Deployment", "shop", "checkout")),
        ({"namespace": "shop", "statefulset": "db"}, Named("StatefulSet", "shop", "db")),
        ({"namespace": "shop", "daemonset": "agent"}, Named("DaemonSet", "shop", "agent")),
        ({"namespace": "shop", "job_name": "migrate", "job": "kube-state-metrics"}, Named("Job", "shop", "migrate")),
        ({"namespace": "shop", "pod": "checkout-7d9-x", "container": "app"}, Named("Pod", "shop", "checkout-7d9-x")),
        ({"namespace": "shop", "service": "checkout"}, Named("Service", "shop", "checkout")),
        ({"namespace": "shop", "rollout": "cart"}, Named("Deployment", "shop", "cart")),
        ({"deployment": "checkout"}, None),
        ({"namespace": "shop"}, None),
        ({"namespace": "Shop!", "deployment": "checkout"}, None),
        ({"namespace": "shop", "deployment": "../secrets"}, None),
    ],
)
def test_labels_name_a_workload(labels: dict[str, str], expected: Named | None) -> None:
    assert named_by(labels, {"rollout": "Deployment"}) == expected


def test_the_label_map_setting_is_validated() -> None:
    settings = load_settings({}, alertmanager_label_map={"rollout": "deployment"})
    assert settings.alertmanager_label_map == {"rollout": "Deployment"}
    with pytest.raises(ConfigError, match="alertmanager_label_map"):
        load_settings({}, alertmanager_label_map={"rollout": "ConfigMap"})
    with pytest.raises(ConfigError, match="alertmanager_label_map"):
        load_settings({}, alertmanager_label_map={"bad-label": "Pod"})
