"""Web API faithfulness: real slack_sdk WebClient against the emulator."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler

from slack_emulator import Clock, SlackEmulator
from slack_emulator.testing import clean_slack_env


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with clean_slack_env(), SlackEmulator(clock=Clock()) as e:
        e.add_user("U0ALICE01", name="alice", real_name="Alice", email="alice@example.com")
        e.add_user("U0BOB0001", name="bob", email="bob@example.com")
        e.add_user("U0CAROL01", name="carol")
        e.add_channel("C0OPS0001", "ops", members=["U0ALICE01", "U0BOB0001"])
        e.add_channel("C0BOTS001", "bots", members=["U0ALICE01"], bot_member=True)
        e.add_channel("G0SECRET1", "secret", members=["U0ALICE01"], is_private=True)
        e.add_channel("G0PRIVBOT", "priv-bot", members=["U0ALICE01"], is_private=True, bot_member=True)
        e.add_usergroup("S0ONCALL1", "oncall", users=["U0ALICE01", "U0BOB0001"])
        yield e


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url)


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_binds_loopback_and_api_url(emu: SlackEmulator) -> None:
    assert emu.api_url.startswith("http://127.0.0.1:") and emu.api_url.endswith("/api/")
    assert emu.socket.mint_url().startswith(f"ws://127.0.0.1:{emu.socket.port}/link/?ticket=")


def test_auth_test_empty_json_body_and_scopes_header(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == emu.workspace.bot_user_id and resp["bot_id"] == emu.workspace.bot_id
    assert "chat:write" in resp.headers["x-oauth-scopes"]
    status, _, body = raw_post(
        emu.api_url + "auth.test", b"", {"Content-Type": "application/json", "Authorization": f"Bearer {emu.bot_token}"}
    )
    assert status == 200 and json.loads(body)["ok"] is True
    # GET-style path without /api/ works too (Bolt's own mock uses it)
    status, _, body = raw_post(
        emu.base_url + "/auth.test",
        f"token={emu.bot_token}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert json.loads(body)["ok"] is True


@pytest.mark.parametrize(
    ("token", "method", "error"),
    [
        (None, "auth.test", "not_authed"),
        ("xoxb-wrong", "auth.test", "invalid_auth"),
        ("xapp-1-AEMULATOR-emulator-app-token", "chat.postMessage", "not_allowed_token_type"),
        ("xoxb-emulator-bot-token", "apps.connections.open", "not_allowed_token_type"),
    ],
)
def test_token_errors(emu: SlackEmulator, token: str | None, method: str, error: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=token, base_url=emu.api_url).api_call(method, params={"channel": "C0OPS0001", "text": "x"})
    assert exc.value.response.status_code == 200 and exc.value.response["error"] == error


def test_revoked_token(emu: SlackEmulator, client: WebClient) -> None:
    emu.revoke_token(emu.bot_token)
    with pytest.raises(SlackApiError, match="token_revoked"):
        client.auth_test()


def test_post_thread_update_permalink(emu: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0OPS0001", text="incident", team_id="T0EMULATE")  # unknown param
    reply = client.chat_postMessage(channel="C0OPS0001", text="detail", thread_ts=parent["ts"])
    # replying to a reply lands in the parent's thread
    client.chat_postMessage(channel="C0OPS0001", text="more", thread_ts=reply["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert [m["text"] for m in emu.messages("C0OPS0001")] == ["incident"]
    thread = emu.thread("C0OPS0001", parent["ts"])
    assert [m["text"] for m in thread] == ["incident", "detail", "more"]
    assert thread[0]["reply_count"] == 2
    upd = client.chat_update(channel="C0OPS0001", ts=parent["ts"], text="incident (resolved)")
    assert upd["message"]["edited"]["user"] == emu.workspace.bot_user_id
    assert emu.messages("C0OPS0001")[0]["text"] == "incident (resolved)"
    assert [m["text"] for m in emu.edits("C0OPS0001", parent["ts"])] == ["incident"]
    link = client.chat_getPermalink(channel="C0OPS0001", message_ts=reply["ts"])["permalink"]
    assert link == (
        f"https://emulated.slack.com/archives/C0OPS0001/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={parent['ts']}&cid=C0OPS0001"
    )
    with pytest.raises(SlackApiError, match="thread_not_found"):
        client.chat_postMessage(channel="C0OPS0001", text="x", thread_ts="1.000001")
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C0OPS0001", ts="1.000001", text="x")


def test_blocks_as_json_string_and_no_text(emu: SlackEmulator, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    with pytest.warns(UserWarning):  # slack_sdk warns about blocks without text, Slack accepts it
        resp = client.chat_postMessage(channel="C0OPS0001", blocks=json.dumps(blocks))
    assert resp["message"]["blocks"][0]["text"]["text"] == "*hi*"
    assert resp["message"]["blocks"][0]["block_id"]  # Slack assigns a block_id
    with pytest.raises(SlackApiError, match="no_text"):
        client.chat_postMessage(channel="C0OPS0001")
    with pytest.raises(SlackApiError, match="invalid_blocks_format"):
        client.api_call("chat.postMessage", json={"channel": "C0OPS0001", "text": "x", "blocks": "{not json"})


def test_channel_access_rules(emu: SlackEmulator, client: WebClient) -> None:
    # public channel, bot not a member: chat:write.public lets it post
    assert client.chat_postMessage(channel="#ops", text="by name")["channel"] == "C0OPS0001"
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel="G0SECRET1", text="x")
    assert client.chat_postMessage(channel="G0PRIVBOT", text="x")["ok"]
    emu.scopes.remove("chat:write.public")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        client.chat_postMessage(channel="C0OPS0001", text="x")
    # user id as channel opens the DM
    assert client.chat_postMessage(channel="U0ALICE01", text="dm")["channel"] == "D0ALICE01"


def test_post_ephemeral(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.chat_postEphemeral(channel="C0OPS0001", user="U0ALICE01", text="only you")
    assert resp["message_ts"]
    [eph] = emu.ephemerals("C0OPS0001", "U0ALICE01")
    assert eph.text == "only you" and eph.source == "chat.postEphemeral"
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        client.chat_postEphemeral(channel="C0OPS0001", user="U0CAROL01", text="x")


def test_text_truncation_and_update_limit(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.chat_postMessage(channel="C0OPS0001", text="a" * 40_010)
    assert resp["warning"] == "message_truncated"
    assert resp["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(emu.message("C0OPS0001", resp["ts"])["text"]) == 40_000
    with pytest.raises(SlackApiError, match="msg_too_long"):
        client.chat_update(channel="C0OPS0001", ts=resp["ts"], text="b" * 4001)


def test_users_groups_conversations(emu: SlackEmulator, client: WebClient) -> None:
    user = client.users_info(user="U0ALICE01")["user"]
    assert user["profile"]["email"] == "alice@example.com" and user["real_name"] == "Alice"
    emu.scopes.remove("users:read.email")
    assert "email" not in client.users_info(user="U0ALICE01")["user"]["profile"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U0NOBODY1")
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert groups[0]["handle"] == "oncall" and groups[0]["user_count"] == "2"
    assert client.usergroups_users_list(usergroup="S0ONCALL1")["users"] == ["U0ALICE01", "U0BOB0001"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S0NOPE001")
    info = client.conversations_info(channel="C0OPS0001", include_num_members=True)["channel"]
    assert info["name"] == "ops" and info["num_members"] == 2 and info["is_member"] is False
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.conversations_info(channel="G0SECRET1")


def test_conversations_members_cursor_pagination(emu: SlackEmulator, client: WebClient) -> None:
    members = [f"U{i:08d}" for i in range(7)]
    emu.add_channel("C0BIG0001", "big", members=members)
    pages, last_cursor = [], None
    for page in client.conversations_members(channel="C0BIG0001", limit=3):  # SDK paginator follows cursors
        pages.append(list(page["members"]))
        last_cursor = page["response_metadata"]["next_cursor"]
    assert pages == [members[:3], members[3:6], members[6:]]
    assert last_cursor == ""
    with pytest.raises(SlackApiError, match="invalid_cursor"):
        client.conversations_members(channel="C0BIG0001", cursor="garbage!")
    with pytest.raises(SlackApiError, match="invalid_limit"):
        client.conversations_members(channel="C0BIG0001", limit=5000)


def test_files_upload_v2(emu: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0BOTS001", text="logs below")
    resp = client.files_upload_v2(
        channel="C0BOTS001",
        content="line1\nline2\n",
        filename="pod.log",
        title="pod logs",
        initial_comment="here",
        thread_ts=parent["ts"],
    )
    assert resp["file"]["title"] == "pod logs"
    [f] = emu.files()
    assert f.content == b"line1\nline2\n" and f.channels == ["C0BOTS001"] and f.thread_ts == parent["ts"]
    thread = emu.thread("C0BOTS001", parent["ts"])
    assert thread[1]["files"][0]["id"] == f.id and thread[1]["text"] == "here"
    calls = [c.method for c in emu.calls()]
    assert calls[-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    upload_url = emu.calls("files.getUploadURLExternal")[0].response["upload_url"]
    assert upload_url.startswith(emu.base_url + "/upload/")
    with pytest.raises(SlackApiError, match="missing_scope"):
        client.files_info(file=f.id)
    emu.scopes.append("files:read")
    assert client.files_info(file=f.id)["file"]["name"] == "pod.log"
    with pytest.raises(SlackApiError, match="not_in_channel"):  # uploads need membership, unlike posts
        client.files_upload_v2(channel="C0OPS0001", content="x", filename="x.txt")
    with pytest.raises(SlackApiError, match="file_not_found"):
        client.files_completeUploadExternal(files=[{"id": "F0MISSING"}], channel_id="C0BOTS001")


def _png(width: int, height: int) -> bytes:
    """The smallest header a PNG reader looks at: signature and IHDR (enough for Slack to call it an image)."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0\0\0\0"


