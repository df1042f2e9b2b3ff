"""`k8sbot record-change`: send one external change event to a running bot (for CI/CD pipelines).

    k8sbot record-change --source ci --target deploy/checkout -n shop --summary "deploy 1f2e3d" \\
        [--actor A] [--link URL] [--id ID] [--at TIME] [--field path=BEFORE=>AFTER]... [--cluster NAME]

It posts to `<url>/integrations/changes` (`--url`, else K8SBOT_URL) with the bearer token from
K8SBOT_INTEGRATION_TOKEN, and reads nothing else of the bot's configuration. `--cluster` names the
cluster the change is about; a bot serving several refuses an event without one (it never guesses).
Exit status: 0 stored (also when the bot had it already: the same id is stored once per cluster),
1 refused (the answer says which field and why, or the token), 2 unreachable (after a few tries;
retrying is safe, the id makes it idempotent).

Without `--id` the id is derived from the event itself (a SHA-256 of source, target, namespace,
summary, actor, link, fields, the cluster when given, and the time to the second): the retries of one
invocation are one event, while running the same step again later records a new one. To make a re-run
of a pipeline step the same event, pass an id of your own (`--id deploy-$GITHUB_SHA`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

PATH = "/integrations/changes"
EXIT_STORED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2
TRIES = 3
TIMEOUT = 10.0


def add_parser(sub: Any) -> None:
    record = sub.add_parser(
        "record-change",
        help="tell a running bot about a change made outside the cluster (CI deploy, feature flag, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("--source", required=True, help="what made the change: ci, flags, terraform, ...")
    record.add_argument("--summary", required=True, help='one line: what changed ("deploy 1f2e3d")')
    record.add_argument("--target", default=None, help="the object it is about, kind/name (deploy/checkout)")
    record.add_argument("-n", "--namespace", default=None, help="its namespace (without --target: the namespace)")
    record.add_argument("--actor", default=None, help="who made it (a person, a pipeline)")
    record.add_argument("--link", default=None, help="an http(s) link to the run, commit or flag")
    record.add_argument("--id", dest="event_id", default=None, help="a unique id (default: derived from the event)")
    record.add_argument("--at", default=None, help="when, RFC 3339 with a time zone (default: now)")
    record.add_argument(
        "--field",
        dest="fields",
        action="append",
        default=[],
        metavar="PATH=BEFORE=>AFTER",
        help="a changed value, e.g. flags.new_payment=off=>on (repeatable; an empty side is null)",
    )
    record.add_argument(
        "--cluster",
        default=None,
        help="the cluster the change is about (required when the bot serves several; default: its only one)",
    )
    record.add_argument("--url", default=None, help="the bot's HTTP address (default: K8SBOT_URL)")
    record.add_argument("--json", action="store_true", help="print the bot's JSON answer")


def parse_field(text: str) -> dict[str, Any]:
    """`path=BEFORE=>AFTER` → {"path", "before", "after"}; ValueError when it is not that shape."""
    path, sep, values = text.partition("=")
    before, arrow, after = values.partition("=>")
    if not sep or not arrow or not path.strip():
        raise ValueError(f"--field {text!r}: write it as path=BEFORE=>AFTER (e.g. flags.new_payment=off=>on)")
    return {"path": path.strip(), "before": before or None, "after": after or None}


def build_event(args: argparse.Namespace, *, now: datetime) -> dict[str, Any]:
    """The JSON event the arguments describe (ValueError for a malformed --target or --field)."""
    event: dict[str, Any] = {"source": args.source, "summary": args.summary}
    if args.target:
        kind, sep, name = args.target.partition("/")
        if not sep or not kind or not name:
            raise ValueError(f"--target {args.target!r}: write it as kind/name (e.g. deploy/checkout)")
        event["target"] = {"kind": kind, "name": name, "namespace": args.namespace}
    if args.namespace:
        event["namespace"] = args.namespace
    for key in ("actor", "link"):
        if getattr(args, key):
            event[key] = getattr(args, key)
    if args.fields:
        event["fields"] = [parse_field(f) for f in args.fields]
    if args.cluster:
        event["cluster"] = args.cluster
    event["at"] = args.at or now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    event["id"] = args.event_id or derived_id(event)
    return event


def derived_id(event: dict[str, Any]) -> str:
    """A stable id for an event without one: its source and a digest of everything it says."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{event['source']}-{hashlib.sha256(canonical.encode()).hexdigest()[:24]}"


def record_change(args: argparse.Namespace) -> int:
    url = (args.url or os.environ.get("K8SBOT_URL") or "").rstrip("/")
    token = os.environ.get("K8SBOT_INTEGRATION_TOKEN") or ""
    if not url.startswith(("http://", "https://")):
        print("k8sbot: record-change needs the bot's http(s) address: --url or K8SBOT_URL", file=sys.stderr)
        return EXIT_REFUSED
    if not token:
        print("k8sbot: record-change needs K8SBOT_INTEGRATION_TOKEN (the bot's integration_token)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        event = build_event(args, now=datetime.now(UTC))
    except ValueError as e:
        print(f"k8sbot: {e}", file=sys.stderr)
        return EXIT_REFUSED
    status, answer, problem = _post(url + PATH, event, token)
    if status is None:
        print(f"k8sbot: could not reach the bot at {url}: {problem}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(answer, indent=2))
    if status == 200 and answer.get("ok"):
        if not args.json:
            change = answer.get("change") or {}
            already = " (already recorded: nothing new stored)" if answer.get("duplicate") else ""
            where = f" in {change.get('cluster')}" if change.get("cluster") else ""
            print(f"Recorded change {change.get('id')} from {event['source']}{where}, id {answer.get('id')}{already}")
        return EXIT_STORED
    reason = answer.get("error") or problem or f"HTTP {status}"
    if status == 404:
        reason = f"{url} does not serve {PATH}: is integration_token set on the bot?"
    print(f"k8sbot: the bot refused the change: {reason}", file=sys.stderr)
    return EXIT_REFUSED


def _post(url: str, event: dict[str, Any], token: str) -> tuple[int | None, dict[str, Any], str]:
    """(status, JSON answer, problem); status None when the bot could not be reached. Connection
    failures and 5xx/429 answers are tried again (the id makes a repeat harmless)."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    import urllib.error  # noqa: PLC0415 - lazy: CLI start-up
    import urllib.request  # noqa: PLC0415 - lazy: CLI start-up

    problem = ""
    for attempt in range(TRIES):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - checked scheme
                return response.status, _json(response.read()), ""
        except urllib.error.HTTPError as e:
            answer = _json(e.read())
            if e.code < 500 and e.code != 429:
                return e.code, answer, str(answer.get("error") or e.reason)
            problem = f"HTTP {e.code} {answer.get('error') or e.reason}"
        except (urllib.error.URLError, OSError) as e:
            problem = str(getattr(e, "reason", e))
    return None, {}, problem


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
