"""`POST /integrations/changes` and `k8sbot record-change` against the real bot (`BotRunner`, its HTTP
server and wiring): stored with the cluster's changes, idempotent by id, every bad field a 400 that
names it with nothing stored; and the CLI's exit statuses (0 stored, 1 refused, 2 unreachable)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.commands.dispatch import execute
from bot.store.changes import ChangeStore
from bot.store.database import Database
from k8sbot.cli_integrations import build_event, derived_id, parse_field
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import running_bot
from tests.wiring_helpers import command_services

TOKEN = "integration-token-for-tests-0123"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def bot(slack: SlackEmulator, tmp_path: Path) -> Iterator[BotRunner]:
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), integration_token=TOKEN) as runner:
        yield runner


def post(url: str, payload: Any, *, token: str = TOKEN, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url + "/integrations/changes",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        raw_answer = e.read()
        return e.code, json.loads(raw_answer) if raw_answer.startswith(b"{") else {"raw": raw_answer.decode()}


def stored(runner: BotRunner) -> list[dict[str, Any]]:
    """Every change the bot's database holds, as `changes` JSON (read through a second connection)."""
    store = ChangeStore(Database(runner.settings.db))
    since = datetime.now(UTC) - timedelta(days=40)
    return [c.to_json() for c in store.query(since=since, limit=1000)]


