"""`POST /integrations/alertmanager`'s receiver and the label mapping: pure, with a real SQLite inbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alertmanager_payloads import alert, webhook

from bot.alerting.external import ClusterLabel, Named, named_by
from bot.errors import ConfigError
from bot.integrations.alertmanager import AlertmanagerReceiver
from bot.settings import load_settings
from bot.store.database import Database
from bot.store.inbox import AlertInbox


@pytest.fixture
def inbox(tmp_path: Path) -> AlertInbox:
    return AlertInbox(Database(tmp_path / "bot.db"))


def test_a_valid_notification_is_stored_once_and_a_retry_stores_nothing(inbox: AlertInbox) -> None:
    receiver = AlertmanagerReceiver([inbox])
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
    receiver = AlertmanagerReceiver([inbox])
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
    out = AlertmanagerReceiver([inbox]).receive(_broken(path, value))
    assert out.status == 400 and out.body["ok"] is False
    assert f": {named}:" in out.body["error"] or out.body["error"].split(": ", 1)[1].startswith(named)
    assert inbox.count() == 0


@pytest.mark.parametrize("payload", [None, [], "text", 4, {"version": "4"}])
def test_bodies_that_are_not_a_payload_are_refused(inbox: AlertInbox, payload: Any) -> None:
    out = AlertmanagerReceiver([inbox]).receive(payload)
    assert out.status == 400 and inbox.count() == 0


def test_a_thousand_alerts_in_one_call_are_all_stored_in_one_transaction(inbox: AlertInbox) -> None:
    alerts = [alert({"alertname": "Flood", "namespace": "shop", "pod": f"p-{i}"}) for i in range(1000)]
    out = AlertmanagerReceiver([inbox]).receive(webhook(*alerts))
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


# -- which cluster an alert is about (issue 14) --------------------------------------------------------

TWO = ClusterLabel("cluster", ("prod-us", "prod-eu"))
ONE = ClusterLabel("cluster", ("prod-us",))


@pytest.mark.parametrize(
    ("rule", "labels", "expected"),
    [
        (ONE, {"alertname": "A"}, "prod-us"),  # one cluster, no label: that cluster (as before)
        (ONE, {"cluster": ""}, "prod-us"),
        (ONE, {"cluster": "prod-us"}, "prod-us"),
        (ONE, {"cluster": "prod-eu"}, None),  # names another cluster: not guessed to be this one
        (TWO, {"cluster": "prod-eu"}, "prod-eu"),
        (TWO, {"cluster": "prod-us"}, "prod-us"),
        (TWO, {"alertname": "A"}, None),  # several and no label: never a guess
        (TWO, {"cluster": "PROD-EU"}, None),
        (TWO, {"cluster": "prod-eu "}, None),
        (TWO, {"cluster": "staging"}, None),
        (TWO, {"k8s_cluster": "prod-eu"}, None),
        (ClusterLabel("k8s_cluster", ("prod-us", "prod-eu")), {"k8s_cluster": "prod-eu", "cluster": "x"}, "prod-eu"),
        (ClusterLabel(None, ("prod-us",)), {"cluster": "anything"}, "prod-us"),  # the label switched off
    ],
)
def test_the_cluster_label_names_a_configured_cluster_or_none(
    rule: ClusterLabel, labels: dict[str, str], expected: str | None
) -> None:
    assert rule.cluster_of(labels) == expected


def test_the_unknown_cluster_sentence_names_the_label_and_the_choices() -> None:
    assert TWO.unknown() == (
        "unknown: the alert's `cluster` label is missing or names no configured cluster (prod-us, prod-eu), "
        "so it is matched to no workload"
    )
    assert "`cluster` label names no configured cluster (prod-us)" in ONE.unknown()


@pytest.fixture
def inboxes(tmp_path: Path) -> tuple[AlertInbox, AlertInbox]:
    database = Database(tmp_path / "bot.db")
    return AlertInbox(database, cluster="prod-us"), AlertInbox(database, cluster="prod-eu")


def test_each_alert_is_stored_in_the_inbox_of_the_cluster_its_label_names(
    inboxes: tuple[AlertInbox, AlertInbox],
) -> None:
    us, eu = inboxes
    receiver = AlertmanagerReceiver([us, eu], clusters=TWO)
    payload = webhook(
        alert({"alertname": "A", "namespace": "shop", "deployment": "checkout", "cluster": "prod-eu"}),
        alert({"alertname": "A", "namespace": "shop", "deployment": "checkout", "cluster": "prod-us"}),
        alert({"alertname": "B", "namespace": "shop", "deployment": "checkout"}),  # no label
        alert({"alertname": "C", "namespace": "shop", "cluster": "staging"}),  # not configured
    )
    out = receiver.receive(payload)
    assert (out.status, out.body) == (200, {"ok": True, "received": 4, "new": 4})
    assert [r.alert.labels.get("cluster") for r in eu.pending()] == ["prod-eu"]
    assert [r.cluster for r in eu.pending()] == ["prod-eu"]
    # the home (first) cluster's inbox holds its own and those of no known cluster, for its engine to post plainly
    assert sorted(r.alert.labels.get("cluster", "-") for r in us.pending()) == ["-", "prod-us", "staging"]
    again = receiver.receive(payload)  # a retry of the whole notification stores nothing twice
    assert again.body["new"] == 0 and us.count() == 3 and eu.count() == 1


def test_one_cluster_without_the_label_keeps_todays_behaviour(inboxes: tuple[AlertInbox, AlertInbox]) -> None:
    us, _ = inboxes
    receiver = AlertmanagerReceiver([us], clusters=ONE)
    out = receiver.receive(webhook(alert({"alertname": "A", "namespace": "shop"})))
    assert out.body["new"] == 1 and [r.cluster for r in us.pending()] == ["prod-us"]


def test_the_receiver_needs_an_inbox_scoped_to_each_cluster(tmp_path: Path) -> None:
    database = Database(tmp_path / "bot.db")
    with pytest.raises(ValueError, match="scoped to each cluster"):
        AlertmanagerReceiver([AlertInbox(database, cluster=None)])
    with pytest.raises(ValueError, match="scoped to each cluster"):
        AlertmanagerReceiver([])


def test_the_cluster_label_setting(tmp_path: Path) -> None:
    assert load_settings({}).alertmanager_cluster_label == "cluster"
    assert load_settings({}, alertmanager_cluster_label="k8s_cluster").alertmanager_cluster_label == "k8s_cluster"
    with pytest.raises(ConfigError, match="alertmanager_cluster_label"):
        load_settings({}, alertmanager_cluster_label="bad-label")
    config = tmp_path / "config.yaml"
    config.write_text("alertmanager_cluster_label: null\n")
    assert load_settings({"K8SBOT_CONFIG": str(config)}).alertmanager_cluster_label is None  # one cluster: allowed
    config.write_text(
        "clusters: [{name: prod-us}, {name: prod-eu, kubeconfig: /k}]\nalertmanager_cluster_label: null\n"
    )
    with pytest.raises(ConfigError, match="alertmanager_cluster_label: null works with one cluster only"):
        load_settings({"K8SBOT_CONFIG": str(config)})
