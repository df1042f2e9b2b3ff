"""External change events as culprits (bot/diagnosis/culprits.py), in the store, in the digest; and the
GitOps/Helm marks of bot/changes/gitops.py. Pure functions and a real SQLite store; the cluster and Slack
paths are in tests/test_external_changes_cluster.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_analyzers_workloads import NS
from test_digest import MONDAY_0900, Clock, Outbox, record, setup
from test_why_explain import RecordedHistory, crash_namespace, why

from bot.changes.diffing import build_change, snapshot
from bot.diagnosis.culprits import Evidence, culprit
from bot.kube.gitops import management, rollback_warning
from bot.model import Category, Change, ChangeKind, FieldChange, KubeObject, Management, ObjectRef
from bot.store.changes import ChangeStore
from bot.store.database import Database

AT = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
FLAG = Change(
    ObjectRef("Namespace", None, NS),
    AT,
    ChangeKind.EXTERNAL,
    "new_payment flag on",
    (FieldChange("flags.new_payment", False, True),),
    "launchdarkly-bot",
    source="flags",
    link="https://flags.example.com/new_payment",
)
TEMPLATE = Change(
    ObjectRef("Deployment", NS, "checkout"),
    AT - timedelta(minutes=30),
    ChangeKind.CONFIG,
    "env changed",
    (FieldChange("spec.template.spec.containers[0].env[0].value", "a", "b"),),
    "kubectl-edit",
)


class WithFlag(RecordedHistory):
    """The ConfigMap edit of test_why_explain, or none, plus a feature flag flipped in the namespace."""

    def __init__(self, *, config_edit: bool) -> None:
        super().__init__()
        self.config_edit = config_edit

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        found = super().changes_for(refs, since) if self.config_edit else []
        return [*found, FLAG] if ObjectRef("Namespace", None, NS) in refs else found


def test_an_external_change_is_the_culprit_when_nothing_in_the_cluster_explains_it() -> None:
    top = why(crash_namespace(), history=WithFlag(config_edit=False)).causes[0]
    assert top.category == Category.CRASH_LOOP
    assert top.change is not None
    data = top.change.to_json()
    assert (data["source"], data["summary"], data["link"]) == (
        "flags",
        "new_payment flag on",
        "https://flags.example.com/new_payment",
    )
    assert (data["path"], data["before"], data["after"]) == ("flags.new_payment", False, True)
    assert top.suggestion is not None and "flags" in top.suggestion.text and top.suggestion.command is None


def test_a_matching_cluster_change_ranks_before_a_newer_external_one() -> None:
    top = why(crash_namespace(), history=WithFlag(config_edit=True)).causes[0]
    assert top.change is not None and top.change.source == "kubernetes"
    assert top.change.path == "data.PAYMENT_URL"


def test_culprit_order_template_change_then_external() -> None:
    both = culprit(Category.CRASH_LOOP, Evidence(history=[FLAG, TEMPLATE]))
    assert both is not None and both.source == "kubernetes"
    only_flag = culprit(Category.CRASH_LOOP, Evidence(history=[FLAG]))
    assert only_flag is not None and only_flag.source == "flags"
    # an external event that names a template path is still external: it never outranks the cluster's
    ci = Change(FLAG.ref, AT, ChangeKind.EXTERNAL, "deploy", TEMPLATE.fields, source="ci")
    assert culprit(Category.CRASH_LOOP, Evidence(history=[ci, TEMPLATE])).source == "kubernetes"  # type: ignore[union-attr]


def test_the_store_finds_namespace_wide_events_only_through_the_namespace(tmp_path: Path) -> None:
    store = ChangeStore(Database(tmp_path / "c.db"))
    (stored, duplicate) = store.record_external(FLAG, event_id="flag-1")
    assert duplicate is False and stored.id is not None
    assert store.record_external(FLAG, event_id="flag-1") == (stored, True)
    since = AT - timedelta(hours=1)
    assert store.changes_for([ObjectRef("Deployment", NS, "checkout")], since) == []
    (found,) = store.changes_for([ObjectRef("Namespace", None, NS)], since)
    assert found.source == "flags" and found.link == FLAG.link and found.ref == FLAG.ref
    assert [c.summary for c in store.query(since=since, namespace=NS)] == ["new_payment flag on"]


def test_the_digest_has_a_section_for_changes_from_outside(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900 - timedelta(hours=5)), Outbox()
    changes, _, sender = setup(tmp_path, clock, outbox)
    t = MONDAY_0900 - timedelta(hours=5)
    record(changes, t, ChangeKind.IMAGE, "shop", "checkout", "image web: app:1.4.2 → app:1.4.3")
    flag = Change(ObjectRef("Namespace", None, "shop"), t, ChangeKind.EXTERNAL, "new_payment on", source="flags")
    ci = Change(
        ObjectRef("Deployment", "ops", "grafana"), t, ChangeKind.EXTERNAL, "deploy 9f", actor="gha", source="ci"
    )
    changes.record_external(flag, event_id="f1")
    changes.record_external(ci, event_id="c1")
    clock.now = MONDAY_0900 + timedelta(seconds=1)
    sender.send_due()
    shop, ops = dict(outbox.posts)["C-SHOP"], dict(outbox.posts)["C-OPS"]
    assert "Changes from outside the cluster (1)" in shop and "• shop: [flags] new_payment on" in shop
    assert "Deploys (1)" in shop and "grafana" not in shop
    assert "• ops: [ci] deployment/grafana deploy 9f by gha" in ops and "new_payment" not in ops


# -- GitOps and Helm ----------------------------------------------------------------------------------------


def deployment(labels: dict[str, str], annotations: dict[str, str]) -> KubeObject:
    return {
        "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "shop", "labels": labels, "annotations": annotations},
        "spec": {"replicas": 2},
    }


ARGO = deployment(
    {"app.kubernetes.io/instance": "shop-checkout"},
    {"argocd.argoproj.io/tracking-id": "shop-checkout:apps/Deployment:shop/checkout"},
)
FLUX = deployment(
    {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}, {}
)
FLUX_HELM = deployment(
    {
        "helm.toolkit.fluxcd.io/name": "checkout",
        "helm.toolkit.fluxcd.io/namespace": "shop",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": "checkout-1.4.3",
    },
    {"meta.helm.sh/release-name": "checkout", "meta.helm.sh/release-namespace": "shop"},
)
HELM = deployment(
    {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "checkout-1.4.3"}, {"meta.helm.sh/release-name": "shop"}
)


def test_management_names_the_tool_the_application_and_the_revision() -> None:
    assert management(ARGO) == Management("argocd", "shop-checkout", None, "argocd-application-controller")
    assert management(FLUX) == Management("flux", "flux-system/apps", None, "kustomize-controller")
    assert management(FLUX_HELM) == Management("flux", "shop/checkout", "checkout-1.4.3", "helm-controller")
    assert management(HELM) == Management("helm", "shop", "checkout-1.4.3", "helm")
    assert management(deployment({"app.kubernetes.io/instance": "x"}, {})) is None  # a Helm-style label alone
    assert management(deployment({}, {})) is None


def test_a_recorded_change_of_a_managed_object_names_the_source_and_the_controller() -> None:
    def fingerprint(value: str) -> str:
        return "hmac:x"

    old = snapshot("Deployment", ARGO, fingerprint=fingerprint)
    changed: KubeObject = {**ARGO, "spec": {"replicas": 5}}
    new = snapshot("Deployment", changed, fingerprint=fingerprint)
    change = build_change(old, new, obj=changed, at=AT)
    assert change is not None
    assert change.source == "kubernetes"
    assert change.managed_by == Management("argocd", "shop-checkout", None, "argocd-application-controller")
    assert change.actor == "Argo CD (app shop-checkout)"  # no managedFields: the controller that applies it
    assert change.to_json()["managed_by"]["name"] == "shop-checkout"


def test_the_rollback_warning_says_what_to_do_instead() -> None:
    ref = ObjectRef("Deployment", "shop", "checkout")
    argo = rollback_warning(ARGO, ref)
    assert argo is not None and "Argo CD" in argo and "argocd app rollback shop-checkout" in argo
    assert "revert the commit" in argo
    flux = rollback_warning(FLUX, ref)
    assert flux is not None and "flux suspend kustomization apps -n flux-system" in flux
    helm = rollback_warning(HELM, ref)
    assert helm is not None and "helm rollback shop -n shop" in helm
    assert rollback_warning(deployment({}, {}), ref) is None
