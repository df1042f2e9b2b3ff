"""The HTTP edge of the integrations: `POST /integrations/alertmanager` and `POST /integrations/changes`.

Thin, like the Slack listeners: check the bearer token (Alertmanager's `http_config.authorization`,
`Authorization: Bearer <token>`), read a JSON body, hand the parsed value to the path's receiver
(bot/integrations) and answer its outcome as JSON. Without `integration_token` configured neither
path exists (404), so a bot that does not use integrations exposes nothing new.

Refusals here change nothing: 401 for a missing or wrong token (compared in constant time), 415 for
a body that is not `application/json`, 400 for one that is not UTF-8 JSON. The body's size is bounded
by the server (`handlers.serving.MAX_BODY`, 413 above it).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from wsgiref.types import WSGIEnvironment

from bot.integrations.receiving import Outcome, Receiver, Receivers

log = logging.getLogger(__name__)

Answer = tuple[int, bytes, dict[str, str]]
"""What a route answers: status, body and extra headers (`content-type` among them)."""


class IntegrationRoutes:
    """The integration paths a bot with a token serves, each `POST` only."""

    def __init__(self, *, token: str, receivers: Receivers) -> None:
        if not token:
            raise ValueError("an integration route needs a token")
        self._token = token.encode()
        self._receivers = receivers

    def routes(self) -> dict[str, tuple[str, Callable[[WSGIEnvironment], Answer]]]:
        """Path → ("POST", handler) for every receiver that exists."""
        served: dict[str, tuple[str, Callable[[WSGIEnvironment], Answer]]] = {}
        if self._receivers.alertmanager is not None:
            served["/integrations/alertmanager"] = ("POST", self._serving(self._receivers.alertmanager))
        if self._receivers.changes is not None:
            served["/integrations/changes"] = ("POST", self._serving(self._receivers.changes))
        return served

    def _serving(self, receiver: Receiver) -> Callable[[WSGIEnvironment], Answer]:
        def serve(environ: WSGIEnvironment) -> Answer:
            return self.handle(environ, receiver)

        return serve

    def handle(self, environ: WSGIEnvironment, receiver: Receiver) -> Answer:
        if not self._authorized(str(environ.get("HTTP_AUTHORIZATION") or "")):
            log.info("integrations: refused a request to %s without a valid token", environ.get("PATH_INFO"))
            answer = _json(Outcome.refused("a valid `Authorization: Bearer <token>` header is required", status=401))
            answer[2]["www-authenticate"] = 'Bearer realm="k8sbot"'
            return answer
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _json(Outcome.refused("send the body as application/json", status=415))
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress has validated it (and the limit)
        try:
            payload = json.loads(environ["wsgi.input"].read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json(Outcome.refused("the body is not UTF-8 JSON"))
        except RecursionError:  # `[[[[…` within the size limit: nested deeper than any event is
            return _json(Outcome.refused("the body is nested too deeply"))
        return _json(receiver.receive(payload))

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self._token)


def _json(outcome: Outcome) -> Answer:
    return outcome.status, json.dumps(outcome.body).encode() + b"\n", {"content-type": "application/json"}
