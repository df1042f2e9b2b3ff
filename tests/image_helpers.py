"""The built container image (scripts/build-image) run with podman, for tests/test_image.py and the
chart's smoke test in tests/test_helm_chart.py.

`built_image()` runs scripts/build-image (a warm run whose inputs are unchanged returns at once) and
skips, with the reason, only where podman is missing. `BotContainer` runs `k8sbot run --http` from the
image as tests/test_shutdown.py's `BotProcess` runs it from the venv: read-only root filesystem, a
non-root user, host networking (the emulator and the API server listen on loopback), the database on a
writable bind mount, the kubeconfig and the config files mounted read-only.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import REPO
from logged_process import LoggedProcess

IMAGE = os.environ.get("K8SBOT_IMAGE", "localhost/k8sbot:dev")
PODMAN_FLAGS = os.environ.get("K8SBOT_PODMAN_FLAGS", "--cgroup-manager=cgroupfs --runtime runc").split()
USER = "10001:10001"
"""The image's user; the bind mounts are made writable or readable for it."""


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *PODMAN_FLAGS, *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def built_image() -> str:
    """The image, built (or found up to date) by scripts/build-image."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install -y podman runc debootstrap): the image cannot run")
    result = subprocess.run(
        [str(REPO / "scripts" / "build-image")],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={**os.environ, "K8SBOT_IMAGE": IMAGE},
    )
    assert result.returncode == 0, f"scripts/build-image failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
    return IMAGE


def _limit(name: str) -> int:
    """podman may not raise rlimits here (no CAP_SYS_RESOURCE): ask for at most the current soft limit."""
    soft, _ = resource.getrlimit(getattr(resource, name))
    return 1024 if soft == resource.RLIM_INFINITY else min(1024, soft)


def ulimits() -> list[str]:
    """`podman run` flags: rlimits at or below this process's (the runtime may not raise them)."""
    files, processes = _limit("RLIMIT_NOFILE"), _limit("RLIMIT_NPROC")
    return ["--ulimit", f"nofile={files}:{files}", "--ulimit", f"nproc={processes}:{processes}"]


def flat_kubeconfig(source: str | Path, target: Path) -> Path:
    """`kubectl config view --flatten`: the kubeconfig with every file it names inlined, so it alone
    can be mounted into the container; readable by the image's user only."""
    config = yaml.safe_load(Path(source).read_text())
    base = Path(source).parent
    for section, keys in (
        ("clusters", ("certificate-authority",)),
        ("users", ("client-certificate", "client-key")),
    ):
        for entry in config.get(section) or []:
            body = entry.get(section[:-1]) or {}
            for key in keys:
                if key in body:
                    body[f"{key}-data"] = base64.b64encode((base / body.pop(key)).read_bytes()).decode()
    target.write_text(yaml.safe_dump(config))
    owned_by_image_user(target, 0o600)
    return target


def owned_by_image_user(path: Path, mode: int) -> None:
    """The image's user (10001) owns `path` (podman as root maps it 1:1); rootless podman maps that
    user elsewhere, so there everyone may use it (a test's temporary directory)."""
    if os.geteuid() == 0:
        os.chown(path, 10001, 10001)
        path.chmod(mode)
    else:
        path.chmod(0o777 if path.is_dir() else 0o644)


class BotContainer(LoggedProcess):
    """`k8sbot run --http` in the image; `env` as tests/test_shutdown.py's `bot_env` (host paths of the
    database, config and kubeconfig are replaced by mounts). Its stderr lines are collected."""

    what = "the bot in the container"
    start_timeout = 90.0  # podman starts the container first

    def __init__(self, image: str, env: dict[str, str], workdir: Path, *, name: str | None = None) -> None:
        self.name = name or f"k8sbot-test-{uuid.uuid4().hex[:8]}"
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        owned_by_image_user(data, 0o700)
        env = dict(env)
        mounts = ["-v", f"{data}:/var/lib/k8sbot:rw"]
        env["K8SBOT_DB"] = "/var/lib/k8sbot/k8sbot.db"
        kubeconfig = flat_kubeconfig(env.pop("KUBECONFIG"), workdir / "kubeconfig.flat.yaml")
        mounts += ["-v", f"{kubeconfig}:/etc/k8sbot/kubeconfig:ro"]
        env["KUBECONFIG"] = "/etc/k8sbot/kubeconfig"
        config = Path(env.pop("K8SBOT_CONFIG"))
        loaded = yaml.safe_load(config.read_text())
        if "permissions" in loaded:
            mounts += ["-v", f"{loaded['permissions']}:/etc/k8sbot/permissions.yaml:ro"]
            loaded["permissions"] = "/etc/k8sbot/permissions.yaml"
        inside = workdir / "config.container.yaml"
        inside.write_text(yaml.safe_dump(loaded))
        inside.chmod(0o644)
        mounts += ["-v", f"{inside}:/etc/k8sbot/config.yaml:ro"]
        env["K8SBOT_CONFIG"] = "/etc/k8sbot/config.yaml"
        for key in ("PATH", "HOME", "PYTHONPATH"):
            env.pop(key, None)
        command = [
            "podman",
            *PODMAN_FLAGS,
            "run",
            "--rm",
            "--name",
            self.name,
            "--read-only",
            "--user",
            USER,
            "--network",
            "host",
            "--no-healthcheck",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            *ulimits(),
            "--stop-timeout",
            "60",
            *mounts,
            *[arg for key, value in sorted(env.items()) for arg in ("-e", f"{key}={value}")],
            image,
            "run",
            "--http",
        ]
        super().__init__(command, env=_podman_env())

    def wait_ready(self, url: str, timeout: float = 60) -> float:
        """Seconds from `podman run` until /readyz answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if status(url + "/readyz") == 200:
                return time.monotonic() - self.started
            assert self.process.poll() is None, f"the container exited {self.process.returncode}:\n{self.log}"
            time.sleep(0.1)
        raise AssertionError(f"/readyz did not answer 200 within {timeout:g}s:\n{self.log}")

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def terminate(self) -> None:
        """SIGTERM to the bot (the container's process 1), as the kubelet sends it."""
        result = podman("kill", "--signal", "TERM", self.name)
        assert result.returncode == 0, result.stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            podman("kill", "--signal", "KILL", self.name)
            self.process.wait(30)
        podman("rm", "-f", "--ignore", self.name)


def _podman_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("K8SBOT_", "SLACK_", "KUBECONFIG"))}


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def labels(image: str) -> dict[str, Any]:
    found = podman("image", "inspect", "--format", "{{json .Labels}}", image)
    assert found.returncode == 0, found.stderr
    return dict(json.loads(found.stdout))
