"""Alert routing: team channel by namespace glob, the k8sbot.dev/team annotation, the default channel."""

from __future__ import annotations

from bot.alerting.routing import TEAM_ANNOTATION, route
from bot.permissions.policy import parse_policy
from tests.wiring_helpers import VERB_NAMES

POLICY = parse_policy(
    """
roles:
  operator: [why, logs]
teams:
  shop:
    channel: C0SHOP
    namespaces: ["shop-*"]
    role: operator
  checkout:
    channel: C0CHECKOUT
    namespaces: ["shop-checkout"]
    role: operator
  payments:
    channel: C0PAY
    namespaces: ["pay*"]
    role: operator
  silent:
    namespaces: ["quiet"]
    role: operator
""",
    verbs=VERB_NAMES,
)


def test_the_team_whose_namespaces_match_gets_the_alert() -> None:
    found = route("payments", policy=POLICY, default_channel="C0DEFAULT")
    assert (found.channel, found.team) == ("C0PAY", "payments")


def test_the_most_specific_glob_wins() -> None:
    assert route("shop-checkout", policy=POLICY, default_channel=None).team == "checkout"
    assert route("shop-cart", policy=POLICY, default_channel=None).team == "shop"


def test_the_workload_annotation_beats_the_namespace_annotation_and_the_globs() -> None:
    found = route(
        "shop-cart",
        policy=POLICY,
        default_channel="C0DEFAULT",
        workload_annotations={TEAM_ANNOTATION: "payments"},
        namespace_annotations={TEAM_ANNOTATION: "checkout"},
    )
    assert (found.channel, found.team) == ("C0PAY", "payments")
    assert "workload annotation" in found.reason
    by_namespace = route(
        "shop-cart", policy=POLICY, default_channel=None, namespace_annotations={TEAM_ANNOTATION: "checkout"}
    )
    assert by_namespace.team == "checkout"


def test_an_annotation_naming_an_unknown_team_falls_back_and_says_why() -> None:
    found = route(
        "shop-cart", policy=POLICY, default_channel="C0DEFAULT", workload_annotations={TEAM_ANNOTATION: "nobody"}
    )
    assert found.team == "shop"
    unmatched = route(
        "other", policy=POLICY, default_channel="C0DEFAULT", workload_annotations={TEAM_ANNOTATION: "nobody"}
    )
    assert unmatched.channel == "C0DEFAULT" and "'nobody'" in unmatched.reason


def test_unmatched_namespaces_go_to_the_default_channel() -> None:
    found = route("other", policy=POLICY, default_channel="C0DEFAULT")
    assert (found.channel, found.team) == ("C0DEFAULT", None)
    # a team without a channel does not swallow its namespaces' alerts
    assert route("quiet", policy=POLICY, default_channel="C0DEFAULT").channel == "C0DEFAULT"


def test_no_channel_at_all_is_reported_not_dropped() -> None:
    found = route("other", policy=POLICY, default_channel=None)
    assert found.channel is None and "no default channel" in found.reason
    assert route("shop-cart", policy=None, default_channel=None).channel is None
    assert route(None, policy=POLICY, default_channel="C0DEFAULT").channel == "C0DEFAULT"  # a node
