"""The Slack-backed `Directory` that permissions use to learn a user's user groups.

Caching (with a TTL) is done by the permissions layer; this only translates calls and errors.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import SlackUnavailable

log = logging.getLogger(__name__)


class SlackDirectory:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        try:
            response = self.client.users_info(user=user_id)
        except SlackApiError as e:
            if e.response.get("error") in ("user_not_found", "user_not_visible"):
                return {}
            raise SlackUnavailable(f"Slack users.info failed: {e.response.get('error')}") from e
        except SlackClientError as e:
            raise SlackUnavailable(f"Slack users.info failed: {e}") from e
        user: Mapping[str, Any] = response.get("user") or {}
        return user

    def usergroup_members(self, group_id: str) -> Collection[str]:
        try:
            response = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as e:
            if e.response.get("error") == "no_such_subteam":
                log.warning("permissions name user group %s, which Slack does not know", group_id)
                return ()
            raise SlackUnavailable(f"Slack usergroups.users.list failed: {e.response.get('error')}") from e
        except SlackClientError as e:
            raise SlackUnavailable(f"Slack usergroups.users.list failed: {e}") from e
        return tuple(response.get("users") or ())
