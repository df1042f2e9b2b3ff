"""The container image: its size, and start-to-ready time (from `podman run` until `/readyz` is 200).

    scripts/build-image
    K8SBOT_TEST_KUBECONFIG=.local/kwok/clusters/k8sbot-dev/kubeconfig.yaml .venv/bin/python bench/image_start.py
    .venv/bin/python bench/image_start.py --runs 5 --image localhost/k8sbot:dev

Each run starts `k8sbot run --http` from the image as tests/test_image.py does (read-only root
filesystem, non-root, host network, the database on a fresh writable directory, the kubeconfig
flattened and mounted read-only) against the Slack emulator and the cluster, and polls `/readyz`
every 50 ms; readiness means the bot reached the API server and Slack. The container is then stopped
with SIGTERM. Printed: the image size and min / median / max start-to-ready seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from image_helpers import IMAGE, BotContainer, podman, status  # noqa: E402

from slack_emulator import SlackEmulator  # noqa: E402
from slack_emulator.testing import clean_slack_env  # noqa: E402


def one_run(image: str, emu: SlackEmulator, kubeconfig: str, workdir: Path) -> float:
    config = workdir / "config.yaml"
    config.write_text('{"leader_election": false}')
    env = {
        "SLACK_BOT_TOKEN": emu.bot_token,
        "SLACK_SIGNING_SECRET": emu.signing_secret,
        "K8SBOT_SLACK_API_URL": emu.api_url,
        "KUBECONFIG": kubeconfig,
        "K8SBOT_CONFIG": str(config),
        "K8SBOT_HTTP_HOST": "127.0.0.1",
        "K8SBOT_HTTP_PORT": "0",
        "NO_PROXY": "*",
    }
    bot = BotContainer(image, env, workdir)
    try:
        url = bot.wait_url()
        deadline = time.monotonic() + 60
        while status(url + "/readyz") != 200:
            if time.monotonic() > deadline or bot.process.poll() is not None:
                raise SystemExit(f"not ready:\n{bot.log[-2000:]}")
            time.sleep(0.05)
        ready = time.monotonic() - bot.started
        bot.terminate()
        bot.process.wait(30)
        return ready
    finally:
        bot.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kubeconfig", default=os.environ.get("K8SBOT_TEST_KUBECONFIG", ""))
    args = parser.parse_args()
    if not args.kubeconfig:
        raise SystemExit("needs a cluster: --kubeconfig or K8SBOT_TEST_KUBECONFIG (scripts/local-cluster up)")
    size = podman("image", "inspect", "--format", "{{.Size}}", args.image)
    if size.returncode != 0:
        raise SystemExit(f"{args.image}: {size.stderr.strip()} (run scripts/build-image)")
    print(f"image {args.image}: {int(size.stdout) / 1e6:.0f} MB")
    times = []
    with clean_slack_env():
        emu = SlackEmulator().start()
        try:
            for i in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="k8sbot-image-bench-") as tmp:
                    times.append(one_run(args.image, emu, args.kubeconfig, Path(tmp)))
                print(f"run {i + 1}: ready {times[-1]:.2f}s after podman run")
        finally:
            emu.stop()
    print(
        f"start to ready: min {min(times):.2f}s  median {statistics.median(times):.2f}s  max {max(times):.2f}s"
        f"  ({len(times)} runs)"
    )


if __name__ == "__main__":
    main()