def now_text(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "gha-1234-1",
        "source": "ci",
        "at": now_text(-timedelta(minutes=3)),
        "target": {"kind": "Deployment", "namespace": "shop", "name": "checkout"},
        "summary": "deploy 1f2e3d",
        "actor": "alice",
        "link": "https://github.com/acme/shop/actions/runs/1234",
        "fields": [{"path": "image.tag", "before": "1.4.2", "after": "1.4.3"}],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def test_an_event_is_stored_with_the_cluster_changes_and_shown_by_changes(bot: BotRunner) -> None:
    status, answer = post(bot.url, event())
    assert status == 200 and answer["ok"] is True and answer["duplicate"] is False
    assert answer["change"]["source"] == "ci" and answer["change"]["ref"]["name"] == "checkout"

    services = command_services(bot.core.kube, Database(bot.settings.db))
    shown = execute(services, text="changes -n shop --since 1h", slack_user=None)
    (change,) = shown.data["changes"]
    assert change["source"] == "ci"
    assert change["link"] == "https://github.com/acme/shop/actions/runs/1234"
    assert change["kind"] == "external" and change["actor"] == "alice"
    assert change["ref"] == {"kind": "Deployment", "namespace": "shop", "name": "checkout"}
    assert change["fields"] == [{"path": "image.tag", "before": "1.4.2", "after": "1.4.3"}]
    text = "\n".join(shown.lines)
    assert "[ci] Deployment/shop/checkout by alice: deploy 1f2e3d" in text
    assert "https://github.com/acme/shop/actions/runs/1234" in text


def test_the_same_id_twice_is_stored_once(bot: BotRunner) -> None:
    first = post(bot.url, event())
    again = post(bot.url, event(summary="a different body, same id"))
    assert first[0] == again[0] == 200
    assert again[1]["duplicate"] is True
    assert again[1]["change"]["id"] == first[1]["change"]["id"]
    assert again[1]["change"]["summary"] == "deploy 1f2e3d"  # the first one stands
    assert len(stored(bot)) == 1


def test_a_namespace_wide_and_a_cluster_wide_event(bot: BotRunner) -> None:
    flag = event(id="flag-1", target=None, namespace="shop", source="flags", summary="new_payment on")
    assert post(bot.url, flag)[0] == 200
    assert post(bot.url, event(id="tf-1", target=None, namespace=..., source="terraform", summary="vpc"))[0] == 200
    refs = {c["summary"]: c["ref"] for c in stored(bot)}
    assert refs["new_payment on"] == {"kind": "Namespace", "namespace": None, "name": "shop"}
    assert refs["vpc"] == {"kind": "Namespace", "namespace": None, "name": ""}
    services = command_services(bot.core.kube, Database(bot.settings.db))
    shown = execute(services, text="changes -n shop --since 1h", slack_user=None)
    assert [c["summary"] for c in shown.data["changes"]] == ["new_payment on"]
    assert "[flags] namespace shop" in "\n".join(shown.lines)


def test_kind_aliases_and_the_top_level_namespace_name_the_target(bot: BotRunner) -> None:
    status, answer = post(bot.url, event(target={"kind": "deploy", "name": "checkout"}, namespace="shop"))
    assert status == 200
    assert answer["change"]["ref"] == {"kind": "Deployment", "namespace": "shop", "name": "checkout"}


def test_secret_looking_values_are_redacted_before_they_are_stored(bot: BotRunner) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    payload = event(
        summary=f"rotate creds, token {token}",
        fields=[
            {"path": "db.password", "before": "hunter2-old", "after": "hunter2-new"},
            {"path": "flags.new_payment", "before": False, "after": True},
        ],
    )
    assert post(bot.url, payload)[0] == 200
    raw = json.dumps(stored(bot))
    assert token not in raw and "hunter2" not in raw
    (change,) = stored(bot)
    assert change["fields"][0]["before"].startswith("[REDACTED") and change["fields"][1]["after"] is True


def test_with_one_cluster_the_cluster_field_is_optional_and_must_name_it(bot: BotRunner) -> None:
    only = bot.settings.cluster_name
    assert post(bot.url, event(id="a"))[1]["change"]["cluster"] == only
    assert post(bot.url, event(id="b", cluster=only))[1]["change"]["cluster"] == only
    status, answer = post(bot.url, event(id="c", cluster="prod-eu"))
    assert status == 400
    assert answer["error"] == f"cluster: 'prod-eu' is not a cluster this bot serves (one of: {only})"
    assert sorted(c["cluster"] for c in stored(bot)) == [only, only]


def test_a_wrong_token_stores_nothing(bot: BotRunner) -> None:
    status, answer = post(bot.url, event(), token="not-the-token-0000000000")
    assert status == 401 and answer["ok"] is False
    assert stored(bot) == []


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", event(id=...), "id"),
    ("empty id", event(id=""), "id"),
    ("id with spaces", event(id="a b"), "id"),
    ("id too long", event(id="a" * 129), "id"),
    ("id a number", event(id=12), "id"),
    ("missing source", event(source=...), "source"),
    ("source reserved", event(source="kubernetes"), "source"),
    ("source uppercase", event(source="CI"), "source"),
    ("source too long", event(source="c" * 33), "source"),
    ("at without zone", event(at="2026-11-30T10:00:00"), "at"),
    ("at not a time", event(at="yesterday"), "at"),
    ("at a number", event(at=1764496800), "at"),
    ("at far in the future", event(at=now_text(timedelta(days=2))), "at"),
    ("at older than retention", event(at=now_text(-timedelta(days=400))), "at"),
    ("target unknown kind", event(target={"kind": "Widget", "namespace": "shop", "name": "x"}), "target.kind"),
    ("target bad name", event(target={"kind": "Deployment", "namespace": "shop", "name": "Check Out"}), "target.name"),
    (
        "target bad namespace",
        event(target={"kind": "Deployment", "namespace": "Shop!", "name": "x"}),
        "target.namespace",
    ),
    (
        "target extra key",
        event(target={"kind": "Deployment", "namespace": "shop", "name": "x", "uid": "1"}),
        "target.uid",
    ),
    ("target a string", event(target="deploy/checkout"), "target"),
    ("target without namespace", event(target={"kind": "Deployment", "name": "x"}, namespace=...), "target.namespace"),
    ("namespaces disagree", event(namespace="other"), "namespace"),
    ("node with namespace", event(target={"kind": "Node", "namespace": "shop", "name": "n1"}), "target.namespace"),
    ("namespace too long", event(target=None, namespace="a" * 64), "namespace"),
    ("missing summary", event(summary=...), "summary"),
    ("blank summary", event(summary="   "), "summary"),
    ("summary two lines", event(summary="deploy\n<!channel>"), "summary"),
    ("summary too long", event(summary="x" * 301), "summary"),
    ("summary a list", event(summary=["deploy"]), "summary"),
    ("actor too long", event(actor="a" * 129), "actor"),
    ("actor with control characters", event(actor="al\x1bice"), "actor"),
    ("link javascript", event(link="javascript:alert(1)"), "link"),
    ("link without host", event(link="https:///path"), "link"),
    ("link with credentials", event(link="https://user:pw@ci.example.com/run/1"), "link"),
    ("link with a space", event(link="https://ci.example.com/run 1"), "link"),
    ("link with angle brackets", event(link="https://ci.example.com/<!here>"), "link"),
    ("link too long", event(link="https://ci.example.com/" + "a" * 2048), "link"),
    ("unknown top-level key", event(severity="high"), "severity"),
    ("fields not a list", event(fields={"path": "a"}), "fields"),
    ("too many fields", event(fields=[{"path": f"f{i}", "before": 1, "after": 2} for i in range(21)]), "fields"),
    ("field without path", event(fields=[{"before": 1, "after": 2}]), "fields[0].path"),
    ("field path with a space", event(fields=[{"path": "a b", "after": 1}]), "fields[0].path"),
    ("field value an object", event(fields=[{"path": "a", "after": {"nested": 1}}]), "fields[0].after"),
    ("field value too long", event(fields=[{"path": "a", "after": "x" * 1025}]), "fields[0].after"),
    ("field extra key", event(fields=[{"path": "a", "after": 1, "note": "x"}]), "fields[0].note"),
]


