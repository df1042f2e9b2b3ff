"""The Helm chart (deploy/helm/k8sbot), proven with helm itself and against the real API server.

helm is built from the Go module proxy by scripts/build-helm into the version-keyed binary cache
(like kube-apiserver); these tests skip, saying so, only where Go is missing and no helm is cached.
kubectl is the one scripts/build-cluster-bins built for the local cluster.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from image_helpers import BotContainer, built_image
from image_helpers import status as image_status
from kube_helpers import REPO, Cluster, bind_role, wait_for, wait_rolled_out
from scenarios import break_image, deploy_checkout
from test_shutdown import BotProcess, alert_texts, bot_env

from bot.errors import PermissionDenied
from bot.kube.client import KubeClient
from bot.settings import Settings, load_settings
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, SHOP, wait_answer

CHART = REPO / "deploy" / "helm" / "k8sbot"
TOKENS = ["--set", "slack.botToken=xoxb-test,slack.appToken=xapp-test"]
TEAM = "permissions: {{roles: {{}}, teams: {{shop: {{namespaces: [shop], role: r, kubernetes: {kubernetes}}}}}}}"
SCHEMA_ERROR = "values don't meet the specifications of the schema"

Run = Callable[..., subprocess.CompletedProcess[str]]


def _build(script: str) -> str:
    result = subprocess.run([str(REPO / "scripts" / script)], capture_output=True, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        if shutil.which("go") is None:
            pytest.skip(f"scripts/{script} builds from the Go module proxy and Go is not installed")
        pytest.fail(f"scripts/{script} failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def helm_bin() -> str:
    return _build("build-helm")


@pytest.fixture(scope="session")
def helm(helm_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Runs helm with its config, cache and data homes in a temporary directory (nothing in ~)."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, **{f"HELM_{d}_HOME": str(home / d.lower()) for d in ("CONFIG", "CACHE", "DATA")}}

    def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [helm_bin, *map(str, args)], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=300
        )

    return run


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    return str(Path(_build("build-cluster-bins")) / "kubectl")


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(helm: Run, *args: str | Path) -> list[dict[str, Any]]:
    result = helm("template", "k8sbot", CHART, "--namespace", "k8sbot", *args)
    assert result.returncode == 0, result.stderr
    return docs(result.stdout)


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return found[0]


def example_values(tmp_path: Path) -> Path:
    """A values file whose `permissions` is the repository's example permissions.yaml."""
    path = tmp_path / "example-permissions-values.yaml"
    path.write_text(yaml.safe_dump({"permissions": yaml.safe_load((REPO / "permissions.yaml").read_text())}))
    return path


# -- helm alone ------------------------------------------------------------------------------------


