"""`why`, `status` and `describe` from the watch cache of a running bot, on the real cluster.

The bot runs as `k8sbot run` does (its watchers feed the cache; Slack through the emulator). On the
same scenario, its answer from the cache must equal the snapshot path's answer (the one `k8sbot ask`
gives without a running bot), cost one API call (the check of the target against the API server)
besides logs, and follow a change made a moment before: either the cache has it, or the answer says
the cache was behind and comes from the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import patch
from kubernetes import client as k8s_client
from scenarios import BREAKERS, EXPECTED_CATEGORY, deploy_checkout

from bot.commands.context import CommandServices, VerbContext
from bot.commands.parsing import parse
from bot.diagnosis.engine import LOGGED
from bot.kube.client import KubeClient
from bot.model import Subject
from handlers.serving import ReadinessPolicy
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, running_bot
from tests.why_helpers import ask_json, slack_why
from tests.wiring_helpers import VERBS

QUIET = ReadinessPolicy(interval=3600.0)
"""One cluster check at start: the bot's own client then sends nothing but what commands need."""


@contextmanager
def cached_bot(emu: SlackEmulator, kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[BotRunner]:
    """The running bot (watchers, alerting, the cache), watching only the test's namespace."""
    with running_bot(
        emu,
        mode="http",
        db=str(tmp_path / "bot.db"),
        kube=KubeClient(kube.configuration),
        background=True,
        readiness=QUIET,
        watch_namespaces=[namespace],
        leader_election=False,
    ) as runner:
        assert runner.core is not None and runner.core.cache is not None
        assert runner.core.cache.wait_ready(120), "the watch cache did not get ready"
        yield runner


def run_verb(services: CommandServices, text: str) -> tuple[dict[str, Any], int]:
    """A verb as the bot runs it, with a client of its own: (the JSON contract, API calls it made)."""
    counted = dataclasses.replace(services, kube=KubeClient(services.kube.configuration))
    ctx = VerbContext(services=counted, subject=Subject(slack_user=ALICE))
    command = parse(text, registry=VERBS)
    data = VERBS.funcs[command.verb](ctx, command).data
    return data, counted.kube.calls


def without_source(data: dict[str, Any]) -> dict[str, Any]:
    """The answer without where it came from: its source, and the cluster the command path adds (a
    verb run by itself, as `run_verb` does, has no cluster of its own to name)."""
    return {k: v for k, v in data.items() if k not in ("source", "cluster")}


def cache_and_snapshot(services: CommandServices, text: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The answer from the cache and from the snapshot path, read back to back. Event counts move while
    a pod crash-loops, so a pair read a moment apart may differ by one event: read up to 3 times."""
    api_services = dataclasses.replace(services, cache=None)
    for _ in range(3):
        cached, calls = run_verb(services, text)
        listed, _ = run_verb(api_services, text)
        if without_source(cached) == without_source(listed):
            break
    return cached, listed, calls


@pytest.mark.kwok
@pytest.mark.parametrize("scenario", sorted(EXPECTED_CATEGORY))
def test_why_from_the_cache_equals_the_snapshot_answer(
    kube: KubeClient, namespace: str, slack: SlackEmulator, tmp_path: Path, scenario: str
) -> None:
    app = deploy_checkout(kube, namespace)
    BREAKERS[scenario](kube, app)
    with cached_bot(slack, kube, namespace, tmp_path) as runner:
        cached, listed, calls = cache_and_snapshot(runner.commands, f"why checkout -n {namespace}")
    assert cached["source"]["from"] == "cache", cached["source"]
    assert listed["source"]["from"] == "api"
    assert without_source(cached) == without_source(listed)
    assert cached["causes"][0]["category"] == EXPECTED_CATEGORY[scenario], cached
    # One get of the target to check the cache against the API server; a failing container adds its
    # logs (current, and previous after a restart).
    logged = EXPECTED_CATEGORY[scenario] in {str(c) for c in LOGGED}
    assert calls <= 3 if logged else calls == 1, calls


@pytest.mark.kwok
def test_why_through_slack_from_the_cache_and_ask_json_from_the_api(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    breakage = BREAKERS["bad_image"](kube, app)
    asked = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path)
    assert asked["source"] == {"from": "api", "note": None, "cache_behind": False}
    assert asked["cluster"] == "k8sbot-dev"  # every JSON answer names its cluster
    with cached_bot(slack, kube, namespace, tmp_path) as runner:
        assert runner.core is not None
        bot_kube = runner.core.kube
        before = bot_kube.calls
        shown = slack_why(slack, f"why checkout -n {namespace}")
        calls = bot_kube.calls - before
        cached, _ = run_verb(runner.commands, f"why checkout -n {namespace}")
    assert calls == 1, calls  # the check of the Deployment against the API server, nothing else
    assert without_source(cached) == without_source(asked)
    top = asked["causes"][0]
    assert f"[{top['category']}," in shown and top["change"]["what"] in shown  # the field in words
    assert breakage.after in shown
    assert "watch cache was behind" not in shown


@pytest.mark.kwok
def test_a_change_made_a_moment_before_is_in_the_answer_or_it_says_the_cache_is_behind(
    kube: KubeClient, namespace: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    deploy_checkout(kube, namespace)
    text = f"why checkout -n {namespace}"
    with cached_bot(slack, kube, namespace, tmp_path) as runner:
        assert run_verb(runner.commands, text)[0]["healthy"] is True
        # Live watchers: scale down and up, asking at once each time.
        for replicas, healthy in ((0, False), (2, None), (0, False)):
            patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"spec": {"replicas": replicas}})
            data, _ = run_verb(runner.commands, text)
            source = data["source"]
            assert source["from"] == "cache" or source["cache_behind"], source
            if healthy is False:
                assert data["causes"][0]["category"] == "scaled_to_zero", data
            else:
                assert all(c["category"] != "scaled_to_zero" for c in data["causes"]), data
        # Watchers that stopped delivering (a connection gone quiet): the cache is still there but
        # behind; the answer must say so and still reflect the change, read from the API.
        assert runner.background is not None
        runner.background.tracker.watchers.stop()
        patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"spec": {"replicas": 2}})
        data, calls = run_verb(runner.commands, text)
        assert data["source"]["from"] == "api" and data["source"]["cache_behind"] is True, data["source"]
        assert "watch cache was behind" in data["source"]["note"]
        assert all(c["category"] != "scaled_to_zero" for c in data["causes"]), data
        assert calls > 1  # the check, then the target's objects from the API
        patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"spec": {"replicas": 0}})
        shown = slack_why(slack, text)
    assert "watch cache was behind" in shown and "scaled_to_zero" in shown


@pytest.mark.kwok
def test_status_and_describe_from_the_cache_equal_the_api(
    kube: KubeClient, namespace: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    deploy_checkout(kube, namespace, name="cart")
    BREAKERS["bad_image"](kube, app)
    with cached_bot(slack, kube, namespace, tmp_path) as runner:
        api = dataclasses.replace(runner.commands, cache=None)
        status, status_calls = run_verb(runner.commands, f"status -n {namespace}")
        listed, _ = run_verb(api, f"status -n {namespace}")
        described, describe_calls = run_verb(runner.commands, f"describe deploy/checkout -n {namespace}")
        described_api, api_calls = run_verb(api, f"describe deploy/checkout -n {namespace}")
    assert status["source"] == {"from": "cache"} and listed["source"] == {"from": "api"}
    assert without_source(status) == without_source(listed)
    assert [p["name"] for p in status["problems"]] == ["checkout"]
    assert status_calls == 0
    assert described == described_api
    assert any("ScalingReplicaSet" in line for line in described["lines"]), described
    assert (describe_calls, api_calls) == (1, 2)


@pytest.mark.kwok
def test_an_unreachable_api_server_leaves_the_cache_answer_with_a_note(
    kube: KubeClient, namespace: str, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    BREAKERS["bad_image"](kube, app)
    with cached_bot(slack, kube, namespace, tmp_path) as runner:
        listed, _ = run_verb(dataclasses.replace(runner.commands, cache=None), f"why checkout -n {namespace}")
        away = k8s_client.Configuration()
        away.host = "https://127.0.0.1:9"  # nothing listens: the check cannot reach the API server
        cut_off = dataclasses.replace(runner.commands, kube=KubeClient(away))
        ctx = VerbContext(services=cut_off, subject=Subject(slack_user=ALICE))
        answer = VERBS.funcs["why"](ctx, parse(f"why checkout -n {namespace}", registry=VERBS))
    assert answer.data["source"]["from"] == "cache"
    assert "could not check the watch cache" in answer.data["source"]["note"]
    assert any("could not check the watch cache" in line for line in answer.lines)
    assert answer.data["causes"][0]["category"] == listed["causes"][0]["category"] == "image_pull"
