"""permissions.yaml: the example file is valid, mistakes are reported with file, line and field,
and a running bot keeps its last good policy when an edit breaks the file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.permissions.policy import PolicyFile, load_policy, parse_policy
from tests.wiring_helpers import VERB_NAMES

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    channel: C0SHOP
    namespaces: [shop, shop-*]
    members: {users: [U0ALICE], usergroups: [S0SHOPDEV]}
    role: operator
    kubernetes: {user: "slack:{user_id}", groups: [team-shop]}
bindings:
  - {users: [], usergroups: [S0SRE], role: operator, namespaces: ["*"]}
defaults: {role: null}
limits: {max_replicas: 20}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, verbs=VERB_NAMES, source="perms.yaml")
    return str(caught.value)


def test_the_contract_shape_loads() -> None:
    policy = parse_policy(GOOD, verbs=VERB_NAMES)
    shop = policy.teams["shop"]
    assert shop.namespaces == ("shop", "shop-*")
    assert shop.kubernetes is not None and shop.kubernetes.user_for("U0ALICE") == "slack:U0ALICE"
    assert policy.bindings[0].namespaces == ("*",)
    assert policy.defaults.role is None
    assert policy.limits.max_replicas == 20
    assert policy.mentioned_usergroups() == {"S0SHOPDEV", "S0SRE"}


def test_the_example_at_the_repo_root_is_valid() -> None:
    policy = load_policy(REPO / "permissions.yaml", verbs=VERB_NAMES)
    assert {"viewer", "operator"} <= set(policy.roles)
    assert policy.teams


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    role: operator\n", "    role: admin\n", "perms.yaml:9: teams.shop.role: unknown role 'admin'"),
        (
            "[why, status, logs, describe, changes, can-i]",
            "[why, statsu]",
            "perms.yaml:2: roles.viewer[1]: unknown verb 'statsu'",
        ),
        ("    channel: C0SHOP", "    chanel: C0SHOP", "perms.yaml:6: teams.shop.chanel: unknown field"),
        (
            "[shop, shop-*]",
            '[shop, "shop-[ab]"]',
            "perms.yaml:7: teams.shop.namespaces[1]: 'shop-[ab]' is not a namespace glob",
        ),
        (
            "users: [U0ALICE]",
            "users: [alice]",
            "perms.yaml:8: teams.shop.members.users[0]: 'alice' is not a Slack user id",
        ),
        ("channel: C0SHOP", "channel: '#shop'", "perms.yaml:6: teams.shop.channel: '#shop' is not a Slack channel id"),
        (
            "max_replicas: 20",
            "max_replicas: true",
            "perms.yaml:14: limits.max_replicas: Input should be a valid integer",
        ),
        (
            "max_replicas: 20",
            "max_replicas: 99999999",
            "perms.yaml:14: limits.max_replicas: Input should be less than or equal to 10000",
        ),
        (
            "groups: [team-shop]",
            "groups: [system:masters]",
            "perms.yaml:10: teams.shop.kubernetes.groups[0]: 'system:masters': 'system:' groups are reserved",
        ),
        (
            '"slack:{user_id}"',
            '"slack:{user_name}"',
            "perms.yaml:10: teams.shop.kubernetes.user: 'slack:{user_name}': the only placeholder allowed is {user_id}",
        ),
        ("  shop:\n", "  Shop Team:\n", "perms.yaml:5: teams.Shop Team: 'Shop Team' is not a team name"),
        ("    namespaces: [shop, shop-*]\n", "", "perms.yaml:6: teams.shop.namespaces: required field is missing"),
        (
            "role: operator, namespaces",
            "role: root, namespaces",
            "perms.yaml:12: bindings[0].role: unknown role 'root'",
        ),
        ("[shop, shop-*]", "[shop, shop-*", "perms.yaml:8: not valid YAML"),
        (
            "limits: {max_replicas: 20}\n",
            "limits: {max_replicas: 20}\nlimits: {max_replicas: 50}\n",
            "perms.yaml:15: limits: duplicate key",
        ),
    ],
    ids=[
        "unknown-role",
        "unknown-verb",
        "misspelt-field",
        "bad-glob",
        "bad-user-id",
        "channel-name-not-id",
        "bool-count",
        "huge-limit",
        "system-group",
        "unsafe-placeholder",
        "bad-team-name",
        "missing-namespaces",
        "binding-unknown-role",
        "yaml-syntax",
        "duplicate-key",
    ],
)
def test_mistakes_name_the_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert expected in _error(GOOD.replace(old, new, 1))


def test_every_mistake_is_listed_not_only_the_first() -> None:
    text = GOOD.replace("users: [U0ALICE]", "users: [alice]").replace("role: operator\n", "role: admin\n", 1)
    message = _error(text)
    assert "perms.yaml:8:" in message and "perms.yaml:9:" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "roles: [viewer]\n"])
def test_wrong_top_level_shapes(text: str) -> None:
    assert _error(text).startswith("perms.yaml:")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read permissions file"):
        load_policy(tmp_path / "absent.yaml", verbs=VERB_NAMES)


def test_reload_picks_up_a_good_edit_and_keeps_the_last_good_policy_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(GOOD)
    policy_file = PolicyFile(path, verbs=VERB_NAMES, check_every=0)
    assert policy_file.current().limits.max_replicas == 20

    path.write_text(GOOD.replace("max_replicas: 20", "max_replicas: 5"))
    assert policy_file.current().limits.max_replicas == 5

    with caplog.at_level(logging.ERROR, logger="bot.permissions.policy"):
        path.write_text(GOOD.replace("max_replicas: 20", "max_replicas: lots"))
        assert policy_file.current().limits.max_replicas == 5  # the last good one
    assert "keeping the last good policy" in caplog.text
    assert "limits.max_replicas" in caplog.text
    assert policy_file.last_error is not None and ":14:" in policy_file.last_error

    path.write_text(GOOD.replace("max_replicas: 20", "max_replicas: 7"))
    assert policy_file.current().limits.max_replicas == 7
    assert policy_file.last_error is None


def test_a_deleted_file_keeps_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(GOOD)
    policy_file = PolicyFile(path, verbs=VERB_NAMES, check_every=0)
    path.unlink()
    assert policy_file.current().teams["shop"].role == "operator"


def test_the_first_load_of_a_bad_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(GOOD.replace("role: operator\n", "role: admin\n", 1))
    with pytest.raises(ConfigError, match=r"permissions.yaml:9: teams.shop.role"):
        PolicyFile(path, verbs=VERB_NAMES)