@pytest.mark.parametrize(("case", "payload", "field"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_field_is_a_400_naming_it_and_nothing_is_stored(
    bot: BotRunner, case: str, payload: dict[str, Any], field: str
) -> None:
    status, answer = post(bot.url, payload)
    assert status == 400, answer
    assert answer["ok"] is False
    assert answer["error"].startswith(f"{field}:"), answer["error"]
    assert stored(bot) == []


@pytest.mark.parametrize("payload", [[event()], "a change", 42, None])
def test_a_body_that_is_not_one_object_is_refused(bot: BotRunner, payload: Any) -> None:
    status, answer = post(bot.url, payload)
    assert status == 400 and "one JSON object" in answer["error"]
    assert stored(bot) == []


def test_an_oversized_body_is_refused_before_it_is_read(bot: BotRunner) -> None:
    huge = json.dumps(event(summary="x" * 1_100_000)).encode()
    with socket.create_connection(("127.0.0.1", bot.server.port), timeout=10) as conn:  # type: ignore[union-attr]
        head = (
            f"POST /integrations/changes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(huge)}\r\nConnection: close\r\n\r\n"
        )
        conn.sendall(head.encode())
        with contextlib.suppress(OSError):  # the server may close before taking it all
            conn.sendall(huge)
        reply = conn.recv(200).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply
    assert stored(bot) == []


def test_no_token_configured_means_no_endpoint(slack: SlackEmulator, tmp_path: Path) -> None:
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db")) as runner:
        status, _ = post(runner.url, event())
    assert status == 404


# -- k8sbot record-change ------------------------------------------------------------------------------------


def record(*args: str, url: str | None, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    if token is not None:
        env["K8SBOT_INTEGRATION_TOKEN"] = token
    if url is not None:
        env["K8SBOT_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "k8sbot", "record-change", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_record_change_stores_and_a_repeat_is_a_duplicate(bot: BotRunner) -> None:
    args = (
        "--source", "ci", "--target", "deploy/checkout", "-n", "shop", "--summary", "deploy 1f2e3d",
        "--actor", "gha", "--link", "https://ci.example.com/run/7", "--id", "deploy-1f2e3d",
        "--field", "image.tag=1.4.2=>1.4.3", "--field", "flags.new_payment==>on",
    )  # fmt: skip
    first = record(*args, url=bot.url)
    assert first.returncode == 0, first.stderr
    assert "Recorded change" in first.stdout
    again = record(*args, url=bot.url)
    assert again.returncode == 0 and "already recorded" in again.stdout
    (change,) = stored(bot)
    assert change["source"] == "ci" and change["actor"] == "gha"
    assert change["ref"] == {"kind": "Deployment", "namespace": "shop", "name": "checkout"}
    assert change["fields"] == [
        {"path": "image.tag", "before": "1.4.2", "after": "1.4.3"},
        {"path": "flags.new_payment", "before": None, "after": "on"},
    ]


def test_record_change_refused_is_1_with_the_field_named(bot: BotRunner) -> None:
    result = record("--source", "ci", "--summary", "x", "--link", "ftp://ci.example.com/x", url=bot.url)
    assert result.returncode == 1
    assert "link:" in result.stderr and "http" in result.stderr
    wrong = record("--source", "ci", "--summary", "x", url=bot.url, token="wrong-token-000000000000")
    assert wrong.returncode == 1 and "Bearer" in wrong.stderr
    shape = record("--source", "ci", "--summary", "x", "--field", "no-arrow=1", url=bot.url)
    assert shape.returncode == 1 and "path=BEFORE=>AFTER" in shape.stderr
    assert stored(bot) == []


def test_record_change_unreachable_is_2() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = record("--source", "ci", "--summary", "x", url=f"http://127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert "could not reach" in result.stderr


def test_record_change_without_url_or_token_is_refused_without_sending() -> None:
    assert record("--source", "ci", "--summary", "x", url=None).returncode == 1
    assert record("--source", "ci", "--summary", "x", url="http://127.0.0.1:9", token=None).returncode == 1


def test_the_derived_id_is_stable_for_one_event_and_differs_between_events() -> None:
    class Args:
        source, summary, target, namespace = "ci", "deploy", "deploy/checkout", "shop"
        actor = link = event_id = at = cluster = None
        fields: tuple[str, ...] = ()

    now = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    first = build_event(Args(), now=now)  # type: ignore[arg-type]
    assert first["id"] == build_event(Args(), now=now)["id"]  # type: ignore[arg-type]
    assert first["id"] != build_event(Args(), now=now + timedelta(seconds=1))["id"]  # type: ignore[arg-type]
    assert first["id"].startswith("ci-") and first["at"] == "2026-11-30T10:00:00Z"
    assert derived_id({**first, "summary": "other"}) != first["id"]
    assert "cluster" not in first  # without --cluster: the id of the same event as before clusters

    class InEu(Args):
        cluster = "prod-eu"

    eu = build_event(InEu(), now=now)  # type: ignore[arg-type]
    assert eu["cluster"] == "prod-eu" and eu["id"] != first["id"]
    assert parse_field("a.b=x=>y=>z") == {"path": "a.b", "before": "x", "after": "y=>z"}
