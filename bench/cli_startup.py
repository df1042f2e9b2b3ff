"""Start-up time of the `k8sbot` CLI: `k8sbot --help` and `k8sbot ask help`, beside a bare `python -c pass`.

    .venv/bin/python bench/cli_startup.py              # 7 runs of each after one warm-up run
    .venv/bin/python bench/cli_startup.py --runs 15

Each command is a fresh process of this venv's Python (`python -m k8sbot ...`), timed wall-clock
around `subprocess.run`. `ask help` runs in a temporary directory with an environment that has no
KUBECONFIG, K8SBOT_* or Slack variables, so it sees no cluster and leaves no database file in the
repository. Printed per command: min / median / max wall ms, and the median minus the median of
`python -c pass` (the interpreter's own start-up), i.e. what k8sbot itself costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [PYTHON, "-c", "pass"]),
    ("k8sbot --help", [PYTHON, "-m", "k8sbot", "--help"]),
    ("k8sbot ask help", [PYTHON, "-m", "k8sbot", "ask", "help"]),
]


def clean_env() -> dict[str, str]:
    """This environment without cluster, Slack or k8sbot settings; the repo importable from any cwd."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBECONFIG" and not k.startswith(("K8SBOT_", "SLACK_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def time_once(argv: list[str], *, cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (after one warm-up)")
    args = parser.parse_args()

    env = clean_env()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="k8sbot-bench-") as cwd:
        for label, argv in COMMANDS:
            time_once(argv, cwd=cwd, env=env)  # warm-up: bytecode caches, page cache
            results[label] = [time_once(argv, cwd=cwd, env=env) for _ in range(args.runs)]

    baseline = statistics.median(results["python -c pass"])
    print(f"{args.runs} runs each, {PYTHON}")
    print(f"{'command':<18} {'min':>8} {'median':>8} {'max':>8} {'-python':>8}   (wall ms)")
    for label, times in results.items():
        median = statistics.median(times)
        print(f"{label:<18} {min(times):8.0f} {median:8.0f} {max(times):8.0f} {median - baseline:8.0f}")


if __name__ == "__main__":
    main()
