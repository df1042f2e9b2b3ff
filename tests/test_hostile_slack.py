"""Hostile text on its way out to Slack: nothing from untrusted input may ping, link or mention.

Through the public paths: slash commands and clicks sent by the Slack emulator's driver to the real
bot, objects and events created in the real cluster and picked up by the bot's own watchers, and
what the emulator then received (messages, response_url posts, lint).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import create, patch, wait_for

from bot.commands.context import VerbContext
from bot.commands.registry import VerbRegistry
from bot.commands.specs import FlagSpec, VerbSpec
from bot.digest.content import MORE_IN_CLUSTER, ClusterPart, Digest, Section
from bot.kube.client import KubeClient
from bot.model import Answer, Button, Command
from bot.slack.alerts import BlockKitAlerts
from bot.slack.audit import render_audit_entry
from bot.slack.blocks import payload, render_answer, render_cancelled, render_error, render_placeholder
from bot.slack.buttons import INLINE, StoredButtonValues
from bot.slack.client import Poster, make_web_client
from bot.slack.digest import render_digest
from bot.slack.escaping import ZWSP, clip_escaped, escape_mrkdwn
from bot.slack.message import Message
from bot.store.audit import AuditEntry
from bot.store.buttons import ButtonCommands
from bot.store.database import Database
from k8sbot.wiring import build_background, build_core
from slack_emulator import SlackEmulator, validate_blocks
from tests.slack_harness import ALICE, OPS, SHOP, bot_settings, running_bot, wait_answer
from tests.wiring_helpers import VERBS

pytestmark = pytest.mark.hostile

MALLORY = "U0MALLORY"
AUDIT = "C0AUDIT01"
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0ALICE01>", "<#C0OPS0001>", "<!subteam^S0ONCALL1>")
LINKS = ("<https://evil.example|click>", "<https://evil.example>")

TOKEN_RE = re.compile(r"<[^<>]*>")
HALF_ENTITY_RE = re.compile(r"&[#a-zA-Z0-9]*$")


# -- what Slack would see ------------------------------------------------------------------------------


def texts_of(payload: Any) -> Iterator[str]:
    """Every string Slack renders from a message payload: `text` fields at any depth, file titles."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in ("text", "title", "initial_comment") and isinstance(value, str):
                yield value
            else:
                yield from texts_of(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from texts_of(item)


def tokens(payload: Any) -> list[str]:
    """The `<…>` tokens Slack would parse (mentions, channels, user groups, links) in a payload."""
    return [m.group(0) for text in texts_of(payload) for m in TOKEN_RE.finditer(text)]


def cut_entities(payload: Any) -> list[str]:
    """Texts that were clipped inside an `&…;` entity (`…&lt`, `…&l…`, `&lt;!here&…`)."""
    found = []
    for text in texts_of(payload):
        head = text[:-1] if text.endswith("…") else text
        if HALF_ENTITY_RE.search(head):
            found.append(text[-40:])
    return found


# -- the audit channel -------------------------------------------------------------------------------------

POLICY = """
roles:
  viewer: [why, status, logs, describe, changes, can-i]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: viewer
defaults: {{role: null}}
"""


@pytest.fixture
def policy(namespace: str, tmp_path: Path) -> str:
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    return str(path)


def test_a_refused_command_with_mentions_in_its_flags_reaches_the_audit_channel_inert(
    slack: SlackEmulator, cluster: Any, namespace: str, policy: str, tmp_path: Path
) -> None:
    slack.add_user(MALLORY, name="mallory")
    slack.add_channel(AUDIT, "audit", members=[ALICE], bot_member=True)
    hostile = " ".join((*PINGS, *LINKS))
    with running_bot(
        slack,
        mode="http",
        db=str(tmp_path / "bot.db"),
        kubeconfig=cluster.kubeconfig,
        permissions=policy,
        audit_channel=AUDIT,
    ):
        slack.driver.slash_command(
            f'logs checkout -n {namespace} --grep "{hostile}" --container <!here>', user_id=MALLORY, channel_id=SHOP
        )
        posted = slack.wait_for(lambda: slack.messages(AUDIT), timeout=20, what="the audit line")
    line = posted[-1]
    assert "DENIED" in json.dumps(line) and "evil.example" in json.dumps(line)  # the line is there, shown...
    assert tokens(line) == []  # ...but nothing in it pings, mentions or links
    assert slack.lints(kind="broadcast_ping") == []


# -- the daily digest ------------------------------------------------------------------------------------


class OffsetClock:
    """Real time, moved forward on demand (to be just past the digest's fire time)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_the_digest_shows_hostile_image_names_and_node_events_inert(
    slack: SlackEmulator, cluster: Any, kube: KubeClient, namespace: str, policy: str, tmp_path: Path
) -> None:
    clock = OffsetClock()
    settings = bot_settings(
        slack,
        db=str(tmp_path / "bot.db"),
        kubeconfig=cluster.kubeconfig,
        permissions=policy,
        watch_namespaces=[namespace],
        digest_cron="0 0 * * *",
        timezone="UTC",
    )
    client = make_web_client(token=slack.bot_token, base_url=slack.api_url)
    core = build_core(settings, permissions=True, slack=client, clock=clock)
    background = build_background(core, Poster(client))
    stop = threading.Event()
    watching = threading.Thread(target=background.tracker.run, args=(stop,), daemon=True)
    watching.start()
    try:
        assert background.tracker.wait_synced(60)
        labels = {"app": "web"}
        create(
            kube,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
                    },
                },
            },
        )
        wait_for(lambda: core.changes.query(since=clock() - timedelta(hours=1), limit=5) or None, 30, "first change")
        hostile_image = "registry.example/web:<!channel><https://evil.example|click>"
        patch(
            kube,
            "apps/v1",
            "Deployment",
            namespace,
            "web",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": hostile_image}]}}}},
        )
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        create(
            kube,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "node-hostile", "namespace": namespace},
                "involvedObject": {"kind": "Node", "name": "kwok-node-0", "apiVersion": "v1", "namespace": namespace},
                "type": "Warning",
                "reason": "NodeNotReady",
                "message": "disk full <!here> <!everyone> <https://evil.example|click here>",
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "kubelet"},
            },
        )

        def recorded() -> bool | None:
            images = [c for c in core.changes.query(since=clock() - timedelta(hours=1)) if "evil" in c.summary]
            events = core.events.since(clock() - timedelta(hours=1), involved_kind="Node", limit=50)
            return (bool(images) and any("evil" in e.message for e in events)) or None

        wait_for(recorded, 30, "the hostile image change and node event recorded")
    finally:
        stop.set()
        watching.join(10)
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    clock.offset = midnight + timedelta(minutes=1) - datetime.now(UTC)
    assert [d.channel for d in background.digest.send_due()] == [SHOP]
    digest = slack.messages(SHOP)[-1]
    shown = json.dumps(digest)
    assert "evil.example" in shown and "disk full" in shown  # the image change and the node event are there
    assert tokens(digest) == []  # nothing pings or links, and the footer has no `<namespace>` token
    assert slack.lints(kind="broadcast_ping") == []


# -- a test verb that echoes what it is given, with a button that runs it again ------------------------------


class Echoes(list[Command]):
    verbs: VerbRegistry


@pytest.fixture
def echo() -> Echoes:
    runs = Echoes()
    spec = VerbSpec(
        name="echo",
        summary="test verb: says what it was given",
        usage="echo --say TEXT [--pad N] [--p0 TEXT ... --p11 TEXT]",
        flags=(
            FlagSpec("say", "str", "what to say"),
            FlagSpec("pad", "int", "a line of padding before it"),
            FlagSpec("ask", "bool", "ask to confirm first"),
            *(FlagSpec(f"p{i}", "str", "more to carry in the button") for i in range(12)),
        ),
    )

    def run(ctx: VerbContext, command: Command) -> Answer:
        runs.append(command)
        said = str(command.flag("say", ""))
        pad = int(command.flag("pad", 0))
        lines = ("x" * pad,) if pad else ()
        confirm = {"command": f"echo --say {said}", "text": f"say {said}?"} if command.flag("ask") else None
        return Answer(
            verb="echo",
            data={"said": said, **({"confirm": confirm} if confirm else {})},
            title="Echo",
            lines=(*lines, said),
            buttons=(Button("Again", command.as_text()),),
        )

    runs.verbs = VerbRegistry.of([*((VERBS.specs[n], VERBS.funcs[n]) for n in VERBS.specs), (spec, run)])
    return runs


def test_a_clipped_fallback_text_never_ends_inside_an_entity(
    slack: SlackEmulator, tmp_path: Path, echo: Echoes
) -> None:
    # The fallback is "Echo\n<pad>\n<said>", escaped, then clipped to 3000 characters: put `<!here>`
    # (13 characters once escaped) across the cut at every offset.
    answers = []
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), verbs=echo.verbs):
        for offset in range(14):
            pad = 3000 - len("Echo\n") - 1 - offset - 1
            before = len(slack.response_posts())
            slack.driver.slash_command(f"echo --pad {pad} --say <!here>", user_id=ALICE, channel_id=OPS)
            answers.append(wait_answer(slack, before, what=f"the echo at offset {offset}"))
    assert all(len(answer["text"]) <= 3000 for answer in answers)
    assert [cut for answer in answers for cut in cut_entities(answer)] == []
    assert [token for answer in answers for token in tokens(answer)] == []


def test_a_button_longer_than_slack_allows_runs_exactly_its_command(
    slack: SlackEmulator, tmp_path: Path, echo: Echoes
) -> None:
    text = "echo --say hi " + " ".join(f"--p{i} {chr(97 + i) * 200}" for i in range(12))
    assert len(text) > 2000
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), verbs=echo.verbs):
        slack.driver.slash_command(text, user_id=ALICE, channel_id=OPS)
        wait_answer(slack, 0, what="the echo")
        message = slack.messages(OPS)[-1]
        (button,) = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert len(button["value"]) <= 2000
        before = len(slack.response_posts())
        slack.driver.click(OPS, message["ts"], button["action_id"], ALICE)
        wait_answer(slack, before, what="the click's answer")
    typed, clicked = echo
    assert clicked.flags == typed.flags  # the click ran the same command, not a cut one


def test_usage_errors_in_the_ack_echo_hostile_input_inert(slack: SlackEmulator, tmp_path: Path) -> None:
    hostile = " ".join((*PINGS, *LINKS))
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db")):
        acks = [
            slack.driver.slash_command(text, user_id=ALICE, channel_id=OPS).payload
            for text in (hostile, f"why {hostile}", f"logs checkout --tail {hostile}", f'help "{hostile}"')
        ]
    assert all(ack["response_type"] == "ephemeral" for ack in acks)
    assert [tokens(ack) for ack in acks] == [[], [], [], []]
    assert all("&lt;!channel&gt;" in ack["text"] for ack in acks)  # shown, as text


def test_cancel_mentions_only_the_user_who_clicked(slack: SlackEmulator, tmp_path: Path, echo: Echoes) -> None:
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), verbs=echo.verbs):
        slack.driver.slash_command("echo --ask --say <!channel>", user_id=ALICE, channel_id=OPS)
        wait_answer(slack, 0, what="the question")
        message = slack.messages(OPS)[-1]
        before = len(slack.response_posts())
        slack.driver.click(OPS, message["ts"], "k8s_cancel", ALICE)
        slack.wait_for(lambda: slack.response_posts()[before:], timeout=10, what="the cancellation")
    cancelled = slack.response_posts()[before].body
    assert cancelled["text"] == f"Cancelled by <@{ALICE}>. Nothing was changed."
    assert tokens(cancelled) == [f"<@{ALICE}>"]
    assert len(echo) == 1  # the question only; nothing ran on cancel


def test_a_button_whose_stored_command_is_unknown_runs_nothing_and_says_so(
    slack: SlackEmulator, tmp_path: Path, echo: Echoes
) -> None:
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), verbs=echo.verbs):
        bot = make_web_client(token=slack.bot_token, base_url=slack.api_url)
        blocks = [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "k8s_run:0",
                        "text": {"type": "plain_text", "text": "Again"},
                        "value": "cmd:0123456789abcdef01234567",
                    }
                ],
            }
        ]
        ts = bot.chat_postMessage(channel=OPS, text="old message", blocks=blocks)["ts"]
        before = len(slack.response_posts())
        slack.driver.click(OPS, ts, "k8s_run:0", ALICE)
        answer = wait_answer(slack, before, what="the answer to the stale button")
    assert answer["response_type"] == "ephemeral"
    assert "expired" in json.dumps(answer)
    assert echo == []


# -- every message builder, fed hostile strings ------------------------------------------------------------

ENTITY_STRINGS = (
    *PINGS,
    *LINKS,
    "<@W012ABCDE>",
    "<#C0OPS0001|ops>",
    "<!subteam^S0ONCALL1|@oncall>",
    "<!here|here>",
    "<mailto:boss@example.com|mail me>",
    "<tel:+15555550100|call>",
    "<slack://open>",
    "<!date^1392734382^{date}|Feb 18>",
)
OTHER_STRINGS = (
    "&",
    "<",
    ">",
    "a<b",
    "a>b",
    "&lt;",
    "&lt",
    "&l",
    "&amp;",
    "&lt;!here&gt;",
    "&#60;!channel&#62;",
    "<<!here>>",
    "< !here >",
    "<!here",
    "!here>",
    "*bold* _it_ ~s~ `code` ```block```",
    "> quoted",
    "\u202eerehs!<",
    "ünïcødé ✅ 🚀 名前",
    "\u200b<!here>\u200b",
    "line one\nline two <!here>\n\n<!channel>",
    "x" * 5000,
    "<" * 3000,
    "&" * 3000,
    "<!here>" * 700,
)
CLIP_LIMITS = (75, 100, 150, 200, 300, 400, 500, 1000, 1500, 2000, 3000)


def boundary_strings(offsets: int = 16) -> tuple[str, ...]:
    """`<!here>` (13 characters escaped) placed across every clip limit the renderers use."""
    return tuple("x" * (limit - 1 - k) + "<!here>" for limit in CLIP_LIMITS for k in range(offsets) if limit > k)


HOSTILE = (*ENTITY_STRINGS, *OTHER_STRINGS, *boundary_strings())
ENTITY_RE = re.compile(r"&(amp|lt|gt);")


def rendered_texts(text: str, blocks: list[dict[str, Any]]) -> list[str]:
    return [text, *texts_of(blocks)]


def assert_inert(text: str, blocks: list[dict[str, Any]], *, allowed: tuple[str, ...] = ()) -> None:
    """No token from untrusted input, every `&` a whole entity, no stray `<`/`>`, Block Kit valid."""
    for shown in rendered_texts(text, blocks):
        assert [t for t in TOKEN_RE.findall(shown) if t not in allowed] == [], shown[:200]
        rest = shown
        for token in allowed:
            rest = rest.replace(token, "")
        assert "<" not in rest and ">" not in rest, rest[:200]
        for match in re.finditer("&", rest):
            assert ENTITY_RE.match(rest, match.start()), f"a cut entity at {match.start()}: {rest[-60:]!r}"
    validation = validate_blocks(blocks, "message")
    assert validation.ok, validation.errors
    assert len(text) <= 3000


def test_the_one_clip_never_splits_an_entity_at_any_cut() -> None:
    escaped = escape_mrkdwn("a<b&c>d *x* <!here> &lt; " * 8)
    for limit in range(1, len(escaped) + 2):
        clipped = clip_escaped(escaped, limit)
        assert len(clipped) <= max(limit, 1)
        kept = clipped.removesuffix("…")
        assert escaped.startswith(kept)
        assert "&" not in kept or all(ENTITY_RE.match(kept, m.start()) for m in re.finditer("&", kept)), kept
        assert not kept.endswith(ZWSP + "*")  # a marker whose closing zero-width space was cut


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s[:24]) + f"/{len(s)}")
def test_answers_errors_and_replies_are_inert(hostile: str) -> None:
    answer = Answer(
        verb="why",
        data={"confirm": {"command": f"scale {hostile} --replicas 3", "text": hostile}},
        title=hostile,
        lines=(hostile, f"pod {hostile} is failing", hostile),
        attachments=((hostile, hostile),),
        buttons=(Button(hostile, f"logs pod/{hostile}"), Button(hostile, f"rollback {hostile}", "danger")),
    )
    message = render_answer(answer, cluster_name=hostile)
    assert_inert(message.text, message.blocks)
    for file in message.files:
        assert_inert(file.title, [])
        assert re.fullmatch(r"[A-Za-z0-9._-]+", file.filename)
    error = render_error(hostile, usage=hostile)
    assert_inert(error.text, error.blocks)
    placeholder = render_placeholder(hostile)
    assert_inert(placeholder.text, placeholder.blocks)
    cancelled = render_cancelled(hostile)
    assert_inert(cancelled.text, cancelled.blocks)


def test_the_only_mention_the_bot_writes_is_a_valid_slack_id() -> None:
    cancelled = render_cancelled("U0ALICE01")
    assert_inert(cancelled.text, cancelled.blocks, allowed=("<@U0ALICE01>",))
    assert cancelled.to_slack()["text"] == "Cancelled by <@U0ALICE01>. Nothing was changed."
    for forged in ("U0ALICE01> <!channel", "!channel", "U0ALICE01|x", "", None):
        text = render_cancelled(forged).to_slack()["text"]
        assert TOKEN_RE.findall(text) == [], text


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s[:24]) + f"/{len(s)}")
def test_alerts_repeats_and_notes_are_inert(hostile: str) -> None:
    details = {
        "id": 7,
        "workload": {"kind": "Deployment", "namespace": hostile, "name": hostile},
        "category": hostile,
        "what": hostile,
        "cluster": hostile,
        "since": hostile,
        "state": "firing",
        "evidence": [hostile, hostile],
        "affected": 2,
        "pods_total": 3,
        "culprit": {"path": hostile, "before": hostile, "after": hostile, "actor": hostile, "at": hostile},
        "rollback_to": 1,
        "pod": hostile,
        "notes": [hostile],
    }
    alerts = BlockKitAlerts(values=INLINE)
    for state in ("firing", "resolved"):
        text, blocks = alerts.alert({**details, "state": state, "resolved_at": hostile, "duration": hostile})
        assert_inert(text, blocks)
    assert_inert(*alerts.repeat(details, new_subjects=[hostile, hostile], evidence=[hostile]))
    assert_inert(*alerts.note(hostile))


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda s: repr(s[:24]) + f"/{len(s)}")
def test_digests_and_audit_lines_are_inert(hostile: str) -> None:
    digest = Digest(
        channel="C0SHOP001",
        period="Mon",
        title=f"Daily digest for {hostile}",
        sections=(
            Section(f"Deploys ({hostile})", (f"{hostile}: deployment/{hostile} image web: a → {hostile}",) * 6),
            Section("Nodes", (f"kwok-node-0: NodeNotReady ×2: {hostile}",)),
            Section("Alerts", (f"{hostile}: {hostile} (firing)",)),
        ),
        namespaces=(hostile, "shop-*"),
    )
    message = render_digest(digest)
    assert_inert(message.text, message.blocks)
    # grouped by cluster (a bot serving several), in both layouts: a block per section, a block per cluster
    for count in (2, 12):
        parts = tuple(ClusterPart(hostile, digest.sections, namespaces=(hostile,)) for _ in range(count))
        grouped = render_digest(replace(digest, sections=(), clusters=parts, more=MORE_IN_CLUSTER))
        assert_inert(grouped.text, grouped.blocks)
    entry = AuditEntry(
        id=1,
        at=datetime(2026, 5, 1, tzinfo=UTC),
        slack_user=hostile,
        usergroups=(),
        k8s_user=hostile,
        k8s_groups=(),
        channel=hostile,
        verb="logs",
        target=hostile,
        namespace=hostile,
        params={},
        command=f"logs checkout --grep {hostile}",
        action_id=None,
        decision="denied",
        reason=hostile,
        outcome="denied",
        message=hostile,
        finished_at=None,
        repeats=2,
    )
    for outcome in ("denied", "done", "failed"):
        line = render_audit_entry(replace(entry, outcome=outcome))
        assert_inert(line.text, line.blocks)
        # naming the cluster (a bot serving several): a stored name is a DNS label, escaped all the same
        line = render_audit_entry(replace(entry, outcome=outcome, cluster=hostile), cluster=True)
        assert_inert(line.text, line.blocks)


def test_a_hand_made_message_still_goes_out_inert(slack: SlackEmulator) -> None:
    """The guard on the way out: a message a renderer did not escape is escaped by `to_slack`."""
    poster = Poster(make_web_client(token=slack.bot_token, base_url=slack.api_url))
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "deploy <!channel> <https://evil.example|x>"}}
    poster.post(OPS, Message(text="<!here> raw", blocks=[section]))
    posted = slack.messages(OPS)[-1]
    assert tokens(posted) == []
    assert slack.lints(kind="broadcast_ping") == []
    assert payload(Message(text="<!channel>", blocks=[]))["text"] == "&lt;!channel&gt;"


def test_long_commands_ride_in_buttons_by_id_short_ones_as_text(tmp_path: Path) -> None:
    store = ButtonCommands(Database(tmp_path / "bot.db"))
    values = StoredButtonValues(store)
    long = "logs checkout " + " ".join(f"--p{i} {'z' * 200}" for i in range(12))
    value = values.value_for(long)
    assert value is not None and value.startswith("cmd:") and len(value) <= 2000
    assert values.command_for(value) == long
    assert values.value_for("why checkout -n shop") == "why checkout -n shop"
    assert values.value_for("cmd:forged") != "cmd:forged"  # text that looks like an id is stored too
    assert values.command_for("cmd:ffffffffffffffffffffffff") is None
    assert INLINE.value_for(long) is None  # without a store, no button rather than a cut command
    answer = Answer(verb="x", data={"confirm": {"command": long, "text": "t"}}, title="t", buttons=(Button("L", long),))
    elements = [
        e for b in render_answer(answer, buttons=values).blocks if b["type"] == "actions" for e in b["elements"]
    ]
    assert [len(e["value"]) <= 2000 for e in elements] == [True, True, True]
    assert values.command_for(elements[0]["value"]) == long


def test_an_alert_with_a_long_button_command_renders_inside_the_alert_transaction(tmp_path: Path) -> None:
    """The alert engine renders in the transaction that writes the outbox row: storing a long button
    command joins it (and is rolled back with it) instead of failing to open a second one."""
    database = Database(tmp_path / "bot.db")
    store = ButtonCommands(database)
    long_name = "w" * 2100
    details = {
        "id": 1,
        "workload": {"kind": "Deployment", "namespace": "shop", "name": long_name},
        "category": "crash-loop",
        "what": "crashes",
        "cluster": "c",
        "state": "firing",
    }
    with database.transaction():
        _, blocks = BlockKitAlerts(values=StoredButtonValues(store)).alert(details)
    values = [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert values and all(v.startswith("cmd:") and len(v) <= 2000 for v in values)
    assert all(long_name in (StoredButtonValues(store).command_for(v) or "") for v in values)


def test_expired_button_commands_are_pruned(tmp_path: Path) -> None:
    now = [datetime(2026, 5, 1, tzinfo=UTC)]
    store = ButtonCommands(Database(tmp_path / "bot.db"), retention=timedelta(days=30), clock=lambda: now[0])
    old = store.save("x" * 2500)
    now[0] += timedelta(days=31)
    assert store.get(old) is None
    store.save("y" * 2500)  # saving prunes what expired
    assert store.prune() == 0
    assert store.database.db.execute("SELECT count(*) FROM button_commands").fetchone()[0] == 1


# -- the structure that keeps it so -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
POSTING_CALLS = re.compile(
    r"\.(chat_postMessage|chat_update|chat_postEphemeral|chat_scheduleMessage|files_upload_v2|files_upload"
    r"|views_open|views_update|views_push|views_publish|say)\("
)


def test_only_the_poster_calls_slacks_posting_methods_and_replies_send_rendered_messages() -> None:
    """Every Web API call that shows text is in bot/slack/client.py (which takes `Message`s); the
    handlers' `respond(...)`/`ack(...)` only ever send `payload(message)` or nothing."""
    sources = [p for root in ("bot", "handlers", "k8sbot") for p in (REPO / root).rglob("*.py")]
    posting = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sources
        if p != REPO / "bot" / "slack" / "client.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if POSTING_CALLS.search(line)
    ]
    assert posting == []
    raw_replies = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in (REPO / "handlers").glob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\b(respond|ack|_post)\([^)]*\btext=", line)
    ]
    assert raw_replies == []
