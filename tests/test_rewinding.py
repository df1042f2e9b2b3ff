"""Rewinding a recorded state (pure): undoing changes newest first, field by field, with paths whose
keys hold dots, list items added and removed, and objects created or deleted since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.changes.rewinding import leaves, rewind, undo
from bot.model import Change, ChangeKind, FieldChange, ObjectRef

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
REF = ObjectRef("Deployment", "shop", "web")
CONTAINER = "spec.template.spec.containers[0]"


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def change(minutes: float, kind: ChangeKind, *fields: tuple[str, Any, Any], id: int) -> Change:
    return Change(REF, ago(minutes), kind, str(kind), tuple(FieldChange(*f) for f in fields), id=id)


def newest() -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/restartedAt": "T2"},
            "labels": {"app": "web", "app.kubernetes.io/name": "web"},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "b", "env": [{"name": "B", "value": "2"}]}]}},
        },
    }


HISTORY = [
    change(180, ChangeKind.CREATED, id=1),
    change(60, ChangeKind.IMAGE, (f"{CONTAINER}.image", "a", "b"), id=2),
    change(
        30,
        ChangeKind.SPEC,
        (f"{CONTAINER}.env[0]", {"name": "A", "value": "1"}, None),
        (f"{CONTAINER}.env[0]", None, {"name": "B", "value": "2"}),
        id=3,
    ),
    change(20, ChangeKind.SCALE, ("spec.replicas", 3, 0), id=4),
    change(
        10,
        ChangeKind.METADATA,
        ("metadata.labels.app.kubernetes.io/name", None, "web"),
        ("metadata.annotations.kubectl.kubernetes.io/restartedAt", "T1", "T2"),
        ("metadata.labels.team", "x", None),
        id=5,
    ),
]


def test_each_moment_gets_the_state_it_had() -> None:
    at_90 = rewind(newest(), HISTORY, ago(90)).body
    assert at_90 is not None
    assert at_90["spec"]["replicas"] == 3
    assert at_90["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "a", "env": [{"name": "A", "value": "1"}]}
    ]
    assert at_90["metadata"]["labels"] == {"app": "web", "team": "x"}  # a dotted key gone, a removed one back
    assert at_90["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "T1"}
    assert at_90["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    at_25 = rewind(newest(), HISTORY, ago(25)).body
    assert at_25 is not None and at_25["spec"]["replicas"] == 3
    assert at_25["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    assert rewind(newest(), HISTORY, ago(5)).body == newest()


def test_what_changed_since_newest_first_and_the_fields() -> None:
    rewound = rewind(newest(), HISTORY, ago(45))
    assert [c.id for c in rewound.since] == [5, 4, 3]
    assert "spec.replicas" in rewound.changed_paths and f"{CONTAINER}.image" not in rewound.changed_paths
    assert rewound.problems == ()


def test_before_creation_it_did_not_exist_and_after_deletion_its_state_is_gone() -> None:
    before = rewind(newest(), HISTORY, ago(200))
    assert before.body is None and not before.existed
    deleted = [*HISTORY, change(5, ChangeKind.DELETED, id=6)]
    after_delete = rewind(None, deleted, ago(8))
    assert after_delete.existed and after_delete.body is None


def test_a_path_that_does_not_fit_is_reported_not_raised() -> None:
    odd = [change(5, ChangeKind.SPEC, ("spec.replicas[3]", 1, 2), id=7)]
    rewound = rewind(newest(), odd, ago(10))
    assert rewound.problems and "change 7" in rewound.problems[0]
    assert rewound.body == newest()


def test_undo_puts_back_a_field_under_a_parent_that_went_with_it() -> None:
    state: dict[str, Any] = {"spec": {}}
    assert undo(state, "spec.strategy.rollingUpdate.maxSurge", before="25%", after=None) == {
        "spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}}}
    }


def test_leaves_render_paths_like_the_change_history() -> None:
    assert ("spec.template.spec.containers[0].env[0].name", "B") in leaves(newest())
    assert ("metadata.labels.app.kubernetes.io/name", "web") in leaves(newest())
