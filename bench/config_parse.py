"""Worst cases of the bounded YAML reader (permissions.yaml and the K8SBOT_CONFIG file).

    .venv/bin/python bench/config_parse.py [--repeat 3]

Parses, with `bot.settings.parse_yaml`, the largest inputs of several shapes the bounds still let
through (MAX_FILE_BYTES, MAX_NODES), and the hostile ones they refuse (the alias bomb, deep nesting,
too many values), and prints the best time of `--repeat` runs for each, with its outcome. One reload
of permissions.yaml costs at most the worst of these, in the one thread that reloads; every other
command goes on with the policy in force.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.settings import MAX_FILE_BYTES, MAX_NODES, YamlRefused, parse_yaml  # noqa: E402


def shapes() -> dict[str, str]:
    budget = MAX_FILE_BYTES - 64
    under_nodes = MAX_NODES - 10
    bomb = "".join(
        f"{name}: &{name} [{','.join([f'*{prev}'] * 9) if prev else ','.join(['x'] * 9)}]\n"
        for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
    )
    return {
        "one flow list, max values": "x: [" + ",".join(["a"] * (under_nodes - 3)) + "]\n",
        "block list, max values": "x:\n" + "- a\n" * (under_nodes - 3),
        "mapping, max keys": "".join(f"k{i}: v\n" for i in range(under_nodes // 2)),
        "bindings, up to the bounds": "bindings:\n"
        + "  - {users: [U0ALICE], role: viewer, namespaces: [shop]}\n" * min(budget // 57, under_nodes // 12),
        "one plain scalar, max size": "x: " + "a" * (budget - 4) + "\n",
        "one quoted scalar of escapes": 'x: "' + "\\t" * (budget // 2 - 4) + '"\n',
        "comments, max size": "# c\n" * (budget // 4),
        "alias bomb (refused)": bomb,
        "deep nesting (refused)": "x: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "too many values (refused)": "x: [" + "0," * (budget // 2 - 4) + "]\n",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"bounds: {MAX_FILE_BYTES // 1024} KiB, {MAX_NODES} values")
    for name, text in shapes().items():
        best = float("inf")
        outcome = ""
        for _ in range(args.repeat):
            start = time.perf_counter()
            try:
                parse_yaml(text)
                outcome = "parsed"
            except YamlRefused as e:
                outcome = f"refused at line {e.line}: {e.problem[:50]}"
            best = min(best, time.perf_counter() - start)
        print(f"{name:32} {len(text) / 1024:7.1f} KiB {best * 1000:8.1f} ms  {outcome}")


if __name__ == "__main__":
    main()
