"""Going back in time on the real local control plane: `describe <kind/name> --at` rebuilds the object
from the recorded changes (exactly the state the recorder had then), with what changed since; and
`changes --id N` shows one change in full. Through the command path and `k8sbot ask --json`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import create, wait_for

from bot.changes.recording import ChangeRecorder, NamespaceFilter
from bot.commands.dispatch import execute
from bot.errors import NotFound, UsageError
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers
from bot.model import Change, ChangeKind, ObjectRef
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore
from k8sbot import cli
from tests.wiring_helpers import command_services

KINDS = (WatchedKind("Deployment"), WatchedKind("ReplicaSet"), WatchedKind("ConfigMap"))
ENV_SECRET = "hunter2-never-shown-in-describe"


class Recorded:
    def __init__(self, kube: KubeClient, path: Path, namespace: str) -> None:
        self.path, self.namespace = path, namespace
        self.database = Database(path)
        self.store = ChangeStore(self.database)
        recorder = ChangeRecorder(self.store, EventStore(self.database), namespaces=NamespaceFilter((namespace,)))
        self.watchers = Watchers(kube, recorder, kinds=KINDS, watch_seconds=60)
        self.watchers.start()
        assert self.watchers.wait_synced(30)
        self.services = command_services(kube, self.database, changes=self.store)

    def wait(self, ref: ObjectRef, what: str, test: Any) -> Change:
        def found() -> Change | None:
            since = datetime.now(UTC) - timedelta(hours=1)
            return next((c for c in self.store.query(since=since, ref=ref) if test(c)), None)

        return wait_for(found, 30, what)  # type: ignore[no-any-return]

    def ask(self, text: str) -> Any:
        return execute(self.services, text=text, slack_user=None, channel=None)


@pytest.fixture
def bot(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Recorded]:
    running = Recorded(kube, tmp_path / "k8sbot.db", namespace)
    yield running
    running.watchers.stop()


def web(namespace: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.local/web:1.0"}]},
            },
        },
    }


def edit(kube: KubeClient, namespace: str, body: dict[str, Any], manager: str) -> None:
    """A strategic-merge patch as `manager` (the field manager the change history names)."""
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/web",
        body=body,
        content_type="application/strategic-merge-patch+json",
        query={"fieldManager": manager},
    )


def _after_a_tick() -> datetime:
    """A moment strictly between two recorded changes (their times come from the recorder's clock)."""
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    return moment


def test_describe_at_rebuilds_the_recorded_state_and_lists_what_changed_since(
    bot: Recorded, kube: KubeClient, namespace: str
) -> None:
    ref = ObjectRef("Deployment", namespace, "web")
    before_creation = _after_a_tick()
    create(kube, web(namespace))
    bot.wait(ref, "the creation", lambda c: c.kind is ChangeKind.CREATED)
    wait_for(lambda: bot.store.state(ref) is not None, 30, "the first recorded state")
    then = _after_a_tick()
    state_then = bot.store.state(ref)
    assert state_then is not None
    container = {
        "name": "web",
        "image": "registry.local/web:1.1",
        "env": [{"name": "DB_PASSWORD", "value": ENV_SECRET}],
    }
    edit(kube, namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}, "alice")
    image = bot.wait(ref, "the image edit", lambda c: c.kind is ChangeKind.IMAGE)
    edit(kube, namespace, {"spec": {"replicas": 3}}, "bob")
    bot.wait(ref, "the scale", lambda c: c.kind is ChangeKind.SCALE)
    label = {"metadata": {"labels": {"app.kubernetes.io/part-of": "shop"}}}
    edit(kube, namespace, label, "carol")
    bot.wait(ref, "the label", lambda c: c.kind is ChangeKind.METADATA)

    answer = bot.ask(f"describe deploy/web -n {namespace} --at {then.isoformat()}")
    data = answer.data
    assert data["existed"] is True
    # Exactly the state the recorder held at that moment, rebuilt from the newest one (values of env
    # vars are never shown by describe, so compare without them: there were none then).
    assert data["state"] == state_then.body
    assert data["state"]["spec"]["replicas"] == 1
    [container_then] = data["state"]["spec"]["template"]["spec"]["containers"]
    assert container_then["image"] == "registry.local/web:1.0" and "env" not in container_then
    assert "app.kubernetes.io/part-of" not in data["state"]["metadata"]["labels"]
    assert [c["actor"] for c in data["changed_since"]] == ["carol", "bob", "alice"]
    assert "metadata.labels.app.kubernetes.io/part-of" in data["changed_paths"]
    text = "\n".join(answer.lines)
    assert "* spec.replicas: 1" in text
    assert "*   " not in text
    assert f"change {image.id} (revision 2) by alice" in text
    assert ENV_SECRET not in text and ENV_SECRET not in json.dumps(data)
    assert answer.title.startswith(f"Deployment web in {namespace} as it was at ")

    # before its creation it did not exist; a duration works like a time
    gone = bot.ask(f"describe deploy/web -n {namespace} --at {before_creation.isoformat()}")
    assert gone.data["existed"] is False and gone.data["state"] is None
    assert "It did not exist yet: created" in gone.lines[0]
    time.sleep(1.5)  # so that "1s ago" is after the last edit
    now = bot.ask(f"describe deploy/web -n {namespace} --at 1s")
    assert now.data["state"]["spec"]["replicas"] == 3

    with pytest.raises(UsageError, match="RFC 3339"):
        bot.ask(f"describe deploy/web -n {namespace} --at yesterday")
    with pytest.raises(UsageError, match="future"):
        bot.ask(f"describe deploy/web -n {namespace} --at {(datetime.now(UTC) + timedelta(hours=1)).isoformat()}")
    with pytest.raises(NotFound):
        bot.ask(f"describe deploy/nothing -n {namespace} --at 1h")


