"""Naming fields and values in a person's words, and picking the plausible field of an edit (issue 15,
items 5 and 7), over plain dicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.changes.diffing import describe, find_actor
from bot.diagnosis.culprits import Evidence, change_phrase, culprit, pick_field
from bot.kube.fields import differences_between, field_changes, name_of_rendered, show_value
from bot.kube.revisions import Revision, RevisionChange
from bot.model import Category, Change, ChangeKind, CulpritChange, FieldChange, ObjectRef

REF = ObjectRef("Deployment", "shop", "checkout")
AT = datetime(2026, 3, 1, 10, 42, tzinfo=UTC)


def _template(**container: object) -> dict[str, object]:
    return {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "app", **container}]}}


@pytest.mark.parametrize(
    ("before", "after", "label"),
    [
        (_template(image="a:1"), _template(image="a:2"), "image of container app"),
        (
            _template(env=[{"name": "X", "value": "1"}, {"name": "DB_URL", "value": "a"}]),
            _template(env=[{"name": "X", "value": "1"}, {"name": "DB_URL", "value": "b"}]),
            "env var DB_URL of container app",
        ),
        (
            _template(resources={"limits": {"memory": "256Mi"}}),
            _template(resources={"limits": {"memory": "48Mi"}}),
            "memory limit of container app",
        ),
        (_template(args=["--a"]), _template(args=["--b"]), "args of container app"),
        (
            _template(readinessProbe={"httpGet": {"path": "/a"}}),
            _template(readinessProbe={"httpGet": {"path": "/b"}}),
            "readiness probe httpGet.path of container app",
        ),
    ],
)
def test_template_fields_are_named_as_a_person_names_them(
    before: dict[str, object], after: dict[str, object], label: str
) -> None:
    [change] = field_changes(before, after, prefix="spec.template")
    assert change.label == label


def test_values_are_words_not_python_reprs() -> None:
    entry = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    assert show_value(entry) == "from Secret db key password"
    assert show_value({"name": "A", "value": "1"}) == "1"
    assert show_value(["--port", "8080"]) == "--port 8080"
    assert show_value(None) == "(none)"
    assert "{" not in show_value({"limits": {"memory": "1Gi"}})


def test_rendered_paths_of_older_records_are_still_named() -> None:
    assert name_of_rendered("data.app.properties") == "key app.properties"
    assert name_of_rendered("spec.selector.app") == "selector app"
    assert (
        name_of_rendered("spec.template.metadata.labels.app.kubernetes.io/name") == "pod label app.kubernetes.io/name"
    )


def test_change_summary_names_the_env_var() -> None:
    old = {"spec": {"template": _template(env=[{"name": "DB_URL", "value": "a"}], ports=[{"containerPort": 1}])}}
    new = {"spec": {"template": _template(env=[{"name": "DB_URL", "value": "b"}], ports=[{"containerPort": 2}])}}
    summary = describe(REF, differences_between(old, new)).summary
    assert summary.startswith("env var DB_URL of container app: a → b"), summary
    assert "env[" not in summary


def test_culprit_phrase_for_an_added_secret_reference() -> None:
    change = CulpritChange(
        REF,
        AT,
        "alice",
        2,
        "spec.template.spec.containers[0].env[0]",
        None,
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        "env var DB_PASSWORD of container app",
    )
    assert change_phrase(change) == "env var DB_PASSWORD of container app was added (from Secret db key password)"


def test_a_label_in_the_same_edit_is_not_blamed() -> None:
    fields = [
        FieldChange("spec.template.metadata.labels.team", "a", "b", "pod label team"),
        FieldChange("spec.template.spec.containers[0].args", ["--a"], ["--b"], "args of container app"),
    ]
    for category in (Category.ROLLOUT_STUCK, Category.CRASH_LOOP, Category.JOB_FAILED):
        picked = pick_field(category, fields)
        assert picked is not None and picked.path.endswith("args"), category
    assert pick_field(Category.ROLLOUT_STUCK, fields[:1]) is None  # a label alone explains no stuck rollout


def test_a_newer_label_edit_does_not_hide_the_older_real_change() -> None:
    history = [
        Change(REF, AT, ChangeKind.SPEC, "image", (FieldChange("spec.template.spec.containers[0].image", "a", "b"),)),
        Change(
            REF, AT.replace(hour=11), ChangeKind.METADATA, "label", (FieldChange("metadata.labels.owner", "x", "y"),)
        ),
        Change(REF, AT.replace(hour=12), ChangeKind.CREATED, "created"),
    ]
    blamed = culprit(Category.ROLLOUT_STUCK, Evidence(workload=REF, history=history))
    assert blamed is not None and blamed.path.endswith(".image") and blamed.what == "image of container #0"


def test_env_args_command_can_explain_an_oom_but_the_limit_wins_in_one_edit() -> None:
    env = FieldChange(
        "spec.template.spec.containers[0].env[0].value", "64", "2048", "env var CACHE_MB of container app"
    )
    limit = FieldChange("spec.template.spec.containers[0].resources.limits.memory", "256Mi", "48Mi")
    assert pick_field(Category.OOM_KILLED, [env]) == env
    assert pick_field(Category.OOM_KILLED, [env, limit]) == limit


def _managed(manager: str, **meta: object) -> dict[str, object]:
    return {
        "metadata": {
            **meta,
            "managedFields": [
                {"manager": manager, "operation": "Update", "time": "2026-03-01T10:00:00Z", "fieldsV1": {"f:spec": {}}}
            ],
        }
    }


def test_a_generic_client_manager_gives_way_to_the_deployer_it_carries() -> None:
    argo = _managed("kubectl-client-side-apply", labels={"argocd.argoproj.io/instance": "shop-checkout"})
    assert find_actor(argo, [("spec", "replicas")]) == "Argo CD (app shop-checkout) via kubectl-client-side-apply"
    helm = _managed("Go-http-client", annotations={"meta.helm.sh/release-name": "shop"})
    assert find_actor(helm, [("spec",)]) == "Helm (release shop) via Go-http-client"
    # A tool that names itself stays; with nothing better known, the manager stays as recorded.
    assert find_actor(_managed("kubectl-edit", labels={"argocd.argoproj.io/instance": "x"}), [("spec",)]) == (
        "kubectl-edit"
    )
    assert find_actor(_managed("OpenAPI-Generator"), [("spec",)]) == "OpenAPI-Generator"


def test_the_bots_own_writes_name_the_person() -> None:
    assert find_actor(_managed("k8sbot/U0ALICE01"), [("spec",)]) == "Slack user U0ALICE01 (via k8sbot)"


def test_a_weakly_fitting_recent_edit_gives_way_to_a_plausible_template_change() -> None:
    """A stuck rollout: the newest recorded edit touched only the rollout strategy (it fits "anything"),
    the revision diff changed the container's args. The args change is blamed."""
    rs: dict[str, object] = {}
    revision = RevisionChange(
        REF,
        Revision(1, rs, AT, 2, 2),
        Revision(2, rs, AT, 0, 1),
        (FieldChange("spec.template.spec.containers[0].args", ["--a"], ["--b"], "args of container app"),),
        AT,
        "kubectl-edit",
    )
    history = [
        Change(REF, AT.replace(hour=11), ChangeKind.SPEC, "strategy", (FieldChange("spec.strategy.type", "A", "B"),))
    ]
    blamed = culprit(Category.ROLLOUT_STUCK, Evidence(workload=REF, revision=revision, history=history))
    assert blamed is not None and blamed.what == "args of container app", blamed
    # Without a better source, the weak edit is still named.
    alone = culprit(Category.ROLLOUT_STUCK, Evidence(workload=REF, history=history))
    assert alone is not None and alone.path == "spec.strategy.type"


