"""rollback, scale and restart against the real control plane: confirmed first, run as the person,
run once per action id, refused cleanly on bad input, and exactly one audit row per attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_helpers import is_ready, pods, replica_sets, revision_of, wait_for, wait_rolled_out
from scenarios import CHECKOUT_IMAGE, break_image
from test_permissions_cluster import Shop, open_shop

from bot.errors import NotFound, PermissionDenied, UsageError
from bot.kube.client import KubeClient

pytestmark = pytest.mark.kwok  # the broken revision needs the scenario stages


@pytest.fixture
def shop(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Shop]:
    yield from open_shop(kube, namespace, tmp_path)


def _pods_ready(kube: KubeClient, namespace: str, want: int) -> bool:
    found = pods(kube, namespace, "app=checkout")
    return len(found) == want and all(is_ready(p) for p in found)


def test_an_operator_bound_to_edit_rolls_back_a_broken_deployment_after_confirming(shop: Shop) -> None:
    ns = shop.namespace
    broken = break_image(shop.kube, shop.app)
    assert broken.revision == 2

    preview = shop.run("U0ALICE", f"rollback checkout -n {ns}")
    assert preview.data["outcome"] == "pending"
    assert preview.data["from"] == {"revision": 2, "images": [broken.after]}
    assert preview.data["to"]["revision"] == 1 and preview.data["to"]["images"] == [CHECKOUT_IMAGE]
    image = {"path": "spec.template.spec.containers[0].image", "before": broken.after, "after": CHECKOUT_IMAGE}
    assert {**image, "label": "image of container app"} in preview.data["changes"]  # the field in words too
    confirm = preview.data["confirm"]["command"]
    assert confirm.startswith(f"rollback checkout -n {ns} --action-id ") and confirm.endswith("--to-revision 1")
    assert shop.deployment()["metadata"]["generation"] == 2  # the preview changed nothing
    assert shop.rows() == []  # ...and is not an attempt

    done = shop.run("U0ALICE", confirm, confirmed=True)
    assert done.data["outcome"] == "done"
    assert done.title.startswith(f"Rolled back deployment checkout in {ns} to revision 1 (image {CHECKOUT_IMAGE}")
    rolled = wait_rolled_out(shop.kube, ns, "checkout")
    assert rolled["spec"]["template"]["spec"]["containers"][0]["image"] == CHECKOUT_IMAGE
    assert "sim.k8sbot.dev/scenario" not in rolled["spec"]["template"]["metadata"].get("labels", {})
    wait_for(lambda: _pods_ready(shop.kube, ns, 2), 60, "2 Ready checkout pods")
    assert revision_of(rolled) == 3  # revision 1's ReplicaSet, renumbered, as kubectl rollout undo does

    (row,) = shop.rows()
    assert (row.slack_user, row.k8s_user, row.k8s_groups) == ("U0ALICE", "slack:U0ALICE", ("team-edit",))
    assert (row.verb, row.target, row.namespace, row.params) == ("rollback", "checkout", ns, {"to-revision": "1"})
    assert (
        row.decision == "allowed"
        and "team shop" in row.reason
        and "may get deployments.apps checkout, patch deployments.apps checkout" in row.reason
    )
    assert row.outcome == "done" and row.message == done.title and row.action_id in confirm


def test_a_double_click_rolls_back_once(shop: Shop) -> None:
    ns = shop.namespace
    break_image(shop.kube, shop.app, wait=False)
    confirm = shop.run("U0ALICE", f"rollback checkout -n {ns}").data["confirm"]["command"]
    first = shop.run("U0ALICE", confirm, confirmed=True)
    generation = shop.deployment()["metadata"]["generation"]
    second = shop.run("U0ALICE", confirm, confirmed=True)
    assert first.data["outcome"] == "done"
    assert second.data["outcome"] == "duplicate" and second.title.startswith("This action was already done")
    assert shop.deployment()["metadata"]["generation"] == generation
    assert sorted(revision_of(rs) for rs in replica_sets(shop.kube, ns, "checkout")) == [2, 3]
    (row,) = shop.rows()
    assert row.outcome == "done" and row.repeats == 1


def test_scale_through_the_subresource_within_the_limit_and_refused_above_it(shop: Shop) -> None:
    ns = shop.namespace
    with pytest.raises(PermissionDenied, match=r"limits\.max_replicas is 5; 6 replicas is above it"):
        shop.run("U0ALICE", f"scale checkout -n {ns} --replicas 6", confirmed=True)
    assert shop.deployment()["spec"]["replicas"] == 2

    preview = shop.run("U0ALICE", f"scale checkout -n {ns} --replicas 3")
    assert preview.data["from"] == 2 and preview.data["to"] == 3
    assert shop.deployment()["spec"]["replicas"] == 2
    done = shop.run("U0ALICE", preview.data["confirm"]["command"], confirmed=True)
    assert done.title == f"Scaled deployment checkout in {ns} from 2 to 3 replicas"
    assert shop.deployment()["spec"]["replicas"] == 3
    wait_for(lambda: _pods_ready(shop.kube, ns, 3), 60, "3 Ready checkout pods")
    assert [(r.outcome, r.verb) for r in shop.rows()] == [("denied", "scale"), ("done", "scale")]


def test_restart_sets_restarted_at_and_replaces_the_pods(shop: Shop) -> None:
    ns = shop.namespace
    old = {p["metadata"]["name"] for p in pods(shop.kube, ns, "app=checkout")}
    preview = shop.run("U0ALICE", f"restart checkout -n {ns}")
    assert preview.data["changes"][0]["path"] == "spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt"
    done = shop.run("U0ALICE", preview.data["confirm"]["command"], confirmed=True)
    stamp = done.data["restartedAt"]
    annotations = shop.deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == stamp
    wait_rolled_out(shop.kube, ns, "checkout")

    def replaced() -> bool:
        now = pods(shop.kube, ns, "app=checkout")
        return len(now) == 2 and not old & {p["metadata"]["name"] for p in now} and all(is_ready(p) for p in now)

    wait_for(replaced, 60, "every checkout pod to be replaced")
    assert [r.outcome for r in shop.rows()] == ["done"]


PARSER = "refused by the parser: not an attempt, no row"
RUN = "parsed and authorized, then refused: one failed row"


@pytest.mark.parametrize(
    ("text", "error", "stage"),
    [
        ("rollback 'checkout;kubectl delete ns {ns}' -n {ns}", UsageError, PARSER),
        ("rollback checkout$(id) -n {ns}", UsageError, PARSER),
        ("rollback ../../checkout -n {ns}", UsageError, PARSER),
        ("rollback checkout -n ../{ns}", UsageError, PARSER),
        ("scale checkout -n {ns} --replicas 18446744073709551617", UsageError, PARSER),
        ("rollback checkout -n {ns} --to-revision 999999", NotFound, RUN),
        ("rollback svc/checkout -n {ns}", UsageError, RUN),
        ("restart checkout -n {ns} --action-id '$(reboot)'", UsageError, RUN),
    ],
)
def test_hostile_input_is_refused_cleanly_and_nothing_changes(shop: Shop, text: str, error: type, stage: str) -> None:
    ns = shop.namespace
    before = shop.deployment()
    with pytest.raises(error):
        shop.run("U0ALICE", text.format(ns=ns), confirmed=True)
    after = shop.deployment()
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    assert len(replica_sets(shop.kube, ns, "checkout")) == 1
    assert [(r.decision, r.outcome) for r in shop.rows()] == ([] if stage == PARSER else [("allowed", "failed")])