def test_changes_id_shows_one_change_in_full(
    bot: Recorded,
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = ObjectRef("Deployment", namespace, "web")
    create(kube, web(namespace))
    bot.wait(ref, "the creation", lambda c: c.kind is ChangeKind.CREATED)
    many = {f"k{i}": f"v{i}" for i in range(12)}  # more fields than the change list shows
    edit(kube, namespace, {"metadata": {"annotations": many}, "spec": {"replicas": 2}}, "dave")
    change = bot.wait(ref, "the edit", lambda c: len(c.fields) >= 12)
    assert change.id is not None

    answer = bot.ask(f"changes --id {change.id} -n {namespace}")
    assert answer.data["change"]["id"] == change.id
    assert len(answer.data["change"]["fields"]) == len(change.fields) == 13
    assert answer.title.startswith(f"Change {change.id}: Deployment/{namespace}/web")
    assert sum(line.startswith("  metadata.annotations.k") for line in answer.lines) == 12
    assert "  spec.replicas: 1 → 2" in answer.lines
    assert f"describe deployment/web -n {namespace} --at " in answer.lines[-1]

    with pytest.raises(NotFound):  # not in that namespace: nothing said about it
        bot.ask(f"changes --id {change.id} -n default")
    with pytest.raises(NotFound):
        bot.ask(f"changes --id 999999 -n {namespace}")
    with pytest.raises(UsageError):
        bot.ask(f"changes web --id {change.id} -n {namespace}")

    # the same through `k8sbot ask --json`, on the same database
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.setenv("K8SBOT_DB", str(bot.path))
    for name in ("K8SBOT_CONFIG", "SLACK_BOT_TOKEN", "K8SBOT_DEFAULT_NAMESPACE", "K8SBOT_PERMISSIONS"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["ask", "--json", f"changes --id {change.id} -n {namespace}"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["change"]["actor"] == "dave" and shown["change"]["kind"] == "spec"
