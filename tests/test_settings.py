"""Configuration: missing or contradictory settings stop the start with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.permissions == "permissions.yaml"
    assert settings.digest_cron == "0 9 * * mon-fri"


def test_environment_wins_over_config_file(tmp_path: Path) -> None:
    config = tmp_path / "k8sbot.yaml"
    config.write_text("cluster_name: from-file\nchannel_namespaces: {C0SHOP: shop}\n")
    settings = load_settings({"K8SBOT_CONFIG": str(config), "K8SBOT_CLUSTER_NAME": "from-env"})
    assert settings.cluster_name == "from-env"
    assert settings.channel_namespaces == {"C0SHOP": "shop"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"K8SBOT_SLACK_API_URL": "slack.com"}, "K8SBOT_SLACK_API_URL"),
        ({"K8SBOT_HTTP_PORT": "70000"}, "K8SBOT_HTTP_PORT"),
        ({"K8SBOT_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ({"K8SBOT_RETENTION_DAYS": "0"}, "K8SBOT_RETENTION_DAYS"),
    ],
)
def test_invalid_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env)
    assert message in str(error.value)


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    config = tmp_path / "k8sbot.yaml"
    config.write_text("slack_api_ulr: http://x\n")
    with pytest.raises(ConfigError, match="unknown setting 'slack_api_ulr'"):
        load_settings({"K8SBOT_CONFIG": str(config)})


@pytest.mark.parametrize(
    ("env", "http", "message"),
    [
        ({}, False, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xapp-1"}, False, "must be a bot token"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, False, "SLACK_APP_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, False, "app-level token"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, True, "SLACK_SIGNING_SECRET is not set"),
    ],
)
def test_slack_requirements_per_mode(env: dict[str, str], http: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env).require_slack(http=http)


def _run_bot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "K8SBOT_SLACK_API_URL": "http://127.0.0.1:9/api/"}
    return subprocess.run(
        [sys.executable, "-m", "k8sbot", "run", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )


def test_start_without_token_exits_with_one_clear_line(tmp_path: Path) -> None:
    result = _run_bot(tmp_path, {})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "k8sbot: SLACK_BOT_TOKEN is not set: give the bot token (xoxb-…) of your Slack app."
    ]


def test_start_with_unreadable_permissions_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "K8SBOT_PERMISSIONS": str(tmp_path / "nope.yaml")}
    result = _run_bot(tmp_path, env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "K8SBOT_PERMISSIONS" in lines[0] and "nope.yaml" in lines[0]
