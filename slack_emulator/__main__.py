"""``python -m slack_emulator``: run the emulator standalone for a local demo.

Owns the CLI and the workspace config file format (YAML if PyYAML is installed, or
JSON): ``settings`` (constructor keywords), ``users``, ``channels``, ``usergroups``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from .emulator import SlackEmulator

EXAMPLE = """\
settings: {signing_secret: demo-secret, bot_token: xoxb-demo, app_token: xapp-demo}
users:
  - {id: U0ALICE01, name: alice, real_name: Alice, email: alice@example.com}
channels:
  - {id: C0OPS0001, name: ops, members: [U0ALICE01]}
usergroups:
  - {id: S0ONCALL1, handle: oncall, users: [U0ALICE01]}
"""


def load_config(path: str) -> dict[str, Any]:
    """Read a workspace file (YAML or JSON)."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    return data or {}


def build(config: dict[str, Any], port: int = 0, socket_port: int = 0) -> SlackEmulator:
    """Create (not start) an emulator seeded from ``config``."""
    emu = SlackEmulator(port=port, socket_port=socket_port, **(config.get("settings") or {}))
    for u in config.get("users") or []:
        emu.add_user(**u)
    for c in config.get("channels") or []:
        emu.add_channel(**c)
    for g in config.get("usergroups") or []:
        emu.add_usergroup(**g)
    return emu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slack-emulator",
        description=__doc__,
        epilog="Example workspace file:\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0 = random)")
    parser.add_argument("--socket-port", type=int, default=0, help="websocket port on 127.0.0.1 (0 = random)")
    parser.add_argument("--config", help="workspace YAML/JSON file")
    args = parser.parse_args(argv)
    emu = build(load_config(args.config) if args.config else {}, args.port, args.socket_port)
    emu.start()
    print(
        f"Slack emulator running\n"
        f"  SLACK_API_URL   {emu.api_url}\n"
        f"  socket mode     ws://127.0.0.1:{emu.socket.port}/link/ (via apps.connections.open)\n"
        f"  bot token       {emu.bot_token}\n"
        f"  app token       {emu.app_token}\n"
        f"  signing secret  {emu.signing_secret}\n"
        f"  team/bot user   {emu.workspace.team_id} / {emu.workspace.bot_user_id}\n"
        f"Ctrl-C to stop.",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
