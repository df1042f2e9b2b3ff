"""The small error tree every layer speaks.

Kubernetes and Slack exceptions are translated into these at the edge that meets them
(`bot.kube.client`, `bot.slack.client`) so that the rest of the code, and the single Slack error
handler, can answer a person with a clear sentence instead of a stack trace.
"""

from __future__ import annotations


class K8sBotError(Exception):
    """Base class: the message is safe to show to the person who asked."""


class ConfigError(K8sBotError):
    """Settings or a configuration file are missing or invalid. Stops the start."""


class UsageError(K8sBotError):
    """A malformed command. `usage` is the verb's usage line, shown with the message."""

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class NotFound(K8sBotError):
    """The named object does not exist. `candidates` are close matches worth suggesting."""

    def __init__(self, message: str, *, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.candidates = candidates


class Ambiguous(K8sBotError):
    """A name matches several objects; `candidates` lists them as the person could type them."""

    def __init__(self, message: str, *, candidates: tuple[str, ...]) -> None:
        super().__init__(message)
        self.candidates = candidates


class PermissionDenied(K8sBotError):
    """Refused by permissions.yaml or by the cluster's RBAC; the message says which and why."""


class Conflict(K8sBotError):
    """The object changed underneath us, or the action already ran."""


class StoreUnavailable(K8sBotError):
    """The bot's database cannot record anything now (deleted or replaced under the running bot,
    corrupt, read-only, disk full). Whatever needed recording, an action above all, was not done;
    the message names the file and what happened."""


class ClusterUnavailable(K8sBotError):
    """The Kubernetes API server could not be reached or answered with a server error."""


class SlackUnavailable(K8sBotError):
    """Slack (or the configured Slack API URL) could not be reached or kept failing.

    `code` is Slack's error code when Slack answered clearly (`ok: false`, e.g. `channel_not_found`),
    None when no clear answer came (a timeout, a 5xx): then the call may or may not have been taken.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
