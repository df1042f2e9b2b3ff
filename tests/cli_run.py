"""Running `k8sbot` (k8sbot.cli.main) in-process as a person would, for the hostile-input tests.

`clean_cli_env` gives main() an environment with no settings from the caller, a private database and
no cluster; `run_cli` runs it in a thread so that a hang fails the test (a liveness bound, not a
speed assertion) and a raised exception (a traceback for the person) fails it too.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bot.settings import ENV
from k8sbot.cli import main

LIVENESS = 30.0
"""Seconds after which a call is taken to hang. Generous (what is refused is answered in milliseconds
or, for a file of thousands of mistakes, a second or two) so that a loaded machine is not a hang."""


def clean_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No K8SBOT_*/SLACK_* settings from the caller, K8SBOT_DB in `tmp_path`, an absent kubeconfig (an
    unconfigured client: these commands must fail on their files before they need a cluster)."""
    for variable in (*ENV.values(), "K8SBOT_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("K8SBOT_DB", str(tmp_path / "bot.db"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig.yaml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], *, within: float = LIVENESS) -> tuple[int, str]:
    """main(argv) in a thread; its exit code and stderr. Fails if it hangs or raises (a traceback)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["code"] = main(argv)
        except BaseException as e:  # reported below as the failure
            outcome["error"] = e

    thread = threading.Thread(target=target, name="k8sbot-cli", daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"k8sbot {' '.join(argv)} was still running after {within:g}s"
    if "error" in outcome:
        raise AssertionError(f"k8sbot {' '.join(argv)} raised instead of printing one line") from outcome["error"]
    return int(outcome["code"]), capsys.readouterr().err


def one_line(stderr: str) -> str:
    """The single line a refusal prints (no traceback, nothing else)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr[:2000]}"
    assert "Traceback" not in stderr
    return lines[0]
