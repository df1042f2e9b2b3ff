"""Several clusters, one bot: the settings, `--cluster`, and how a command picks its cluster.

These need no cluster: the two clusters' kubeconfigs point at a port on 127.0.0.1 where nothing
listens, so a command that reaches a cluster fails with its connection refused (the two-cluster
behaviour against real control planes is in tests/test_multi_cluster.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.dispatch import execute
from bot.commands.parsing import parse
from bot.commands.registry import VerbRegistry
from bot.errors import ClusterUnavailable, ConfigError, UsageError
from bot.model import Answer, Button
from bot.settings import Settings, load_settings
from k8sbot.wiring import Core, build_core
from tests.wiring_helpers import unanswered_kubeconfig

VERBS = VerbRegistry.discover()


@pytest.fixture
def core(tmp_path: Path) -> Core:
    settings = Settings(
        db=str(tmp_path / "bot.db"),
        clusters=[
            {"name": "prod-eu", "kubeconfig": unanswered_kubeconfig(tmp_path / "eu.yaml", "eu")},
            {"name": "prod-us", "kubeconfig": unanswered_kubeconfig(tmp_path / "us.yaml", "us")},
        ],
        channel_clusters={"C0EU": "prod-eu"},
    )
    return build_core(settings, permissions=False)


# -- settings ---------------------------------------------------------------------------------------


def test_without_clusters_the_one_cluster_is_cluster_name_from_the_kubeconfig() -> None:
    settings = Settings(cluster_name="staging", kubeconfig="/k", kube_context="c")
    (only,) = settings.cluster_configs()
    assert (only.name, only.kubeconfig, only.context) == ("staging", "/k", "c")
    assert settings.legacy_cluster == "staging"


def test_rows_before_the_upgrade_belong_to_cluster_name_if_listed_else_the_first() -> None:
    clusters = [{"name": "prod-eu"}, {"name": "prod-us", "kubeconfig": "/k"}]
    listed = Settings(cluster_name="prod-us", clusters=clusters)
    assert listed.legacy_cluster == "prod-us"
    unlisted = Settings(clusters=clusters)
    assert unlisted.legacy_cluster == "prod-eu"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("clusters: [{name: a}, {name: a}]", "line 1: clusters: cluster 'a' is listed twice"),
        ("clusters: [{name: Prod_EU}]", "clusters: 'Prod_EU' is not a cluster name"),
        ("clusters: [{name: a, kubeconfig: /k, extra: 1}]", "clusters"),
        ("clusters: [{name: a}, {name: b}]", "clusters a, b have no kubeconfig: only one entry can be"),
        ("clusters: [{name: a}]\nchannel_clusters: {C0EU: b}", "channel_clusters: channel C0EU names cluster 'b'"),
        ("clusters: [{name: a}]\nchannel_clusters: {'#eu': a}", "'#eu' is not a Slack channel id"),
    ],
)
def test_a_bad_clusters_setting_stops_the_start_with_one_line(tmp_path: Path, config: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config + "\n")
    with pytest.raises(ConfigError) as refused:
        load_settings({"K8SBOT_CONFIG": str(path)})
    message = str(refused.value)
    assert "\n" not in message
    assert expected in message.replace(f"K8SBOT_CONFIG: {path}:", "line ")


def test_an_unreadable_kubeconfig_of_one_cluster_stops_the_start_naming_it(tmp_path: Path) -> None:
    settings = Settings(
        db=str(tmp_path / "bot.db"),
        clusters=[{"name": "prod-eu", "kubeconfig": str(tmp_path / "missing.yaml")}, {"name": "prod-us"}],
    )
    with pytest.raises(ConfigError, match=r"^clusters: prod-eu: cannot load kubeconfig .*missing\.yaml"):
        build_core(settings, permissions=False)
    outside = Settings(db=str(tmp_path / "bot.db"), clusters=[{"name": "here"}])  # in-cluster, but not in one
    with pytest.raises(ConfigError, match=r"^clusters: here: no Kubernetes configuration"):
        build_core(outside, permissions=False)


# -- --cluster --------------------------------------------------------------------------------------


def test_every_verb_takes_cluster_and_its_canonical_text_keeps_it() -> None:
    for verb in VERBS.specs:
        text = f"{verb} --cluster prod-eu" if VERBS.specs[verb].target != "required" else f"{verb} x --cluster prod-eu"
        if VERBS.specs[verb].leading:
            continue  # can-i's first word is the verb it asks about: covered below
        command = parse(text, registry=VERBS)
        assert command.cluster == "prod-eu", verb
        assert parse(command.as_text(), registry=VERBS) == command
    assert parse("can-i rollback checkout --cluster=prod-eu", registry=VERBS).cluster == "prod-eu"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("why checkout --cluster", "`--cluster` needs a cluster name."),
        ("why checkout --cluster -n shop", "`--cluster` needs a cluster name."),
        ("why checkout --cluster PROD/eu", "`PROD/eu` is not a valid cluster name."),
        ("why checkout --cluster '<!channel>'", "is not a valid cluster name."),
    ],
)
def test_a_malformed_cluster_is_a_usage_error(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text, registry=VERBS)
    assert expected in str(refused.value)


# -- the router -------------------------------------------------------------------------------------


def test_without_cluster_or_channel_default_the_person_is_asked_never_a_guess(core: Core) -> None:
    with pytest.raises(UsageError) as asked:
        execute(core.router, text="status -n shop")
    assert "Which cluster? Add `--cluster <name>`: prod-eu, prod-us." in str(asked.value)


def test_an_unknown_cluster_is_named_with_the_closest_one(core: Core) -> None:
    with pytest.raises(UsageError) as refused:
        execute(core.router, text="status -n shop --cluster prod-euu")
    assert "I don't know a cluster `prod-euu`. Did you mean `prod-eu`?" in str(refused.value)


def test_the_flag_wins_over_the_channel_and_the_channel_over_nothing(core: Core) -> None:
    with pytest.raises(ClusterUnavailable) as in_channel:
        execute(core.router, text="status -n shop", channel="C0EU")
    assert str(in_channel.value).startswith("prod-eu: ")
    with pytest.raises(ClusterUnavailable) as flagged:
        execute(core.router, text="status -n shop --cluster prod-us", channel="C0EU")
    assert str(flagged.value).startswith("prod-us: ")


def test_a_cluster_known_to_be_unreachable_is_answered_at_once_and_the_other_still_tried(core: Core) -> None:
    core.cluster("prod-us").reachability.record(False, "connection refused")
    with pytest.raises(ClusterUnavailable) as away:
        execute(core.router, text="status -n shop --cluster prod-us")
    message = str(away.value)
    assert message.startswith("prod-us is unreachable since ") and "UTC (connection refused)" in message
    with pytest.raises(ClusterUnavailable) as tried:  # the other cluster is asked (and refuses here)
        execute(core.router, text="status -n shop --cluster prod-eu")
    assert "unreachable since" not in str(tried.value)
    core.cluster("prod-us").reachability.record(True)
    with pytest.raises(ClusterUnavailable) as back:
        execute(core.router, text="status -n shop --cluster prod-us")
    assert "unreachable since" not in str(back.value)


def test_help_names_the_clusters_and_the_flag(core: Core) -> None:
    answer = execute(core.router, text="help")
    assert "Clusters: prod-eu, prod-us." in "\n".join(answer.lines)
    assert "[--cluster name]" in answer.lines[0]
    detailed = execute(core.router, text="help why")
    assert any("--cluster <name>" in line for line in detailed.lines)


def test_answers_name_their_cluster_and_their_buttons_carry_it(core: Core) -> None:
    answer = Answer(
        "why",
        {"healthy": False},
        "checkout is not healthy",
        buttons=(
            Button("Roll back", "rollback deploy/checkout -n shop --to-revision 3"),
            Button("Logs", "logs deploy/checkout -n shop --cluster prod-us"),
        ),
    )
    finished = core.router.finish(answer, "prod-eu")
    assert finished.data["cluster"] == "prod-eu"
    rollback, logs = (parse(b.command, registry=VERBS) for b in finished.buttons)
    assert rollback.cluster == "prod-eu" and rollback.flag("to-revision") == "3"
    assert logs.cluster == "prod-us"  # a button that names its cluster keeps it
