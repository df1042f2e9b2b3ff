"""`why` during and right after a rollout (issue 15, item 6): never point backwards into the failure.

The demo case: a bad image (revision 2), then a confirmed rollback (revision 3, revision 1's template),
and `why` asked while the failed revision's pod is still terminating. The answer must say the rollback
is under way or done and what to watch; it must not blame the rollback (the change that undid the
failure) and must never suggest a revision whose pods are failing. Through `k8sbot ask --json` (no
change history: revisions only) and through Slack (the running bot's recorded history).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import Observed, get, pods, revision_of, rollback_to, wait_for
from scenarios import break_image, deploy_checkout

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.why_helpers import ask_json, hold_pods, recording_bot, release_pods, shown_text, slack_ask


def _rolled_back(kube: KubeClient, namespace: str, held: tuple[str, ...]) -> Observed:
    d = get(kube, "apps/v1", "Deployment", namespace, "checkout")
    status = d.get("status") or {}
    terminating = [
        p["metadata"]["name"]
        for p in pods(kube, namespace, "app=checkout")
        if p["metadata"]["name"] in held and p["metadata"].get("deletionTimestamp")
    ]
    ok = (
        revision_of(d) == 3
        and status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and int(status.get("readyReplicas") or 0) >= 2
        and int(status.get("updatedReplicas") or 0) >= 2
        and bool(terminating)
    )
    return Observed(ok, {"revision": revision_of(d), "status": status, "terminating": terminating}, True)


def _assert_points_forward(answer: str, bad_image: str) -> None:
    assert "--to-revision 2" not in answer, answer
    assert "to revision 2" not in answer, answer  # a rollback *to* the failed revision
    assert "Roll back" not in answer, answer


@pytest.mark.kwok
def test_why_right_after_a_rollback_says_so_and_blames_nothing_backwards(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    try:
        with recording_bot(slack, kube, cluster, namespace, tmp_path):
            breakage = break_image(kube, app)  # revision 2: ImagePullBackOff, old pods keep serving
            hold_pods(kube, namespace, breakage.pods)  # its pod shuts down slowly
            rollback_to(kube, namespace, "checkout", 1)  # revision 3: revision 1's template
            wait_for(lambda: _rolled_back(kube, namespace, breakage.pods), 60, "the rollback to be done")
            data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path)
            message = slack_ask(slack, f"why checkout -n {namespace}")
    finally:
        release_pods(kube, namespace)

    shown = shown_text(message)
    for answer in (json.dumps(data), shown):
        _assert_points_forward(answer, str(breakage.after))
    top = data["causes"][0]
    assert top["category"] == "rollout_in_progress", data
    # First line: what is going on now, not the failure that is going away.
    summary = data["summary"]
    assert "can't be pulled" not in summary, summary
    assert "revision 3" in summary and "revision 2" in summary, summary
    assert "terminating" in summary, summary
    # The change that undid the failure is not blamed for anything.
    for cause in data["causes"]:
        change = cause["change"]
        assert change is None or change["after"] != app.image, cause
    # What to watch.
    assert top["suggestion"] is not None and "watch" in top["suggestion"]["text"].lower(), top
    assert "rollout_in_progress" in shown and "revision 3" in shown, shown
