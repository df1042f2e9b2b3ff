"""Revision history from ReplicaSets: template diffs, the last good revision, actor and time."""

from __future__ import annotations

from datetime import UTC, datetime

from test_analyzers_workloads import NS, deployment, replicaset, template

from bot.kube.revisions import last_good, revision_change, revisions, scale_change, template_diff
from bot.kube.snapshot import Snapshot
from bot.model import FieldChange


def test_image_change_path_and_values() -> None:
    changes = list(template_diff(template("shop/checkout:1"), template("shop/checkout:2")))
    assert changes == [FieldChange("spec.template.spec.containers[0].image", "shop/checkout:1", "shop/checkout:2")]


def test_pod_template_hash_is_not_a_change() -> None:
    a, b = template(), template()
    a["metadata"]["labels"]["pod-template-hash"] = "aaa"
    b["metadata"]["labels"]["pod-template-hash"] = "bbb"
    assert list(template_diff(a, b)) == []


def test_named_lists_match_by_name_and_keep_indices() -> None:
    before = template(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    after = template(env=[{"name": "NEW", "value": "x"}, {"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    assert list(template_diff(before, after)) == [
        FieldChange("spec.template.spec.containers[0].env[0]", None, {"name": "NEW", "value": "x"}),
        FieldChange("spec.template.spec.containers[0].env[2].value", "2", "3"),
    ]


def test_removed_and_added_fields() -> None:
    before = template(resources={"limits": {"memory": "256Mi"}})
    after = template(resources={"limits": {"memory": "48Mi", "cpu": "1"}})
    assert list(template_diff(before, after)) == [
        FieldChange("spec.template.spec.containers[0].resources.limits.memory", "256Mi", "48Mi"),
        FieldChange("spec.template.spec.containers[0].resources.limits.cpu", None, "1"),
    ]


def test_an_annotation_map_that_appears_is_named_key_by_key() -> None:
    # One diff of object fields for the whole bot: the same path the change history records.
    before, after = template(), template()
    after["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-03-01T10:00:00Z"}
    [change] = template_diff(before, after)
    assert change.path == "spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt"
    assert (change.before, change.after) == (None, "2026-03-01T10:00:00Z")


def test_revision_change_blames_the_newest_revision_against_the_serving_one() -> None:
    good, bad = template("shop/checkout:1"), template("shop/checkout:3")
    d = deployment(tmpl=bad, revision=3)
    objects = [
        d,
        replicaset(1, template("shop/checkout:0"), replicas=0, ready=0),
        replicaset(2, good, replicas=2, ready=2),
        replicaset(3, bad, replicas=1, ready=0, created="2026-03-01T10:00:00Z"),
    ]
    snapshot = Snapshot.build(NS, objects)
    assert [r.number for r in revisions(d, snapshot)] == [1, 2, 3]
    change = revision_change(d, snapshot)
    assert change is not None
    assert (change.good.number, change.failing.number) == (2, 3)
    assert change.fields == (
        FieldChange("spec.template.spec.containers[0].image", "shop/checkout:1", "shop/checkout:3"),
    )
    assert change.actor == "kubectl-edit"  # the manager that wrote spec.template, not the controller
    assert change.at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_last_good_falls_back_to_the_previous_revision() -> None:
    d = deployment()
    snapshot = Snapshot.build(
        NS, [d, replicaset(4, template(), replicas=0, ready=0), replicaset(5, template(), replicas=2, ready=0)]
    )
    history = revisions(d, snapshot)
    good = last_good(history, history[-1])
    assert good is not None and good.number == 4


def test_single_revision_has_no_change() -> None:
    d = deployment()
    assert revision_change(d, Snapshot.build(NS, [d, replicaset(1, template(), replicas=2, ready=2)])) is None


def test_scale_change_from_controller_events() -> None:
    d = deployment(replicas=0, ready=0)
    events = [
        {
            "kind": "Event",
            "reason": "ScalingReplicaSet",
            "message": "Scaled up replica set checkout-h1 from 0 to 3",
            "involvedObject": {"kind": "Deployment", "name": "checkout"},
            "lastTimestamp": "2026-03-01T09:00:00Z",
        },
        {
            "kind": "Event",
            "reason": "ScalingReplicaSet",
            "message": "Scaled down replica set checkout-h1 from 3 to 0",
            "involvedObject": {"kind": "Deployment", "name": "checkout"},
            "lastTimestamp": "2026-03-01T11:00:00Z",
        },
    ]
    change = scale_change(d, Snapshot.build(NS, [d, *events]))
    assert change is not None and (change.before, change.after) == (3, 0)
    assert change.at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
