"""A process of the bot whose log (stderr) lines are collected as they come, for tests that run it as
a whole process: `python -m k8sbot run` (tests/test_shutdown.py) or the image under podman
(tests/image_helpers.py)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path


class LoggedProcess:
    """`command` started with `env` (and `cwd`); `lines` fills from its stderr in a thread of its own."""

    what = "the bot"
    """How a failure names it ("the bot exited 1: ...")."""
    start_timeout = 60.0
    """How long `wait_url` waits by default."""

    def __init__(self, command: Sequence[str], *, env: dict[str, str], cwd: Path | None = None) -> None:
        self.command = list(command)
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            self.command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_url(self, timeout: float | None = None) -> str:
        """The base URL the bot logs it serves on, once it does (it binds port 0 in tests)."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(r"serving .* on (http://\S+)", line)
                if found:
                    return found.group(1)
            assert self.process.poll() is None, f"{self.what} exited {self.process.returncode}:\n{self.log}"
            time.sleep(0.1)
        raise AssertionError(f"{self.what} did not start serving within {timeout:g}s:\n{self.log}")
