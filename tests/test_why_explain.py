"""explain() and resolve() over hand-built namespaces: ranking, culprits, suggestions, partial results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from test_analyzers_workloads import IMAGE_V1, NS, deployment, node, replicaset, rs_pod, service, template

from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.engine import explain
from bot.errors import Ambiguous, NotFound
from bot.kube.resolving import resolve
from bot.kube.snapshot import Snapshot
from bot.model import Category, Change, ChangeKind, FieldChange, Finding, KubeObject, ObjectRef
from tests.wiring_helpers import ANALYZERS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BAD_IMAGE = "shop/checkout:1.5.0-rc0"


def bad_image_namespace() -> list[KubeObject]:
    bad = template(BAD_IMAGE)
    pull = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{BAD_IMAGE}"'}}
    return [
        deployment(tmpl=bad, revision=2, ready=2),
        service(),
        node(),
        replicaset(1, template(), replicas=2, ready=2),
        replicaset(2, bad, replicas=1, ready=0, created="2026-03-01T11:00:00Z"),
        rs_pod(1, 0),
        rs_pod(1, 1),
        rs_pod(2, 0, state=pull, ready=False, image=BAD_IMAGE),
    ]


def why(objects: list[KubeObject], target: str = "checkout", **kwargs: object):  # type: ignore[no-untyped-def]
    snapshot = Snapshot.build(NS, objects)
    kwargs.setdefault("analyzers", ANALYZERS)
    return explain(snapshot, resolve(snapshot, target), now=NOW, **kwargs)  # type: ignore[arg-type]


def test_bad_image_top_cause_with_culprit_and_rollback() -> None:
    diagnosis = why(bad_image_namespace())
    data = diagnosis.to_json()
    assert data["target"] == {"kind": "Deployment", "namespace": NS, "name": "checkout"}
    assert data["healthy"] is False
    top = data["causes"][0]
    assert top["category"] == "image_pull"
    assert top["change"] == {
        "ref": {"kind": "Deployment", "namespace": NS, "name": "checkout"},
        "at": "2026-03-01T11:00:00+00:00",
        "actor": "kubectl-edit",
        "revision": 2,
        "path": "spec.template.spec.containers[0].image",
        "what": "image of container app",
        "before": IMAGE_V1,
        "after": BAD_IMAGE,
        "source": "kubernetes",
        "summary": None,
        "link": None,
    }
    assert top["suggestion"]["command"] == "/k8s rollback checkout -n shop --to-revision 1"
    assert IMAGE_V1 in top["suggestion"]["text"]
    assert "still serving: revision 1 (2 ready)" in top["evidence"]
    assert "image" in data["summary"] and data["summary"].endswith(".")
    assert set(data) == {"target", "healthy", "summary", "causes", "errors"}


def test_scaled_to_zero_outranks_the_empty_service() -> None:
    d = deployment(replicas=0, ready=0)
    diagnosis = why([d, service(), replicaset(1, template(), replicas=0, ready=0)])
    assert [c.category for c in diagnosis.causes] == [Category.SCALED_TO_ZERO, Category.NO_ENDPOINTS]
    assert diagnosis.causes[0].suggestion is not None
    assert diagnosis.causes[0].suggestion.command == "/k8s scale checkout -n shop --replicas 1"


def test_selector_mismatch_targets_the_service_and_infers_the_old_value() -> None:
    diagnosis = why(
        [
            deployment(),
            service({"app": "checkout-v2"}),
            replicaset(1, template(), replicas=2, ready=2),
            rs_pod(1, 0),
            rs_pod(1, 1),
        ]
    )
    assert diagnosis.target == ObjectRef("Service", NS, "checkout")
    top = diagnosis.causes[0]
    assert top.category == Category.NO_ENDPOINTS
    assert top.change is not None
    assert (top.change.path, top.change.before, top.change.after) == ("spec.selector.app", "checkout", "checkout-v2")


def test_healthy() -> None:
    diagnosis = why(
        [deployment(), service(), node(), replicaset(1, template(), replicas=2, ready=2), rs_pod(1, 0), rs_pod(1, 1)]
    )
    assert diagnosis.healthy is True
    assert [c.category for c in diagnosis.causes] == [Category.HEALTHY]
    assert "2 of 2 pods ready" in diagnosis.summary


def test_node_not_ready_is_found_for_the_pods_on_it() -> None:
    crash = {"waiting": {"reason": "ContainerCreating"}}
    objects = [
        deployment(ready=0),
        node(ready="Unknown"),
        replicaset(1, template(), replicas=2, ready=0),
        rs_pod(1, 0, state=crash, ready=False),
    ]
    assert Category.NODE_NOT_READY in [c.category for c in why(objects).causes]


class RecordedHistory:
    """A ChangeHistory (the change tracker's protocol) with one ConfigMap edit in it."""

    def __init__(self) -> None:
        self.asked: list[ObjectRef] = []

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        self.asked = list(refs)
        assert since < NOW
        return [
            Change(
                ObjectRef("ConfigMap", NS, "checkout-config"),
                datetime(2026, 3, 1, 11, 30, tzinfo=UTC),
                ChangeKind.CONFIG,
                "data.PAYMENT_URL changed",
                (FieldChange("data.PAYMENT_URL", "http://payments", "https://payments:8443"),),
                "alice",
            )
        ]


def crash_namespace() -> list[KubeObject]:
    tmpl = template(envFrom=[{"configMapRef": {"name": "checkout-config"}}])
    crash = {"waiting": {"reason": "CrashLoopBackOff"}}
    return [
        deployment(tmpl=tmpl, ready=0),
        replicaset(1, tmpl, replicas=2, ready=0),
        {"kind": "ConfigMap", "metadata": {"name": "checkout-config"}, "data": {"PAYMENT_URL": "x"}},
        rs_pod(1, 0, state=crash, last={"exitCode": 1, "reason": "Error"}, ready=False),
    ]


def test_recorded_config_change_is_the_culprit_of_a_crash_loop() -> None:
    history = RecordedHistory()
    top = why(crash_namespace(), history=history).causes[0]
    assert top.category == Category.CRASH_LOOP
    assert top.change is not None
    assert (top.change.path, top.change.after, top.change.actor) == (
        "data.PAYMENT_URL",
        "https://payments:8443",
        "alice",
    )
    assert ObjectRef("ConfigMap", NS, "checkout-config") in history.asked
    assert top.change.what == "key PAYMENT_URL of ConfigMap checkout-config"
    # The pod template never changed: a rollback would not undo this; putting the key back does.
    assert top.suggestion is not None and top.suggestion.command is None
    assert "Set key `PAYMENT_URL` of ConfigMap `checkout-config` back to http://payments" in top.suggestion.text
    assert "/k8s restart checkout -n shop" in top.suggestion.text


def test_error_lines_from_previous_logs_are_redacted() -> None:
    asked: list[tuple[str, str, bool]] = []

    def read_logs(pod: str, container: str, previous: bool) -> str:
        asked.append((pod, container, previous))
        if not previous:
            raise NotFound("no current container")
        return "starting\nERROR cannot connect: password=hunter2\nbye\n"

    top = why(crash_namespace(), read_logs=read_logs).causes[0]
    assert asked == [("checkout-h1-p0000", "app", True), ("checkout-h1-p0000", "app", False)]
    assert "log (previous) checkout-h1-p0000/app: ERROR cannot connect: password=[REDACTED]" in top.evidence


def with_broken_analyzer() -> AnalyzerRegistry:
    """The production analyzers plus one that always raises on Services (a private registry)."""

    def explode(obj: KubeObject, snapshot: Snapshot) -> list[Finding]:
        raise RuntimeError("boom")

    return AnalyzerRegistry.of(
        [*((k, a) for k in ANALYZERS.kinds() for a in ANALYZERS.for_kind(k)), ("Service", explode)]
    )


def test_a_failing_analyzer_is_reported_and_the_rest_still_answer() -> None:
    diagnosis = why(bad_image_namespace(), analyzers=with_broken_analyzer())
    assert diagnosis.causes[0].category == Category.IMAGE_PULL
    assert diagnosis.errors == ("analyzer explode failed on Service checkout: boom",)


def test_resolution_by_service_label_and_kind() -> None:
    snapshot = Snapshot.build(NS, bad_image_namespace())
    assert resolve(snapshot, "checkout").ref == ObjectRef("Deployment", NS, "checkout")
    assert resolve(snapshot, "svc/checkout").ref == ObjectRef("Service", NS, "checkout")
    assert resolve(snapshot, "pod/checkout-h1-p0000").ref.kind == "Pod"


def test_label_match_when_no_object_has_the_name() -> None:
    d = deployment()
    d["metadata"]["name"] = "checkout-api"
    assert resolve(Snapshot.build(NS, [d]), "checkout").ref == ObjectRef("Deployment", NS, "checkout-api")


def test_ambiguous_and_unknown() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"name": "checkout"}, "spec": {"template": template()}}
    sts["spec"]["template"]["metadata"]["labels"] = {"app": "db"}
    with pytest.raises(Ambiguous) as ambiguous:
        resolve(Snapshot.build(NS, [deployment(), sts]), "checkout")
    assert ambiguous.value.candidates == ("deployment/checkout", "statefulset/checkout")
    with pytest.raises(NotFound) as unknown:
        resolve(Snapshot.build(NS, [deployment()]), "chekout")
    assert unknown.value.candidates == ("checkout",)
