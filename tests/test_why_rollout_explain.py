"""explain() during rollouts, over hand-built namespaces (issue 15, item 6): the failure of a revision on
its way out is not today's cause, a change that undid it is never blamed, and no suggestion goes back to
a revision whose pods fail or that someone rolled back from."""

from __future__ import annotations

import json
from typing import Any

from test_analyzers_workloads import IMAGE_V1, NS, deployment, node, replicaset, rs_pod, service, template
from test_why_explain import RecordedHistory, crash_namespace, why

from bot.model import Category, KubeObject

BAD = "shop/checkout:1.5.0-rc0"
PULL = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{BAD}"'}}
CRASH = {"waiting": {"reason": "CrashLoopBackOff"}}
EXIT_1 = {"exitCode": 1, "reason": "Error"}


def reused(rs: KubeObject, *earlier: int) -> KubeObject:
    """The ReplicaSet a rollback reused: the controller notes the revision numbers it had before."""
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] = ",".join(map(str, earlier))
    return rs


def terminating(pod: KubeObject) -> KubeObject:
    pod["metadata"]["deletionTimestamp"] = "2026-03-01T11:59:50Z"
    return pod


def _text(diagnosis: Any) -> str:
    return json.dumps(diagnosis.to_json())


def test_rollback_in_progress_says_so_and_what_to_watch() -> None:
    """Rolled back to revision 1's template (now 3): 1 of 2 ready, the failed revision 2 pod not gone yet."""
    objects = [
        deployment(tmpl=template(), revision=3, ready=1),
        service(),
        node(),
        reused(replicaset(3, template(), replicas=2, ready=1), 1),
        replicaset(2, template(BAD), replicas=0, ready=0),
        rs_pod(3, 0),
        rs_pod(3, 1, ready=False, state={"waiting": {"reason": "ContainerCreating"}}),
        rs_pod(2, 0, state=PULL, ready=False, image=BAD),
    ]
    diagnosis = why(objects)
    top = diagnosis.causes[0]
    assert top.category == Category.ROLLOUT_IN_PROGRESS
    assert "rolling out" in diagnosis.summary and "1 of 2 pods ready" in diagnosis.summary
    assert "revision 1's template (now revision 3" in diagnosis.summary
    assert top.change is None
    assert top.suggestion is not None and "watch" in top.suggestion.text.lower()
    assert "--to-revision" not in _text(diagnosis)


def test_a_new_fix_rolling_out_over_a_failed_revision() -> None:
    """Revision 2 failed (bad image); revision 3 (a fixed image) is taking over: not a rollback, still a fix."""
    fixed = "shop/checkout:1.5.0"
    objects = [
        deployment(tmpl=template(fixed), revision=3, ready=2),
        service(),
        node(),
        replicaset(1, template(), replicas=0, ready=0),
        replicaset(2, template(BAD), replicas=0, ready=0),
        replicaset(3, template(fixed), replicas=2, ready=2),
        rs_pod(3, 0, image=fixed),
        rs_pod(3, 1, image=fixed),
        terminating(rs_pod(2, 0, state=PULL, ready=False, image=BAD)),
    ]
    diagnosis = why(objects)
    assert diagnosis.causes[0].category == Category.ROLLOUT_IN_PROGRESS
    assert "recovering" in diagnosis.summary and "revision 3 (image shop/checkout:1.5.0)" in diagnosis.summary
    assert "failed revision 2" in diagnosis.summary and "terminating" in diagnosis.summary
    assert "--to-revision" not in _text(diagnosis)


def test_after_a_rollback_a_new_failure_never_suggests_the_abandoned_revision() -> None:
    """Revision 2 was rolled back from (3 = revision 1's template); now revision 3 crashes. The good
    revision to go back to is not 2 (abandoned), and with no other, no rollback is offered."""
    objects = [
        deployment(tmpl=template(), revision=3, ready=0),
        service(),
        node(),
        replicaset(2, template(BAD), replicas=0, ready=0),
        reused(replicaset(3, template(), replicas=2, ready=0), 1),
        rs_pod(3, 0, state=CRASH, last=EXIT_1, ready=False),
        rs_pod(3, 1, state=CRASH, last=EXIT_1, ready=False),
    ]
    diagnosis = why(objects)
    assert diagnosis.causes[0].category == Category.CRASH_LOOP
    text = _text(diagnosis)
    assert "--to-revision 2" not in text and BAD not in text, text


def test_a_failing_fix_is_blamed_against_the_last_good_revision_not_the_failed_one() -> None:
    """Revision 2 failed (bad image); revision 3 (another image) crashes too, while revision 1 still
    serves. The culprit is revision 3's change against revision 1, never a rollback to revision 2."""
    other = "shop/checkout:1.5.1"
    objects = [
        deployment(tmpl=template(other), revision=3, ready=2),
        service(),
        node(),
        replicaset(1, template(), replicas=2, ready=2),
        replicaset(2, template(BAD), replicas=0, ready=0),
        replicaset(3, template(other), replicas=1, ready=0),
        rs_pod(1, 0),
        rs_pod(1, 1),
        rs_pod(2, 0, state=PULL, ready=False, image=BAD),
        rs_pod(3, 0, state=CRASH, last=EXIT_1, ready=False, image=other),
    ]
    diagnosis = why(objects)
    top = diagnosis.causes[0]
    assert top.category == Category.CRASH_LOOP, diagnosis
    assert Category.IMAGE_PULL not in [c.category for c in diagnosis.causes]  # revision 2 is going away
    assert top.suggestion is not None and top.suggestion.command is not None
    assert top.suggestion.command.endswith("--to-revision 1"), top.suggestion
    assert top.change is not None and top.change.before == IMAGE_V1 and top.change.after == other
    assert NS in top.suggestion.command


def test_a_weaker_cause_with_a_change_attached_does_not_take_the_first_line() -> None:
    """One pod is OOM-killed, another crashes; a ConfigMap edit explains the crash (not the OOM kill).
    The OOM kill is the stronger explanation: it leads, and the crash keeps its culprit below it."""
    objects = crash_namespace()
    objects.append(
        rs_pod(1, 1, state=CRASH, last={"exitCode": 137, "reason": "OOMKilled"}, ready=False),
    )
    diagnosis = why(objects, history=RecordedHistory())
    categories = [c.category for c in diagnosis.causes]
    assert categories[:2] == [Category.OOM_KILLED, Category.CRASH_LOOP], categories
    assert diagnosis.causes[1].change is not None and diagnosis.causes[1].change.path == "data.PAYMENT_URL"
    assert diagnosis.summary.startswith("Deployment checkout is not healthy: container app is killed")
