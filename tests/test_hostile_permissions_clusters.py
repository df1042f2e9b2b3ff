"""Hostile per-cluster permissions: cluster globs, per-cluster keys and shapes in permissions.yaml,
and `--cluster` on the terminal. permissions.yaml is input an attacker may control (a merged pull
request, a writable ConfigMap): each bad value is refused with one line naming the file, the line
and the field, through `k8sbot permissions validate --file F` (what the start-up and every reload
run), and a `--cluster` that is not a cluster name never reaches a decision or an output line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k8sbot.cli import main
from tests.cli_run import clean_cli_env, one_line, run_cli

pytestmark = pytest.mark.hostile

HEAD = """\
roles:
  operator: [why, rollback]
teams:
  shop:
    members: {users: [U0ALICE]}
    role: operator
"""

# name: (the lines after HEAD, the line the error must name, the field, what it must say)
BAD: dict[str, tuple[str, int, str, str]] = {
    "key-uppercase": (
        "    namespaces:\n      Prod_EU: [shop]\n",
        8,
        "teams.shop.namespaces.Prod_EU",
        "not a cluster name",
    ),
    "key-with-slash": (
        '    namespaces:\n      "../prod": [shop]\n',
        8,
        "teams.shop.namespaces.../prod",
        "not a cluster",
    ),
    "key-with-mention": (
        '    namespaces: [shop]\n    kubernetes:\n      "<!channel>": {user: "u:{user_id}"}\n',
        9,
        "teams.shop.kubernetes.<!channel>",
        "not a cluster name",
    ),
    "key-too-long": (
        f"    namespaces:\n      {'a' * 64}: [shop]\n",
        8,
        "teams.shop.namespaces.aaaa",
        "not a cluster name",
    ),
    "key-bidi": (
        '    namespaces:\n      "prod\\u202eue": [shop]\n',
        8,
        "teams.shop.namespaces.prod",
        "not a cluster name",
    ),
    "key-empty": ('    namespaces:\n      "": [shop]\n', 8, "teams.shop.namespaces", "not a cluster name"),
    "empty-namespaces-mapping": ("    namespaces: {}\n", 7, "teams.shop.namespaces", "an empty mapping"),
    "empty-identity-mapping": (
        "    namespaces: [shop]\n    kubernetes: {}\n",
        8,
        "teams.shop.kubernetes",
        "an empty mapping",
    ),
    "empty-cluster-list": (
        "    namespaces: [shop]\n    clusters: []\n",
        8,
        "teams.shop.clusters",
        "an empty list grants nothing anywhere",
    ),
    "glob-with-range": (
        '    namespaces: [shop]\n    clusters: ["prod-[a-z]"]\n',
        8,
        "teams.shop.clusters[0]",
        "not a cluster name glob",
    ),
    "glob-with-newline": (
        '    namespaces: [shop]\n    clusters: ["prod\\n*"]\n',
        8,
        "teams.shop.clusters[0]",
        "not a cluster name glob",
    ),
    "glob-not-a-string": ("    namespaces: [shop]\n    clusters: [{a: b}]\n", 8, "teams.shop.clusters[0]", "string"),
    "clusters-a-string": ('    namespaces: [shop]\n    clusters: "*"\n', 8, "teams.shop.clusters", "tuple"),
    "namespaces-a-string": ("    namespaces: shop\n", 7, "teams.shop.namespaces", "expected a list of namespace globs"),
    "identity-a-list": (
        "    namespaces: [shop]\n    kubernetes: [u]\n",
        8,
        "teams.shop.kubernetes",
        "expected {user: ..., groups: [...]}",
    ),
    "identity-mixed-with-clusters": (
        '    namespaces: [shop]\n    kubernetes:\n      user: "u:{user_id}"\n      prod: {user: "p:{user_id}"}\n',
        10,
        "teams.shop.kubernetes.prod",
        "unknown field",
    ),
    "identity-system-in-one-cluster": (
        '    namespaces: [shop]\n    kubernetes:\n      default: {user: "u:{user_id}"}\n'
        '      prod: {user: "system:admin"}\n',
        10,
        "teams.shop.kubernetes.prod.user",
        "reserved",
    ),
    "namespace-glob-in-one-cluster": (
        '    namespaces:\n      default: [shop]\n      prod: ["Shop;rm"]\n',
        9,
        "teams.shop.namespaces.prod[0]",
        "not a namespace glob",
    ),
}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return clean_cli_env(tmp_path, monkeypatch)


@pytest.mark.parametrize("name", sorted(BAD))
def test_validate_refuses_a_bad_per_cluster_value_with_file_line_and_field(
    name: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, line, field, problem = BAD[name]
    path = cli_env / "permissions.yaml"
    path.write_text(HEAD + lines)
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    error = one_line(err)
    assert error.startswith(f"{path}:{line}: {field}"), error
    assert problem in error, error


def test_a_binding_is_refused_the_same_way(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cli_env / "permissions.yaml"
    path.write_text(
        "roles: {operator: [why]}\nbindings:\n  - users: [U0BOB]\n    role: operator\n    namespaces: [shop]\n"
        '    clusters: ["prod", "<@U0ADMIN>"]\n'
    )
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    assert re.fullmatch(
        rf"{re.escape(str(path))}:6: bindings\[0\]\.clusters\[1\]: .*not a cluster name glob.*", one_line(err)
    )


@pytest.mark.parametrize("value", ["prod\nALLOWED: U0ALICE", "../prod", "Prod", "<!channel>", "a" * 64, "prod-"])
def test_check_refuses_a_cluster_argument_that_is_not_a_cluster_name(
    value: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cli_env / "permissions.yaml"
    path.write_text(HEAD + "    namespaces: [shop]\n")
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(path))
    argv = ["permissions", "check", "--as", "U0ALICE", "--verb", "why", "-n", "shop", "--cluster", value]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no decision printed, so no forged "ALLOWED" line either
    assert "is not a cluster name" in one_line(captured.err)
