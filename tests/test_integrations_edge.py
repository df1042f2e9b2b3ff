"""The HTTP edge of the integrations (handlers/integrations.py): the token, the content type and the
JSON framing are checked before a receiver sees anything; a refusal reaches no receiver."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from bot.integrations.receiving import Outcome, Receivers
from handlers.integrations import IntegrationRoutes
from handlers.serving import HttpApp, HttpServer, Readiness

TOKEN = "t0ken-for-tests-0123456789"


class Recording:
    """A receiver that keeps what it was given and accepts it."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def receive(self, payload: Any) -> Outcome:
        self.payloads.append(payload)
        return Outcome.accepted(count=len(self.payloads))


@pytest.fixture
def served() -> Iterator[tuple[str, Recording]]:
    receiver = Recording()
    readiness = Readiness(slack_connected=lambda: True, cluster_reachable=lambda: True)
    routes = IntegrationRoutes(token=TOKEN, receivers=Receivers(changes=receiver))
    server = HttpServer(HttpApp(app=None, readiness=readiness, integrations=routes), host="127.0.0.1", port=0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", receiver
    finally:
        server.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], Message]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


JSON = {"Content-Type": "application/json"}


def test_a_valid_token_and_json_reach_the_receiver(served: tuple[str, Recording]) -> None:
    base, receiver = served
    status, body, _ = post(base + "/integrations/changes", b'{"id": "x"}', {**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert (status, body) == (200, {"ok": True, "count": 1})
    assert receiver.payloads == [{"id": "x"}]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", "Bearer " + "a" * 5000],
)
def test_a_missing_or_wrong_token_is_401_and_reaches_nothing(
    served: tuple[str, Recording], authorization: str | None
) -> None:
    base, receiver = served
    headers = dict(JSON) if authorization is None else {**JSON, "Authorization": authorization}
    status, body, response_headers = post(base + "/integrations/changes", b"{}", headers)
    assert status == 401 and body["ok"] is False and "Bearer" in body["error"]
    assert response_headers.get("WWW-Authenticate") == 'Bearer realm="k8sbot"'
    assert receiver.payloads == []


@pytest.mark.parametrize(
    ("content_type", "raw", "status"),
    [
        ("text/plain", b"{}", 415),
        ("application/x-www-form-urlencoded", b"a=b", 415),
        ("application/json", b"{not json", 400),
        ("application/json", b"\xff\xfe", 400),
        ("application/json; charset=utf-8", b"[1, 2]", 200),  # any JSON value: the receiver validates it
    ],
)
def test_the_body_must_be_json(served: tuple[str, Recording], content_type: str, raw: bytes, status: int) -> None:
    base, receiver = served
    got, body, _ = post(
        base + "/integrations/changes", raw, {"Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"}
    )
    assert got == status
    assert receiver.payloads == ([[1, 2]] if status == 200 else [])
    if status != 200:
        assert body["ok"] is False and body["error"]


def test_a_path_without_a_receiver_is_not_served(served: tuple[str, Recording]) -> None:
    base, _ = served
    request = urllib.request.Request(
        base + "/integrations/alertmanager", data=b"{}", headers={**JSON, "Authorization": f"Bearer {TOKEN}"}
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=5)
    assert e.value.code == 404


def test_get_is_not_allowed(served: tuple[str, Recording]) -> None:
    base, _ = served
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/integrations/changes", timeout=5)
    assert e.value.code == 405 and e.value.headers["Allow"] == "POST"


def test_an_empty_token_cannot_serve() -> None:
    with pytest.raises(ValueError, match="token"):
        IntegrationRoutes(token="", receivers=Receivers())
