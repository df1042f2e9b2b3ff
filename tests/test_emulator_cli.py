"""``python -m slack_emulator`` runs standalone, seeded from a workspace file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from slack_sdk import WebClient

from slack_emulator.testing import clean_slack_env

ROOT = Path(__file__).resolve().parents[1]


def test_cli_serves_seeded_workspace(tmp_path: Path) -> None:
    config = tmp_path / "workspace.yaml"
    config.write_text(
        "settings: {signing_secret: demo-secret, bot_token: xoxb-demo}\n"
        "users:\n  - {id: U0ALICE01, name: alice, email: alice@example.com}\n"
        "channels:\n  - {id: C0OPS0001, name: ops, members: [U0ALICE01]}\n"
        "usergroups:\n  - {id: S0ONCALL1, handle: oncall, users: [U0ALICE01]}\n"
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "slack_emulator", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while "SLACK_API_URL" not in line:
            line = proc.stdout.readline()
            assert line, "emulator exited early"
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/)", line)
        assert match
        with clean_slack_env():
            client = WebClient(token="xoxb-demo", base_url=match.group(1))
            assert client.users_info(user="U0ALICE01")["user"]["name"] == "alice"
            assert client.usergroups_users_list(usergroup="S0ONCALL1")["users"] == ["U0ALICE01"]
            assert client.chat_postMessage(channel="C0OPS0001", text="hello")["ok"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
