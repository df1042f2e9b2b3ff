"""Hostile names in the words `why` now uses (issue 15, item 5): the changed field is named by what the
cluster calls it (an env var's name, a ConfigMap key), and such names are untrusted text. An env var
named like a Slack broadcast must not ping anyone, through Slack, in the answer and in its alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scenarios import _template_patch, _wait_symptom, _waiting, deploy_checkout

from bot.errors import K8sBotError
from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import running_bot
from tests.why_helpers import ask_json, shown_text, slack_ask

pytestmark = pytest.mark.hostile

HOSTILE = "<!channel>_X"


@pytest.mark.kwok
def test_an_env_var_named_like_a_broadcast_pings_nobody(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    try:
        _template_patch(
            kube,
            app,
            {"env": [{"name": HOSTILE, "value": "<@U0ALICE01> <https://evil.example|click>"}]},
            scenario="crashloop",
            annotations={"sim.k8sbot.dev/reason": "Error", "sim.k8sbot.dev/exit-code": "1"},
        )
    except K8sBotError as refused:  # an API server with strict env var names refuses it: nothing to show
        pytest.skip(f"this API server refuses the name: {refused}")
    _wait_symptom(kube, app, "a pod in CrashLoopBackOff", _waiting("CrashLoopBackOff"))
    data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path)
    assert data["causes"][0]["change"]["what"] == f"env var {HOSTILE} of container app", data
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), kube=kube):
        message = slack_ask(slack, f"why checkout -n {namespace}", channel="C0OPS0001")
    assert "env var" in shown_text(message)
    assert slack.lints(kind="broadcast_ping") == []
    assert slack.lints(kind="raw_angle_bracket") == []
    assert "<!channel>" not in shown_text(message) and "<@U0ALICE01>" not in shown_text(message)
