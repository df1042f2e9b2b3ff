"""Hostile input: secret values planted in cluster objects and logs never reach an answer or the database.

Issue 11, "Secret values shown and stored" and "Redaction gaps and cost", through the public paths only:
objects and log lines created in the real cluster, the whole bot as `k8sbot run` wires it (watchers,
alert engine, Slack emulator), slash commands from Slack, and `k8sbot ask --json` on the same database
file. The database file and its -wal/-shm files are read as raw bytes while the bot runs and after it
stopped. Each planted value is unique, so finding it anywhere is a leak.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role, create, patch, set_pod_logs, wait_for, wait_rolled_out
from scenarios import App, break_env, checkout_manifests

from bot.kube.client import KubeClient
from k8sbot import cli
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, SHOP, running_bot, wait_answer

pytestmark = pytest.mark.hostile
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)

POLICY = """
roles:
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-hostile-edit]}}
defaults: {{role: null}}
"""


# -- helpers -------------------------------------------------------------------------------------------


def database_bytes(db: Path) -> dict[str, bytes]:
    """The raw bytes of the database file and its -wal / -shm / -journal companions."""
    return {p.name: p.read_bytes() for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name)}


def assert_absent(planted: list[str], where: str, text: str | bytes) -> None:
    for value in planted:
        needle: str | bytes = value.encode() if isinstance(text, bytes) else value
        assert needle not in text, f"{value!r} leaked into {where}"


def assert_not_stored(planted: list[str], db: Path) -> None:
    files = database_bytes(db)
    assert files.get(db.name), f"no database at {db}"
    for name, raw in files.items():
        assert_absent(planted, name, raw)


def ask(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str) -> str:
    """`k8sbot ask TEXT --json` as a person runs it (KUBECONFIG and K8SBOT_DB from the environment)."""
    capsys.readouterr()
    code = cli.main(["ask", text, "--json"])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    json.loads(out)  # the JSON contract, whole
    return out


def slash(slack: SlackEmulator, text: str, *, timeout: float = 60) -> str:
    before = len(slack.response_posts())
    slack.driver.slash_command(text, user_id=ALICE, channel_id=SHOP)
    return json.dumps(wait_answer(slack, before, what=f"the answer to {text!r}", timeout=timeout))


@contextmanager
def whole_bot(
    slack: SlackEmulator,
    kube: KubeClient,
    cluster: Any,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **settings: object,
) -> Iterator[tuple[BotRunner, Path]]:
    """`k8sbot run` (socket mode, background work on) over a database in tmp_path; `k8sbot ask` in this
    process reads the same database and cluster."""
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    bind_role(kube, namespace, "edit", group="team-hostile-edit")
    db = tmp_path / "bot.db"
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.setenv("K8SBOT_DB", str(db))
    for name in ("K8SBOT_CONFIG", "K8SBOT_PERMISSIONS", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with running_bot(
        slack,
        mode="socket",
        db=str(db),
        background=True,
        kubeconfig=cluster.kubeconfig,
        permissions=str(permissions),
        watch_namespaces=[namespace],
        alert_settle_seconds=1.0,
        alert_resolve_seconds=2.0,
        **settings,
    ) as runner:
        assert runner.background is not None and runner.background.tracker.wait_synced(60)
        yield runner, db


def channel_texts(slack: SlackEmulator, channel: str) -> str:
    return "\n".join(json.dumps([m.get("text"), m.get("blocks")]) for m in slack.messages(channel))


# -- env values ----------------------------------------------------------------------------------------

OLD_PASSWORD, NEW_PASSWORD = "hunter2-old", "NewPlainEnvPass-42"
URL_PASSWORD = "url-pass-55"
ARG_PASSWORD = "arg-pass-31"


@pytest.mark.kwok
def test_env_value_change_is_in_no_answer_alert_or_database_file(
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment, service = checkout_manifests(namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] += [
        {"name": "DB_PASSWORD", "value": OLD_PASSWORD},
        # credential-shaped values under innocent names, and a secret passed as an argument
        {"name": "DATABASE_URL", "value": f"postgres://app:{URL_PASSWORD}@db:5432/shop"},
    ]
    container["args"] = ["--db-password", ARG_PASSWORD, "--listen=:8080"]
    create(kube, deployment)
    create(kube, service)
    wait_rolled_out(kube, namespace, "checkout")
    app = App(namespace, "checkout", {"app": "checkout"}, "app", container["image"], 2)
    planted = [OLD_PASSWORD, NEW_PASSWORD, URL_PASSWORD, ARG_PASSWORD]

    with whole_bot(slack, kube, cluster, namespace, tmp_path, monkeypatch) as (_, db):
        breakage = break_env(kube, app, var="DB_PASSWORD", value=NEW_PASSWORD)
        # The alert: the team channel, with its "Likely cause".
        slack.wait_for(lambda: "Likely cause" in channel_texts(slack, SHOP), timeout=90, what="an alert naming a cause")
        alert = channel_texts(slack, SHOP)
        # the env change is still the culprit, named by its variable
        assert breakage.path is not None and f"env var {breakage.extra['var']} of container app" in alert
        assert_absent(planted, "the alert", alert)
        assert "REDACTED" in alert

        changes = ask(monkeypatch, capsys, f"changes checkout -n {namespace} --since 1h")
        assert breakage.path in changes and "REDACTED" in changes  # still recorded as a change
        assert_absent(planted, "`changes --json`", changes)
        why = ask(monkeypatch, capsys, f"why checkout -n {namespace}")
        assert breakage.path in why
        assert_absent(planted, "`why --json`", why)
        describe = ask(monkeypatch, capsys, f"describe deploy/checkout -n {namespace}")
        assert_absent(planted, "`describe --json`", describe)
        for text in (f"why checkout -n {namespace}", f"changes checkout -n {namespace} --since 1h"):
            assert_absent(planted, f"the Slack answer to {text!r}", slash(slack, text))
        assert_absent(planted, "the alert thread", channel_texts(slack, SHOP))

        # The database while the bot runs: the main file, the WAL and the shared-memory index.
        assert (tmp_path / "bot.db-wal").exists()
        assert_not_stored(planted, db)
    assert_not_stored(planted, db)


# -- ConfigMap data and annotations ---------------------------------------------------------------------

CM_OLD, CM_NEW = "cm-old-pass-11", "cm-NEW-pass-77"
ANN_OLD, ANN_NEW = "ann-old-token-1", "ann-token-123"
PIN_OLD, PIN_NEW = "pin-4321-old", "pin-9911-new"
ACME_OLD, ACME_NEW = "acme_live_0ldV4lue0ld", "acme_live_N3wV4lueN3w"


def _config(namespace: str, password: str, token: str, pin: str, acme: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "app-config",
            "namespace": namespace,
            "annotations": {
                "example.com/token": token,  # a secret-looking key
                "example.com/note": f"rotated by ops; token={token}",  # a secret-looking line under an innocent key
                "example.com/vendor": acme,  # a configured token prefix, whatever the key
            },
        },
        "data": {
            "password": password,
            "app.properties": f"user=app\npassword={password}\nmode=fast\n",
            "atm.pin": pin,  # a configured extra key fragment
            "LOG_LEVEL": "info",
        },
    }


def test_configmap_data_and_annotations_are_in_no_answer_or_database_file(
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create(kube, _config(namespace, CM_OLD, ANN_OLD, PIN_OLD, ACME_OLD))
    web = copy.deepcopy(checkout_manifests(namespace, name="web", replicas=0)[0])
    web["metadata"]["annotations"] = {"example.com/token": ANN_OLD}
    create(kube, web)
    planted = [CM_OLD, CM_NEW, ANN_OLD, ANN_NEW, PIN_OLD, PIN_NEW, ACME_OLD, ACME_NEW]
    extra = {"redact_keys": ["pin"], "redact_token_prefixes": ["acme_live_"]}
    with whole_bot(slack, kube, cluster, namespace, tmp_path, monkeypatch, **extra) as (_, db):
        new = _config(namespace, CM_NEW, ANN_NEW, PIN_NEW, ACME_NEW)
        patch(kube, "v1", "ConfigMap", namespace, "app-config", {"metadata": new["metadata"], "data": new["data"]})
        patch(
            kube,
            "apps/v1",
            "Deployment",
            namespace,
            "web",
            {"metadata": {"annotations": {"example.com/token": ANN_NEW}}},
        )

        def recorded() -> str | None:
            out = ask(monkeypatch, capsys, f"changes -n {namespace} --since 1h")
            wanted = ("data.password", "data.app.properties", "data.atm.pin", "example.com/token")
            return out if all(w in out for w in wanted) and out.count("example.com/token") >= 2 else None

        changes = wait_for(recorded, 30, "the ConfigMap and annotation edits in the history")
        assert "REDACTED" in changes
        assert_absent(planted, "`changes --json`", changes)
        assert_absent(planted, "the Slack `changes` answer", slash(slack, f"changes -n {namespace} --since 1h"))
        for text in (f"describe configmap/app-config -n {namespace}", f"describe deploy/web -n {namespace}"):
            assert_absent(planted, text, ask(monkeypatch, capsys, text))
        assert_not_stored(planted, db)
    assert_not_stored(planted, db)


# -- Warning events --------------------------------------------------------------------------------------

EVENT_SECRETS = ["evt-pass-55", "evt-token-66", "evt-url-pw-77"]


def _warning(namespace: str, name: str, involved: dict[str, Any], message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"namespace": namespace, **involved},
        "type": "Warning",
        "reason": "FailedMount",
        "message": message,
        "source": {"component": "kubelet"},
        "count": 3,
    }


def test_warning_event_messages_are_redacted_in_status_describe_why_and_the_database(
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    web = checkout_manifests(namespace, name="web", replicas=0)[0]
    create(kube, web)
    with whole_bot(slack, kube, cluster, namespace, tmp_path, monkeypatch) as (runner, db):
        message = (
            'MountVolume.SetUp failed: password="evt-pass-55" rejected; retry with Authorization: token=evt-token-66 '
            "via https://mounter:evt-url-pw-77@vault.internal/v1"
        )
        create(kube, _warning(namespace, "web.evt1", {"kind": "Deployment", "name": "web"}, message))
        events = runner.core.events if runner.core is not None else None
        assert events is not None
        wait_for(lambda: any(e.involved.name == "web" for e in events.since(LONG_AGO)), 30, "the recorded Warning")
        status = ask(monkeypatch, capsys, f"status -n {namespace}")
        assert "FailedMount" in status  # the warning is shown, its secrets are not
        assert_absent(EVENT_SECRETS, "`status --json`", status)
        assert_absent(EVENT_SECRETS, "the Slack `status` answer", slash(slack, f"status -n {namespace}"))
        for text in (f"describe deploy/web -n {namespace}", f"why web -n {namespace}"):
            assert_absent(EVENT_SECRETS, text, ask(monkeypatch, capsys, text))
        assert_not_stored(EVENT_SECRETS, db)
    assert_not_stored(EVENT_SECRETS, db)


# -- logs --------------------------------------------------------------------------------------------------

LOG_SECRETS = ["plainpass123", "phrase-secret-99", "a b,c", "deep-secret-at-the-end"]


@pytest.mark.kwok
def test_log_lines_with_secrets_and_a_long_line_are_redacted(
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment, _ = checkout_manifests(namespace, replicas=1)
    create(kube, deployment)
    wait_rolled_out(kube, namespace, "checkout")
    long_line = "x=" + "ab" * 12_000 + " password=deep-secret-at-the-end"
    lines = [
        long_line,  # 24 KB: shown only in the attached file
        "starting",
        "DB_PASS=plainpass123 connecting to db",
        "passphrase: phrase-secret-99",
        'config loaded password="a b,c" user=app',
    ]
    set_pod_logs(kube, namespace, "app=checkout", "app", current=lines)
    with whole_bot(slack, kube, cluster, namespace, tmp_path, monkeypatch):
        out = ask(monkeypatch, capsys, f"logs checkout -n {namespace}")
        assert "starting" in out and "connecting to db" in out and "config loaded" in out
        assert_absent(LOG_SECRETS, "`logs --json`", out)
        grep = ask(monkeypatch, capsys, f"logs checkout -n {namespace} --grep pass")
        assert_absent(LOG_SECRETS, "`logs --grep`", grep)
        answer = slash(slack, f"logs checkout -n {namespace}")
        assert_absent(LOG_SECRETS, "the Slack `logs` answer", answer)
        files = wait_for(lambda: [f for f in slack.files() if f.completed and f.content] or None, 30, "the log file")
        content = b"".join(f.content or b"" for f in files)
        assert b"abababab" in content and b"password=[REDACTED" in content  # the long line, cut nowhere
        assert_absent(LOG_SECRETS, "the attached log file", content)