def test_older_records_name_list_items_from_the_object_as_it_is_now() -> None:
    deployment = {"spec": {"template": _template(env=[{"name": "A", "value": "1"}, {"name": "DB_URL", "value": "b"}])}}
    path = "spec.template.spec.containers[0].env[1].value"
    assert name_of_rendered(path, deployment) == "env var DB_URL of container app"
    assert name_of_rendered(path) == "env var #1 of container #0"
    history = [Change(REF, AT, ChangeKind.SPEC, "env", (FieldChange(path, "a", "b"),))]  # recorded without a label
    blamed = culprit(Category.CRASH_LOOP, Evidence(workload=REF, history=history, current=deployment))
    assert blamed is not None and blamed.what == "env var DB_URL of container app"


@pytest.mark.parametrize(
    ("category", "derived", "said"),
    [
        (
            Category.CRASH_LOOP,
            CulpritChange(
                ObjectRef("ConfigMap", "shop", "checkout-config"), AT, "alice", None, "data.FLAGS", None, None
            ),
            "key FLAGS of ConfigMap checkout-config was changed",
        ),
        (
            Category.NODE_NOT_READY,
            CulpritChange(ObjectRef("Node", None, "n1"), AT, None, None, "status.conditions.Ready", "True", "False"),
            "condition Ready of Node n1 changed from True to False",
        ),
        (
            Category.HPA_LIMITED,
            CulpritChange(
                ObjectRef("HorizontalPodAutoscaler", "shop", "checkout"), AT, "alice", None, "spec.maxReplicas", None, 1
            ),
            "maxReplicas of HorizontalPodAutoscaler checkout",
        ),
    ],
)
def test_changes_read_from_other_objects_are_named_in_words(
    category: Category, derived: CulpritChange, said: str
) -> None:
    """A change read from the object itself (a ConfigMap's managedFields, a node condition's
    transition, an autoscaler's last write) is named like a recorded one: the field in words and its
    object, never the API's path (`ConfigMap checkout-config data.FLAGS was changed`)."""
    blamed = culprit(category, Evidence(workload=REF, derived=[derived]))
    assert blamed is not None and blamed.path == derived.path, blamed
    assert change_phrase(blamed, target=REF).startswith(said), change_phrase(blamed, target=REF)
