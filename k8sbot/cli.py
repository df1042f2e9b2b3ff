"""`k8sbot`: run the bot, or ask it a question from a terminal through the very same code path."""

# Start-up time matters here (`k8sbot --help`, `k8sbot ask help`): at module level only argparse and
# what builds the parser; settings, the core and the verbs are imported by the code that needs them.
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.errors import ConfigError, K8sBotError
from k8sbot.cli_integrations import add_parser as add_record_parser
from k8sbot.cli_integrations import record_change
from k8sbot.cli_permissions import add_parsers
from k8sbot.terminal import render_text

if TYPE_CHECKING:
    from bot.model import Answer
    from bot.settings import Settings

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k8sbot", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="start the bot (Socket Mode unless --http)")
    run.add_argument("--http", action="store_true", help="HTTP mode: serve POST /slack/events")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default 3000, K8SBOT_HTTP_PORT)")
    run.add_argument("--host", default=None, help="HTTP bind address (default 127.0.0.1, K8SBOT_HTTP_HOST)")

    sub.add_parser("watch", help="only watch the cluster and record changes (no Slack)")

    ask = sub.add_parser("ask", help='run one command as Slack would, e.g. k8sbot ask "why checkout -n shop"')
    ask.add_argument("text", help="the command text, without /k8s")
    ask.add_argument("--as", dest="as_user", default=None, help="act as this Slack user id (their permissions)")
    ask.add_argument("--channel", default=None, help="pretend the command came from this channel id")
    ask.add_argument("--json", action="store_true", help="print the verb's JSON result")
    ask.add_argument("--yes", action="store_true", help="confirm an action without asking")
    ask.add_argument("--png", metavar="FILE", default=None, help="write the answer's picture (timeline) to FILE")

    add_parsers(sub)  # permissions check|validate|rbac, audit
    add_record_parser(sub)  # record-change: posts to a running bot, reads no settings
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "record-change":  # a client of a running bot: no settings, core or cluster here
        return record_change(args)
    if args.cmd == "ask" and not args.as_user:
        # `help` reads nothing configured (no settings, cluster, database or Slack): answer it first.
        try:
            answer = _answer_without_core(args.text)
        except K8sBotError as e:  # unparsable text, or `help <no such verb>`: what the full path prints
            print(f"k8sbot: {e}", file=sys.stderr)
            return 1
        if answer is not None:
            _print_answer(answer, as_json=args.json)
            return 0 if answer.ok else 1
    from bot.settings import load_settings  # noqa: PLC0415 - lazy: CLI start-up

    try:
        settings = load_settings(http_port=getattr(args, "port", None), http_host=getattr(args, "host", None))
    except ConfigError as e:
        print(f"k8sbot: {e}", file=sys.stderr)
        return EXIT_USAGE
    from k8sbot.wiring import build_core, configure_logging  # noqa: PLC0415 - lazy: CLI start-up

    quiet = args.cmd != "run" and "K8SBOT_LOG_LEVEL" not in os.environ
    configure_logging("WARNING" if quiet else settings.log_level)
    try:
        if args.cmd == "run":
            return _run(settings, http=args.http)
        if args.cmd == "ask":
            return _ask(settings, args)
        if args.cmd == "watch":
            return _watch(settings)
        if hasattr(args, "handler"):
            needs_policy = args.cmd == "permissions" and getattr(args, "permissions_cmd", "") == "check"
            return int(args.handler(args, build_core(settings, permissions=needs_policy)))
    except ConfigError as e:
        print(f"k8sbot: {e}", file=sys.stderr)
        return EXIT_USAGE
    except K8sBotError as e:
        print(f"k8sbot: {e}", file=sys.stderr)
        return 1
    return EXIT_USAGE


def _run(settings: Settings, *, http: bool) -> int:
    from k8sbot.running import serve  # noqa: PLC0415 - lazy: CLI start-up
    from k8sbot.wiring import check_permissions_file  # noqa: PLC0415 - lazy: CLI start-up

    settings.require_slack(http=http)
    check_permissions_file(settings)
    serve(settings, http=http)
    return 0


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from bot.commands.dispatch import execute  # noqa: PLC0415 - lazy: CLI start-up
    from bot.slack.client import make_web_client  # noqa: PLC0415 - lazy: CLI start-up
    from k8sbot.wiring import build_core  # noqa: PLC0415 - lazy: CLI start-up

    slack = None
    if args.as_user and settings.slack_bot_token:  # user groups come from Slack when it is configured
        slack = make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    router = build_core(settings, permissions=bool(args.as_user), slack=slack).router
    answer = execute(router, text=args.text, slack_user=args.as_user, channel=args.channel)
    confirm = answer.data.get("confirm")
    if isinstance(confirm, dict) and confirm.get("command"):
        # Run exactly what the preview showed (it pins e.g. the revision and carries the action id).
        if not args.yes:
            print(render_text(answer))
            if not sys.stdin.isatty():
                print("Not confirmed: run again with --yes to confirm without a terminal.", file=sys.stderr)
                return 1
            if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
                print("Cancelled. Nothing was changed.")
                return 1
        answer = execute(
            router, text=str(confirm["command"]), slack_user=args.as_user, channel=args.channel, confirmed=True
        )
    _print_answer(answer, as_json=args.json)
    if args.png:
        return _write_picture(answer, args.png) or (0 if answer.ok else 1)
    return 0 if answer.ok else 1


def _write_picture(answer: Answer, path: str) -> int:
    """Draw the answer's first picture into `path` (PNG); 1 with a message when it has none."""
    if not answer.pictures:
        print(f"k8sbot: `{answer.verb}` answers have no picture to write to {path}.", file=sys.stderr)
        return 1
    from bot.timeline.pictures import draw  # noqa: PLC0415 - lazy: CLI start-up (matplotlib)

    picture = answer.pictures[0]
    with open(path, "wb") as out:
        out.write(draw(picture.kind, picture.data))
    return 0


def _answer_without_core(text: str) -> Answer | None:
    """`help`'s answer without a cluster, database or Slack (it reads only the verb table and is never
    audited), or None when the command needs the core. Raises UsageError as `execute` would."""
    from bot.commands.parsing import parse  # noqa: PLC0415 - lazy: CLI start-up
    from bot.commands.registry import VerbRegistry  # noqa: PLC0415 - lazy: CLI start-up
    from bot.verbs.help import help_answer  # noqa: PLC0415 - lazy: CLI start-up

    verbs = VerbRegistry.discover()
    command = parse(text, registry=verbs)
    return help_answer(verbs, command) if command.verb == "help" else None


def _print_answer(answer: Answer, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.data, indent=2, default=str))
        return

    print(render_text(answer))


def _watch(settings: Settings) -> int:
    from bot.changes.recording import DEFAULT_KINDS  # noqa: PLC0415 - lazy: CLI start-up
    from bot.changes.tracking import ChangeTracker  # noqa: PLC0415 - lazy: CLI start-up
    from k8sbot.wiring import build_core  # noqa: PLC0415 - lazy: CLI start-up

    core = build_core(settings, permissions=False)
    for cluster in core.clusters:  # fail now, with a clear message, if a cluster is unreachable
        cluster.kube.get("/version")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    threads = [
        threading.Thread(
            target=ChangeTracker(kube=cluster.kube, recorder=cluster.recorder, kinds=DEFAULT_KINDS).run,
            args=(stop,),
            name=f"watchers-{cluster.name}",
        )
        for cluster in core.clusters
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.5)
    return 0
