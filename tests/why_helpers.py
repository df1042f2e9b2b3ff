"""What the `why` cluster tests share: `k8sbot ask --json` in a subprocess (this checkout's code), a
`/k8s why` typed in the Slack emulator and the answer it posts, one answering bot for a whole test
module, and the real bot with its watchers recording one namespace's changes (so `why` has a change
history to blame)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kube_helpers import bind_role, patch, pods

from bot.kube.client import KubeClient
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from tests.slack_harness import ALICE, OPS, SHOP, running_bot, seeded_emulator, wait_answer

POLICY = """
roles:
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-why-edit]}}
defaults: {{role: null}}
"""
REPO = Path(__file__).resolve().parent.parent
HOLD = "k8sbot.dev/test-hold"
"""A finalizer that keeps a deleted pod Terminating (as a slow shutdown does) until the test lets go."""


def ask_json(
    kubeconfig: str, text: str, tmp_path: Path, *, db: Path | None = None, flags: Sequence[str] = ()
) -> dict[str, Any]:
    """`python -m k8sbot ask TEXT --json` in its own process, as a person runs it: THIS checkout's code
    (PYTHONPATH, not the venv's installed copy), no setting from the caller's environment, and the
    database `db` (a running bot's, to read its recorded history) or a fresh one (what `ask` without a
    running bot knows). `flags` go after TEXT (`--yes`). Its JSON answer."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": kubeconfig,
        "PYTHONPATH": str(REPO),  # this checkout's code, not the one the venv has installed
    }
    result = subprocess.run(
        [sys.executable, "-m", "k8sbot", "ask", text, *flags, "--json"],
        env={**env, "K8SBOT_DB": str(db or tmp_path / "ask.db")},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def slack_ask(emu: SlackEmulator, text: str, *, channel: str = SHOP) -> dict[str, Any]:
    """Send /k8s TEXT as Alice; the answer message (blocks) that replaced the placeholder."""
    before = len(emu.response_posts())
    result = emu.driver.slash_command(text, user_id=ALICE, channel_id=channel)
    assert result.ok and not result.timed_out
    answer = wait_answer(emu, before, what=f"the answer to /k8s {text}", timeout=60)
    assert all(p.status == 200 for p in emu.response_posts()[before:])
    return answer


def slack_why(emu: SlackEmulator, text: str, *, channel: str = OPS) -> str:
    """Send /k8s TEXT as Alice (in #ops by default); the answer's blocks as JSON text."""
    return json.dumps(slack_ask(emu, text, channel=channel)["blocks"])


@contextmanager
def answering_bot(kube: KubeClient, tmp_path: Path) -> Iterator[SlackEmulator]:
    """A Slack emulator and the bot (HTTP mode) answering there with `kube`'s identity and no
    permissions file: one for a whole test module (each test asks about its own namespace)."""
    with clean_slack_env():
        emu = seeded_emulator()
        try:
            with running_bot(emu, mode="http", db=str(tmp_path / "bot.db"), kube=kube):
                yield emu
        finally:
            emu.stop()


def shown_text(message: dict[str, Any]) -> str:
    """The text a person reads in a Slack message: every block's text, buttons' labels and values."""
    parts: list[str] = []
    for block in message.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text")))
        for element in block.get("elements") or []:
            if isinstance(element.get("text"), dict):
                parts.append(str(element["text"].get("text")))
            elif element.get("text"):
                parts.append(str(element.get("text")))
            if element.get("value"):
                parts.append(str(element["value"]))
    return "\n".join(parts).replace("\u200b", "")  # the renderer's zero-width guards around backticks


@contextmanager
def recording_bot(
    emu: SlackEmulator, kube: KubeClient, cluster: Any, namespace: str, tmp_path: Path
) -> Iterator[BotRunner]:
    """The whole bot (`k8sbot run`): watchers record `namespace`'s changes from now on; Alice is an operator."""
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    bind_role(kube, namespace, "edit", group="team-why-edit")
    with running_bot(
        emu,
        mode="http",
        db=str(tmp_path / "bot.db"),
        background=True,
        kubeconfig=cluster.kubeconfig,
        permissions=str(permissions),
        watch_namespaces=[namespace],
        alert_settle_seconds=1.0,
        alert_resolve_seconds=2.0,
    ) as runner:
        assert runner.background is not None and runner.background.tracker.wait_synced(60)
        yield runner


def hold_pods(kube: KubeClient, namespace: str, names: tuple[str, ...]) -> None:
    for name in names:
        patch(kube, "v1", "Pod", namespace, name, {"metadata": {"finalizers": [HOLD]}}, kind_of_patch="merge")


def release_pods(kube: KubeClient, namespace: str) -> None:
    """Let go of every held pod (so the namespace can be deleted)."""
    for pod in pods(kube, namespace):
        if HOLD in (pod["metadata"].get("finalizers") or []):
            patch(
                kube,
                "v1",
                "Pod",
                namespace,
                pod["metadata"]["name"],
                {"metadata": {"finalizers": None}},
                kind_of_patch="merge",
            )


def slack_escaped(text: str) -> str:
    """`text` as Slack shows it after the bot's escaping (&, < and > as entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _loose(text: str) -> str:
    """Numbers that move between two reads a moment apart (restart counts, event counts, ages, times)
    compared as numbers, not values; and pods by their owner's name: which of a ReplicaSet's pods are
    listed (pending, or failing) moves between two reads too."""
    text = re.sub(r"\bpod ([a-z0-9-]+?)-[a-z0-9]{5}\b", r"pod \1-*", text)
    return re.sub(r"\d+", "#", text)


def _about(evidence: str) -> str:
    """What a line of evidence is about: `event BackOff` of `event BackOff ×2, last …: …`."""
    return re.split(r"[:,×]", evidence, maxsplit=1)[0].strip()


def assert_told(message: dict[str, Any], data: dict[str, Any]) -> str:
    """The Slack answer tells what `ask --json` answered for the same target: the top cause's title
    and category first, each line of its evidence, and its culprit change (the field in words, and
    who). Returns the text shown, for the caller's own checks."""
    shown = shown_text(message)
    lines = _loose(shown).splitlines()
    top = data["causes"][0]

    def told(text: str, where: list[str]) -> bool:
        return any(_loose(slack_escaped(text)) in line for line in where)

    # The title's last clause: its subject may move between the two reads (the Deployment's or its
    # ReplicaSet's condition says "can't create pods", whichever a controller wrote last).
    title = top["title"].rsplit(": ", 1)[-1]
    first = [line for line in lines if line.lstrip().startswith("#. ")][:1]  # "1. " once loose
    assert told(f"{title}  [{top['category']},", first), f"the top cause is not first:\n{shown}"
    # Each line of evidence by what it is about (`pod checkout-6d6c-2tbpp container app`, `event
    # BackOff`, `LimitRange container-limits`): the rest moves (event counts and times, the names of
    # pods a ReplicaSet failed to create).
    missing = [
        line
        for line in top["evidence"]
        if not line.startswith("… and ") and not told(f"• {_about(line)}", lines)  # how many more: moves
    ]
    assert missing == [], f"evidence not in the Slack answer: {missing}\n--- shown:\n{shown}"
    change = top["change"]
    if change is not None:
        changed = [line for line in lines if "Changed: " in line]
        assert told(change["what"], changed), f"the culprit {change['what']!r} is not named:\n{shown}"
        if change.get("actor"):
            assert told(f"by {change['actor']})", changed), f"who changed it is not said:\n{shown}"
    return shown