def test_image_upload_with_alt_text_and_its_limit(emu: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0BOTS001", text="alert")
    resp = client.files_upload_v2(
        channel="C0BOTS001",
        content=_png(1000, 460),
        filename="timeline.png",
        title="Timeline",
        alt_txt="Timeline of checkout: 2 changes",
        thread_ts=parent["ts"],
    )
    file = resp["file"]
    assert (file["mimetype"], file["filetype"]) == ("image/png", "png")
    assert (file["original_w"], file["original_h"]) == (1000, 460)
    assert file["alt_txt"] == "Timeline of checkout: 2 changes"
    assert emu.thread("C0BOTS001", parent["ts"])[1]["files"][0]["id"] == file["id"]
    with pytest.raises(SlackApiError, match="alt_txt_too_large"):  # the documented limit: 1000 characters
        client.files_upload_v2(channel="C0BOTS001", content=_png(1, 1), filename="x.png", alt_txt="x" * 1001)
    client.files_upload_v2(channel="C0BOTS001", content=_png(1, 1), filename="y.png", alt_txt="y" * 1000)
    assert client.files_upload_v2(channel="C0BOTS001", content="plain", filename="z.txt")["file"]["mimetype"] == (
        "text/plain"
    )


def test_rate_limit_429_retried_by_handler(emu: SlackEmulator) -> None:
    emu.rate_limit("chat.postMessage", retry_after=0, times=1)
    plain = WebClient(token=emu.bot_token, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as exc:
        plain.chat_postMessage(channel="C0OPS0001", text="x")
    assert exc.value.response.status_code == 429 and exc.value.response["error"] == "ratelimited"
    assert exc.value.response.headers["Retry-After"] == "0"
    emu.rate_limit("chat.postMessage", retry_after=0, times=1)
    retrying = WebClient(
        token=emu.bot_token, base_url=emu.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert retrying.chat_postMessage(channel="C0OPS0001", text="after retry")["ok"]
    statuses = [c.status for c in emu.calls("chat.postMessage")]
    assert statuses == [429, 429, 200]


def test_outage_injection(emu: SlackEmulator, client: WebClient) -> None:
    emu.fail("*", error="service_unavailable", http_status=503, for_seconds=60)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0OPS0001", text="x")
    assert exc.value.response.status_code == 503
    emu.clock.advance(61)
    assert client.chat_postMessage(channel="C0OPS0001", text="back")["ok"]
    emu.fail("chat.update", error="internal_error", http_status=500, times=1)
    retrying = WebClient(
        token=emu.bot_token, base_url=emu.api_url, retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)]
    )
    ts = emu.messages("C0OPS0001")[-1]["ts"]
    assert retrying.chat_update(channel="C0OPS0001", ts=ts, text="edited")["ok"]
    emu.fail("users.info", error="fatal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="fatal_error"):
            client.users_info(user="U0ALICE01")
    assert client.users_info(user="U0ALICE01")["ok"]


def test_posting_rate_enforcement(emu: SlackEmulator, client: WebClient) -> None:
    emu.clock.freeze()
    emu.enforce_posting_rate(per_second=1.0, burst=2)
    client.chat_postMessage(channel="C0OPS0001", text="1")
    client.chat_postMessage(channel="C0OPS0001", text="2")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0OPS0001", text="3")
    assert exc.value.response.status_code == 429 and exc.value.response.headers["Retry-After"] == "1"
    assert client.chat_postMessage(channel="G0PRIVBOT", text="other channel unaffected")["ok"]
    emu.clock.advance(1.0)
    assert client.chat_postMessage(channel="C0OPS0001", text="3")["ok"]


def test_call_recording(emu: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel="C0OPS0001", text="x", blocks=[{"type": "divider"}])
    [call] = emu.calls("chat.postMessage")
    assert call.args["blocks"] == [{"type": "divider"}] and call.status == 200 and call.ok
    assert call.token == emu.bot_token and call.time <= time.time() + 1


def test_wait_for_describes_what(emu: SlackEmulator) -> None:
    with pytest.raises(AssertionError, match="waiting for a reply in #ops"):
        emu.wait_for(lambda: emu.messages("C0OPS0001"), timeout=0.1, what="a reply in #ops")