def test_chart_passes_helm_lint_strict(helm: Run) -> None:
    result = helm("lint", "--strict", CHART, *TOKENS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("httpPort: '3000'", "httpPort"),
        ("mode: websocket", "mode"),
        ("persistence: {size: 1}", "persistence.size"),
        ("slack: {signingSecret: 12345}", "slack.signingSecret"),
        (
            "permissions: {roles: {}, teams: {shop: {namespaces: [shop], role: r, kubernetes: {user: u, groups: g}}}}",
            "permissions.teams.shop.kubernetes.groups",
        ),
        (
            "permissions: {roles: {}, teams: {shop: {namespaces: [shop], role: r, member: {users: [U0A]}}}}",
            "permissions.teams.shop",
        ),
        ("replicas: 2", "replicas"),
        # Identities the bot refuses to impersonate must never reach the impersonation ClusterRole.
        (TEAM.format(kubernetes="{user: u, groups: [system:masters]}"), "permissions.teams.shop.kubernetes.groups.0"),
        (TEAM.format(kubernetes="{user: 'system:admin'}"), "permissions.teams.shop.kubernetes.user"),
        (TEAM.format(kubernetes="{user: 'slack:{name}'}"), "permissions.teams.shop.kubernetes.user"),
    ],
)
def test_a_wrong_value_fails_at_lint_and_template_because_of_the_schema(
    helm: Run, tmp_path: Path, value: str, field: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(value + "\n")
    for command in ("lint", "template"):
        result = helm(command, CHART, *TOKENS, "-f", bad)
        out = result.stdout + result.stderr
        assert result.returncode != 0, f"helm {command} accepted {value!r}:\n{out[-2000:]}"
        assert SCHEMA_ERROR in out, out[-2000:]
        assert f"- at '/{field.replace('.', '/')}'" in out or field in out, out[-2000:]


def test_missing_slack_tokens_fail_at_template_with_a_clear_message(helm: Run) -> None:
    result = helm("template", "k8sbot", CHART)
    assert result.returncode != 0
    assert "slack.botToken is required" in result.stderr
    result = helm("template", "k8sbot", CHART, "--set", "mode=http,slack.botToken=xoxb-1")
    assert "slack.signingSecret is required with mode: http" in result.stderr
    # A Secret the user made: the chart makes none and the pod reads that one.
    objects = render(helm, "--set", "slack.existingSecret=mine")
    assert not [o for o in objects if o["kind"] == "Secret"]
    env = one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {
        "SLACK_BOT_TOKEN": {"name": "mine", "key": "SLACK_BOT_TOKEN"},
        "SLACK_APP_TOKEN": {"name": "mine", "key": "SLACK_APP_TOKEN"},
    }


def test_network_policy_allows_only_the_api_server_dns_and_https(helm: Run) -> None:
    refused = helm("template", "k8sbot", CHART, *TOKENS, "--set", "networkPolicy.enabled=true")
    assert refused.returncode != 0
    assert "networkPolicy.apiServer.cidrs is required" in refused.stderr
    objects = render(helm, *TOKENS, "--set", "networkPolicy.enabled=true,networkPolicy.apiServer.cidrs={10.96.0.1/32}")
    spec = one(objects, "NetworkPolicy", "k8sbot")["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"port": 3000, "protocol": "TCP"}]}]
    api, dns, https = spec["egress"]
    assert api["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    assert {p["port"] for p in api["ports"]} == {443, 6443}
    assert {p["port"] for p in dns["ports"]} == {53}
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "10.0.0.0/8" in https["to"][0]["ipBlock"]["except"]
    assert all(rule.get("to") for rule in spec["egress"]), "an egress rule without `to` allows every destination"


def test_deployment_is_hardened_and_probed_on_the_bots_http_port(helm: Run) -> None:
    objects = render(helm, *TOKENS)
    deployment = one(objects, "Deployment", "k8sbot")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "k8sbot"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "k8sbot:" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["K8SBOT_HTTP_HOST"] == "0.0.0.0"
    # The image's entrypoint is `k8sbot`; the Lease holder is named after the pod.
    assert container["args"] == ["run"]
    pod_name = next(e for e in container["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": int(env["K8SBOT_HTTP_PORT"]), "protocol": "TCP"}]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert (
        data["persistentVolumeClaim"]["claimName"]
        == one(objects, "PersistentVolumeClaim", "k8sbot")["metadata"]["name"]
    )
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert os.path.dirname(env["K8SBOT_DB"]) in mounts and mounts[os.path.dirname(env["K8SBOT_DB"])] == "data"
    config = one(objects, "ConfigMap", "k8sbot")["data"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert yaml.safe_load(config["permissions.yaml"]) == values["permissions"]


def test_the_integration_token_goes_through_the_secret(helm: Run) -> None:
    token = "integration-token-0123456789"
    objects = render(helm, "--set", f"slack.botToken=xoxb-1,slack.appToken=xapp-1,integrations.token={token}")
    assert one(objects, "Secret", "k8sbot")["stringData"]["K8SBOT_INTEGRATION_TOKEN"] == token
    env = one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["env"]
    ref = next(e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "K8SBOT_INTEGRATION_TOKEN")
    assert ref == {"name": "k8sbot", "key": "K8SBOT_INTEGRATION_TOKEN"}
    assert token not in json.dumps(one(objects, "Deployment", "k8sbot"))  # only the Secret holds it
    # without a token nothing is served: no variable at all
    plain = render(helm, "--set", "slack.botToken=xoxb-1,slack.appToken=xapp-1")
    env = one(plain, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "K8SBOT_INTEGRATION_TOKEN" not in {e["name"] for e in env}
    # a Secret of your own carries the key
    mine = render(helm, "--set", "slack.existingSecret=mine,integrations.enabled=true")
    env = one(mine, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["env"]
    ref = next(e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "K8SBOT_INTEGRATION_TOKEN")
    assert ref == {"name": "mine", "key": "K8SBOT_INTEGRATION_TOKEN"}
    short = helm(
        "template", "k8sbot", CHART, "--set", "slack.botToken=xoxb-1,slack.appToken=xapp-1,integrations.token=short"
    )
    assert short.returncode != 0 and "integrations" in short.stderr
    missing = helm(
        "template", "k8sbot", CHART, "--set", "slack.botToken=xoxb-1,slack.appToken=xapp-1,integrations.enabled=true"
    )
    assert missing.returncode != 0 and "integrations.enabled needs integrations.token" in missing.stderr


def test_http_mode_runs_the_http_server(helm: Run) -> None:
    objects = render(helm, *TOKENS, "--set", "mode=http,slack.signingSecret=s3cret")
    assert one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "run",
        "--http",
    ]


def _grace(objects: list[dict[str, Any]]) -> int:
    return int(one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


def test_termination_grace_period_is_the_bots_shutdown_bound_plus_ten_seconds(helm: Run) -> None:
    bound = Settings.model_fields["shutdown_grace_seconds"].default
    assert _grace(render(helm, *TOKENS)) == bound + 10
    assert _grace(render(helm, *TOKENS, "--set-json", "config.shutdown_grace_seconds=45.5")) == 56
    assert _grace(render(helm, *TOKENS, "--set-json", "config.shutdown_grace_seconds=0")) == 10
    assert _grace(render(helm, *TOKENS, "--set", "terminationGracePeriodSeconds=90")) == 90
    # A grace period the bot cannot drain within fails at helm, not at the kubelet's SIGKILL.
    for values in (["--set", "terminationGracePeriodSeconds=20"], ["--set", "terminationGracePeriodSeconds=15"]):
        refused = helm("template", "k8sbot", CHART, *TOKENS, *values)
        assert refused.returncode != 0
        assert "must be longer than config.shutdown_grace_seconds" in refused.stderr, refused.stderr


def _lease_rbac(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    return one(objects, "Role", "k8sbot-leader"), one(objects, "RoleBinding", "k8sbot-leader")


def test_the_chart_grants_exactly_the_lease_the_bot_elects_on(helm: Run) -> None:
    lease = Settings.model_fields["leader_lease_name"].default
    role, binding = _lease_rbac(render(helm, *TOKENS))
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "k8sbot"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": [lease],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "k8sbot-leader"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "k8sbot", "namespace": "k8sbot"}]
    # The Lease's settings move the grant with them; without leader election there is none.
    role, binding = _lease_rbac(
        render(helm, *TOKENS, "--set-json", 'config={"leader_namespace": "ops", "leader_lease_name": "bot-eu"}')
    )
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ops"
    assert role["rules"][0]["resourceNames"] == ["bot-eu"]
    assert binding["subjects"][0]["namespace"] == "k8sbot"
    objects = render(helm, *TOKENS, "--set-json", "config.leader_election=false")
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding")]


# Settings the chart sets itself (Secret, paths, bind address, clusterName), so `config` may not.
CHART_OWNED_SETTINGS = {
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "integration_token",
    "db",
    "permissions",
    "cluster_name",
    "kubeconfig",
    "kube_context",
    "http_host",
    "http_port",
}


def test_config_value_accepts_every_other_setting_and_the_bot_reads_the_rendered_files(
    helm: Run, tmp_path: Path
) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["config"]["properties"]) == set(Settings.model_fields) - CHART_OWNED_SETTINGS
    config = {
        "default_channel": "C0OPS",
        "watch_namespaces": ["shop-*"],
        "retention_days": 7,
        "channel_namespaces": {"C0SHOP": "shop"},
        "alert_settle_seconds": 45,
    }
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "config": config,
                "clusterName": "prod-eu",
                "permissions": yaml.safe_load((REPO / "permissions.yaml").read_text()),
            }
        )
    )
    objects = render(helm, *TOKENS, "-f", values)
    data = one(objects, "ConfigMap", "k8sbot")["data"]
    env = {
        e["name"]: e.get("value")
        for e in one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    (tmp_path / "config.yaml").write_text(data["config.yaml"])
    (tmp_path / "permissions.yaml").write_text(data["permissions.yaml"])
    settings = load_settings(
        {
            "K8SBOT_CONFIG": str(tmp_path / "config.yaml"),
            "K8SBOT_HTTP_HOST": env["K8SBOT_HTTP_HOST"],
            "K8SBOT_HTTP_PORT": env["K8SBOT_HTTP_PORT"],
        }
    )
    assert (settings.cluster_name, settings.default_channel, settings.retention_days) == ("prod-eu", "C0OPS", 7)
    assert settings.watch_namespaces == ["shop-*"] and settings.channel_namespaces == {"C0SHOP": "shop"}
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 3000)
    validated = subprocess.run(
        [sys.executable, "-m", "k8sbot", "permissions", "validate", "--file", str(tmp_path / "permissions.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    # A setting the bot does not know fails at helm, not at the pod's start.
    values.write_text(yaml.safe_dump({"config": {"retention_day": 7}}))
    refused = helm("template", "k8sbot", CHART, *TOKENS, "-f", values)
    assert refused.returncode != 0 and SCHEMA_ERROR in refused.stderr, refused.stderr


# -- one source for the RBAC ---------------------------------------------------------------------------


def test_deploy_rbac_yaml_is_generated_from_the_chart(helm_bin: str, helm: Run, tmp_path: Path) -> None:
    check = subprocess.run(
        [str(REPO / "scripts" / "gen-rbac"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HELM": helm_bin},
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    plain = docs((REPO / "deploy" / "rbac.yaml").read_text())
    charted = render(helm, *TOKENS, "-f", example_values(tmp_path))
    rules_file = yaml.safe_load((CHART / "files" / "read-rules.yaml").read_text())
    for name in ("k8sbot-read", "k8sbot-impersonate"):
        assert one(plain, "ClusterRole", name)["rules"] == one(charted, "ClusterRole", name)["rules"]
    assert one(charted, "ClusterRole", "k8sbot-read")["rules"] == rules_file
    # The bot's own identity writes nothing: only get/list/watch, and create SubjectAccessReviews.
    verbs = {v for rule in rules_file for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch", "create"}
    assert [r["resources"] for r in rules_file if "create" in r["verbs"]] == [["subjectaccessreviews"]]


def test_impersonation_rule_names_exactly_the_identities_of_the_permissions_value(helm: Run, tmp_path: Path) -> None:
    permissions = {
        "roles": {"operator": ["why", "rollback"]},
        "teams": {
            "shop": {
                "namespaces": ["shop"],
                "role": "operator",
                "members": {"users": ["U0ALICE"], "usergroups": ["S0DEV"]},
                "kubernetes": {"user": "oidc:{user_id}", "groups": ["team-shop", "shared"]},
            },
            "quiet": {"namespaces": ["quiet"], "role": "operator", "members": {"users": ["U0QUIET"]}},
        },
        "bindings": [
            {
                "name": "robots",
                "users": ["U0BOB"],
                "role": "operator",
                "namespaces": ["*"],
                "kubernetes": {"user": "robot", "groups": ["shared", "ops"]},
            },
        ],
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"permissions": permissions, "impersonation": {"extraSlackUsers": ["U0CAROL"]}}))
    objects = render(helm, *TOKENS, "-f", values)
    rules = one(objects, "ClusterRole", "k8sbot-impersonate")["rules"]
    expected = [
        {
            "apiGroups": [""],
            "resources": ["users"],
            "verbs": ["impersonate"],
            "resourceNames": ["oidc:U0ALICE", "oidc:U0BOB", "oidc:U0CAROL", "oidc:U0QUIET", "robot"],
        },
        {
            "apiGroups": [""],
            "resources": ["groups"],
            "verbs": ["impersonate"],
            "resourceNames": ["ops", "shared", "team-shop"],
        },
    ]
    assert rules == expected
    # The same role `k8sbot permissions rbac` prints for that file, with U0CAROL as S0DEV's member.
    policy_file = tmp_path / "permissions.yaml"
    policy_file.write_text(yaml.safe_dump(permissions))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8sbot",
            "permissions",
            "rbac",
            "--file",
            str(policy_file),
            "--members",
            "S0DEV=U0CAROL",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert cli.returncode == 0, cli.stderr
    assert yaml.safe_load(cli.stdout)["rules"] == expected
    # No mapping at all: the role exists and grants nothing.
    values.write_text(yaml.safe_dump({"permissions": {"roles": {}, "teams": {}}}))
    assert one(render(helm, *TOKENS, "-f", values), "ClusterRole", "k8sbot-impersonate")["rules"] == []


# -- against the real API server -------------------------------------------------------------------


FULL = [
    *TOKENS,
    "--set",
    "service.enabled=true,serviceMonitor.enabled=true,networkPolicy.enabled=true",
    "--set",
    "networkPolicy.apiServer.cidrs={127.0.0.1/32}",
]


def kubectl(
    kubectl_bin: str, cluster: Cluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_bin, "--kubeconfig", cluster.kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def has_servicemonitor_crd(kubectl_bin: str, cluster: Cluster) -> bool:
    return kubectl(kubectl_bin, cluster, "get", "crd", "servicemonitors.monitoring.coreos.com").returncode == 0


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_every_rendered_object_is_accepted_by_the_api_server_dry_run(
    helm: Run, kubectl_bin: str, cluster: Cluster, namespace: str, mode: str
) -> None:
    extra = ["--set", "mode=http,slack.signingSecret=s3cret"] if mode == "http" else []
    result = helm("template", "k8sbot", CHART, "--namespace", namespace, *FULL, *extra)
    assert result.returncode == 0, result.stderr
    objects = docs(result.stdout)
    if not has_servicemonitor_crd(kubectl_bin, cluster):
        # The Prometheus Operator's CRD is not installed here: that one object cannot be checked.
        objects = [o for o in objects if o["kind"] != "ServiceMonitor"]
    kinds = sorted({o["kind"] for o in objects})
    assert {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Service",
        "NetworkPolicy",
    } <= set(kinds)
    applied = kubectl(
        kubectl_bin,
        cluster,
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-o",
        "name",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
    )
    assert applied.returncode == 0, applied.stderr
    accepted = applied.stdout.split()
    assert len(accepted) == len(objects), applied.stdout


def test_a_bad_object_is_refused_by_the_same_dry_run(
    helm: Run, kubectl_bin: str, cluster: Cluster, namespace: str
) -> None:
    """The dry run above can fail: the API server refuses what the chart must never render."""
    objects = render(helm, *TOKENS)
    deployment = one(objects, "Deployment", "k8sbot")
    deployment["metadata"]["namespace"] = namespace
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"] = {"drop": "ALL"}
    applied = kubectl(kubectl_bin, cluster, "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(deployment))
    assert applied.returncode != 0
    assert "capabilities" in applied.stderr


@pytest.fixture
def release(namespace: str) -> str:
    return f"k8sbot-{uuid.uuid4().hex[:6]}"


def test_helm_install_creates_every_object_and_uninstall_removes_them(
    helm: Run, kubectl_bin: str, cluster: Cluster, namespace: str, release: str, tmp_path: Path
) -> None:
    common = ["--namespace", namespace, "--kubeconfig", cluster.kubeconfig]
    installed = helm(
        "install",
        release,
        CHART,
        *common,
        *TOKENS,
        "-f",
        example_values(tmp_path),
        "--set",
        "service.enabled=true,networkPolicy.enabled=true",
        "--set",
        "networkPolicy.apiServer.cidrs={127.0.0.1/32}",
    )
    try:
        assert installed.returncode == 0, installed.stderr
        manifest = helm("get", "manifest", release, *common)
        objects = docs(manifest.stdout)
        names = [f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objects]
        assert len(names) == 13, names
        for obj, name in zip(objects, names, strict=True):
            got = kubectl(kubectl_bin, cluster, "get", "-n", namespace, name, "-o", "json")
            assert got.returncode == 0, f"{name}: {got.stderr}"
            live = json.loads(got.stdout)
            assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == release, name
            if obj["kind"] in ("ClusterRole",):
                assert live["rules"] == obj["rules"], name
            if obj["kind"] == "Deployment":
                container = live["spec"]["template"]["spec"]["containers"][0]
                assert container["securityContext"]["readOnlyRootFilesystem"] is True
                assert live["spec"]["strategy"]["type"] == "Recreate"
            if obj["kind"] == "ClusterRoleBinding":
                assert live["subjects"] == [{"kind": "ServiceAccount", "name": release, "namespace": namespace}]
        # The ServiceAccount exists and its bindings point at it: the API server answers as it would.
        can = kubectl(
            kubectl_bin,
            cluster,
            "auth",
            "can-i",
            "list",
            "pods",
            "--all-namespaces",
            f"--as=system:serviceaccount:{namespace}:{release}",
        )
        assert can.stdout.strip() == "yes", can.stdout + can.stderr
        cannot = kubectl(
            kubectl_bin,
            cluster,
            "auth",
            "can-i",
            "patch",
            "deployments",
            "-n",
            namespace,
            f"--as=system:serviceaccount:{namespace}:{release}",
        )
        assert cannot.stdout.strip() == "no", cannot.stdout + cannot.stderr
        impersonate = kubectl(
            kubectl_bin,
            cluster,
            "auth",
            "can-i",
            "impersonate",
            "groups/team-shop",
            f"--as=system:serviceaccount:{namespace}:{release}",
        )
        assert impersonate.stdout.strip() == "yes", impersonate.stdout + impersonate.stderr
        other = kubectl(
            kubectl_bin,
            cluster,
            "auth",
            "can-i",
            "impersonate",
            "groups/system:masters",
            f"--as=system:serviceaccount:{namespace}:{release}",
        )
        assert other.stdout.strip() == "no", other.stdout + other.stderr
    finally:
        uninstalled = helm("uninstall", release, *common, "--wait", "--timeout", "90s")
    assert uninstalled.returncode == 0, uninstalled.stderr

    def none_left() -> bool:
        return not [n for n in names if kubectl(kubectl_bin, cluster, "get", "-n", namespace, n).returncode == 0]

    wait_for(none_left, 90, f"every object of release {release} deleted")


def leaf_keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the chart's values, stopping at maps that are free-form (empty or `permissions`)."""
    keys: set[str] = set()
    for key, value in values.items():
        name = prefix + key
        if isinstance(value, dict) and value and key not in ("permissions", "resources"):
            keys |= leaf_keys(value, name + ".")
        else:
            keys.add(name)
    return keys


def test_chart_readme_lists_every_value_and_the_schema_knows_them() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    assert leaf_keys(values) == listed
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) == set(schema["properties"])


# -- the chart's ServiceAccount is exactly enough (item 4's second half, a first part) ---------------


def sa_kubeconfig(kubectl_bin: str, cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from `kubectl create token`."""
    token = kubectl(kubectl_bin, cluster, "create", "token", account, "-n", namespace, "--duration", "10m")
    assert token.returncode == 0, token.stderr
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    if "certificate-authority" in server:  # a relative CA path is relative to the admin kubeconfig
        server["certificate-authority"] = str(Path(cluster.kubeconfig).parent / server["certificate-authority"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": account, "user": {"token": token.stdout.strip()}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path


def test_the_bot_with_the_charts_service_account_acts_as_the_person_and_is_refused_as_itself(
    helm: Run, kubectl_bin: str, cluster: Cluster, kube: KubeClient, namespace: str, release: str, tmp_path: Path
) -> None:
    group = f"team-{release}"
    permissions = {
        "roles": {"operator": ["why", "status", "scale"]},
        "teams": {
            "app": {
                "namespaces": [namespace],
                "members": {"users": ["U0ALICE"]},
                "role": "operator",
                "kubernetes": {"user": "slack:{user_id}", "groups": [group]},
            }
        },
        # Allowed by the file but mapped to no Kubernetes identity: the bot would act as itself.
        "bindings": [{"name": "unmapped", "users": ["U0NOMAP"], "role": "operator", "namespaces": [namespace]}],
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"permissions": permissions}))
    common = ["--namespace", namespace, "--kubeconfig", cluster.kubeconfig]
    installed = helm("install", release, CHART, *common, *TOKENS, "-f", values)
    assert installed.returncode == 0, installed.stderr
    try:
        bind_role(kube, namespace, "edit", group=group)
        deploy_checkout(kube, namespace, replicas=1, wait=False)
        # The bot reads its permissions.yaml from the chart's ConfigMap, as in the pod.
        config_map = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{release}")
        policy = tmp_path / "permissions.yaml"
        policy.write_text(config_map["data"]["permissions.yaml"])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("K8SBOT_", "SLACK_", "KUBECONFIG"))}
        env |= {
            "KUBECONFIG": str(sa_kubeconfig(kubectl_bin, cluster, namespace, release, tmp_path / "sa.kubeconfig")),
            "K8SBOT_PERMISSIONS": str(policy),
            "K8SBOT_DB": str(tmp_path / "bot.db"),
        }

        def ask(user: str, text: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "k8sbot", "ask", "--as", user, "--yes", text],
                capture_output=True,
                text=True,
                env=env,
                cwd=REPO,
                check=False,
                timeout=120,
            )

        def replicas() -> int:
            return int(kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout")["spec"]["replicas"])

        status = ask("U0ALICE", f"status -n {namespace}")
        assert status.returncode == 0, status.stdout + status.stderr

        def scale_to_two() -> subprocess.CompletedProcess[str] | None:
            answer = ask("U0ALICE", f"scale checkout -n {namespace} --replicas 2")
            return answer if answer.returncode == 0 else None

        scaled = wait_for(scale_to_two, 30, "the impersonated scale to succeed (RoleBinding propagation)")
        assert replicas() == 2, scaled.stdout
        refused = ask("U0NOMAP", f"scale checkout -n {namespace} --replicas 3")
        assert refused.returncode != 0, refused.stdout
        assert replicas() == 2
        # Refused by the API server, naming the chart's ServiceAccount: the bot has no write of its own.
        assert "forbidden" in refused.stderr, refused.stdout + refused.stderr
        assert f'User "system:serviceaccount:{namespace}:{release}"' in refused.stderr, refused.stderr
    finally:
        helm("uninstall", release, *common)


# -- item 4: the bot itself, with only the chart's ServiceAccount, against the real API server -------


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["text"]["text"]: e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    }


def _checkpointed(database: Path, kind: str) -> bool:
    if not database.exists():
        return False
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        try:
            return bool(db.execute("SELECT 1 FROM watch_checkpoints WHERE kind = ?", (kind,)).fetchone())
        except sqlite3.OperationalError:  # the table is not made yet
            return False


@pytest.mark.kwok
def test_smoke_the_bot_run_with_the_charts_service_account_token(
    helm: Run,
    kubectl_bin: str,
    cluster: Cluster,
    kube: KubeClient,
    namespace: str,
    release: str,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    """`helm install`, then `k8sbot run --http` (from the built image where podman is, else from the
    venv) with a token of the chart's ServiceAccount: it holds the Lease the chart grants, watches and
    records a change, answers `why`, posts an alert, rolls back (confirmed) as the impersonated person
    bound to `edit`, and its own token is refused a write."""
    group = f"team-{release}"
    permissions = {
        "roles": {"operator": ["why", "status", "changes", "rollback"]},
        "teams": {
            "shop": {
                "channel": SHOP,
                "namespaces": [namespace],
                "members": {"users": [ALICE]},
                "role": "operator",
                "kubernetes": {"user": "slack:{user_id}", "groups": [group]},
            }
        },
        "defaults": {"role": None},
    }
    chart_config = {
        "watch_namespaces": [namespace],
        "alert_settle_seconds": 1.0,
        "alert_resolve_seconds": 2.0,
        # Outside a pod the bot cannot read its namespace from the ServiceAccount mount: say it.
        "leader_namespace": namespace,
        "shutdown_grace_seconds": 8,
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"permissions": permissions, "config": chart_config}))
    common = ["--namespace", namespace, "--kubeconfig", cluster.kubeconfig]
    installed = helm("install", release, CHART, *common, *TOKENS, "-f", values)
    assert installed.returncode == 0, installed.stderr
    bot: BotContainer | BotProcess | None = None
    try:
        bind_role(kube, namespace, "edit", group=group)
        app = deploy_checkout(kube, namespace)
        # The bot's files are the chart's ConfigMap, as in the pod.
        data = kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{release}")["data"]
        policy = tmp_path / "permissions.yaml"
        policy.write_text(data["permissions.yaml"])
        policy.chmod(0o644)
        config = {**yaml.safe_load(data["config.yaml"]), "permissions": str(policy)}
        sa = sa_kubeconfig(kubectl_bin, cluster, namespace, release, tmp_path / "sa.kubeconfig")
        env = bot_env(slack, tmp_path, db=tmp_path / "bot.db", kubeconfig=str(sa), config=config)
        bot = BotContainer(built_image(), env, tmp_path) if shutil.which("podman") else BotProcess(env, REPO)
        url = bot.wait_url()
        slack.driver.configure(mode="http", url=url + "/slack/events")  # signed requests to the bot
        slack.wait_for(lambda: image_status(url + "/readyz") == 200, timeout=60, what="the bot ready")
        slack.wait_for(
            lambda: "leader election: created Lease" in "\n".join(bot.lines) or "leading as" in "\n".join(bot.lines),
            timeout=30,
            what=f"the bot holding the Lease the chart grants:\n{bot.lines[-20:]}",
        )

        # The watchers' first listing is recorded (their checkpoint stored): what follows is a change.
        database = tmp_path / "data" / "k8sbot.db" if isinstance(bot, BotContainer) else tmp_path / "bot.db"
        slack.wait_for(lambda: _checkpointed(database, "Deployment"), timeout=60, what="the watchers' first listing")
        breakage = break_image(kube, app)

        def ask(text: str) -> dict[str, Any]:
            before = len(slack.response_posts())
            slack.driver.slash_command(text, user_id=ALICE, channel_id=SHOP)
            return wait_answer(slack, before, what=f"the answer to {text!r}", timeout=60)

        # (The chart's own Deployment may alert too: its pod cannot run under kwok.)
        slack.wait_for(
            lambda: any(breakage.after in t for t in alert_texts(slack, SHOP)),
            timeout=90,
            what="the alert for the broken image, naming it",
        )
        changes = json.dumps(ask(f"changes checkout -n {namespace} --since 1h"))
        assert breakage.before in changes and breakage.after in changes, changes
        why = json.dumps(ask(f"why checkout -n {namespace}"))
        assert "ImagePullBackOff" in why or breakage.after in why, why

        ask(f"rollback checkout -n {namespace}")
        preview = slack.ephemerals(SHOP, ALICE)[-1]
        before = len(slack.response_posts())
        slack.driver.click(SHOP, preview.ts, _buttons(preview.message)["Confirm"], ALICE)
        wait_answer(slack, before, what="the rollback result", timeout=60)
        wait_rolled_out(kube, namespace, "checkout")
        deployment = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == app.image
        managers = {entry["manager"] for entry in deployment["metadata"]["managedFields"]}
        assert f"k8sbot/{ALICE}" in managers  # written as Alice (impersonated), not as the bot

        # The bot's own token writes nothing.
        token = yaml.safe_load(sa.read_text())["users"][0]["user"]["token"]
        configuration = copy.copy(kube.configuration)
        configuration.cert_file = configuration.key_file = None
        configuration.api_key = {"authorization": "Bearer " + token}
        with pytest.raises(PermissionDenied) as refused:
            KubeClient(configuration).request(
                "PATCH",
                f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout/scale",
                body={"spec": {"replicas": 3}},
                content_type="application/merge-patch+json",
            )
        assert f"system:serviceaccount:{namespace}:{release}" in str(refused.value)

        bot_process = bot.process
        if isinstance(bot, BotContainer):
            bot.terminate()
        else:
            bot_process.send_signal(signal.SIGTERM)
        assert bot_process.wait(30) == 0, "\n".join(bot.lines[-40:])
    finally:
        if bot is not None:
            bot.stop()
        helm("uninstall", release, *common)


def test_other_clusters_kubeconfigs_are_mounted_read_only_from_a_secret_of_yours(helm: Run) -> None:
    objects = render(
        helm,
        "--set",
        "slack.botToken=xoxb-1,slack.appToken=xapp-1,clusterKubeconfigs.secretName=k8sbot-clusters",
        "--set-json",
        'config={"clusters": [{"name": "prod-eu"}, {"name": "prod-us", '
        '"kubeconfig": "/var/run/k8sbot/clusters/prod-us"}]}',
    )
    pod = one(objects, "Deployment", "k8sbot")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "cluster-kubeconfigs")
    assert volume["secret"] == {"secretName": "k8sbot-clusters", "defaultMode": 0o440}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "cluster-kubeconfigs")
    assert mount == {"name": "cluster-kubeconfigs", "mountPath": "/var/run/k8sbot/clusters", "readOnly": True}
    config = yaml.safe_load(one(objects, "ConfigMap", "k8sbot")["data"]["config.yaml"])
    assert [c["name"] for c in config["clusters"]] == ["prod-eu", "prod-us"]
    without = render(helm, "--set", "slack.botToken=xoxb-1,slack.appToken=xapp-1")
    pod = one(without, "Deployment", "k8sbot")["spec"]["template"]["spec"]
    assert "cluster-kubeconfigs" not in {v["name"] for v in pod["volumes"]}
    bad = helm(
        "template",
        "k8sbot",
        CHART,
        "--set",
        "slack.botToken=xoxb-1,slack.appToken=xapp-1,clusterKubeconfigs.secretName=Bad_Name",
    )
    assert bad.returncode != 0 and "clusterKubeconfigs" in bad.stderr
