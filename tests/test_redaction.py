"""Secrets in log lines and messages are hidden; ordinary text is left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.changes.diffing import build_change, snapshot
from bot.errors import ConfigError
from bot.kube.revisions import template_diff
from bot.kube.snapshot import Snapshot
from bot.redaction import RedactionRules, Redactor, redact, redact_lines
from bot.settings import load_settings
from bot.verbs.status import namespace_status
from k8sbot.wiring import build_redactor
from tests.wiring_helpers import ANALYZERS


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "eyJhbGci"),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA"),
        ("token eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrOHMifQ.c2lnbmF0dXJlLXBhcnQ", "c2lnbmF0dXJl"),
        ("connecting to postgres://app:s3cr3t-pw@db.internal:5432/shop", "s3cr3t-pw"),
        ("using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("DB_PASSWORD=hunter2 starting", "hunter2"),
        ('{"password": "hunter2", "user": "app"}', "hunter2"),
        ("api_key: 0123456789abcdef", "0123456789abcdef"),
        ("client_secret='abc123xyz'", "abc123xyz"),
        ("slack token xoxb-123456789012-abcdefghijkl", "xoxb-123456789012"),
        ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdef"),
    ],
)
def test_secrets_are_redacted(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert "[REDACTED" in redacted


def test_private_key_block_is_hidden_across_lines() -> None:
    lines = [
        "loading key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA",
        "abcdef==",
        "-----END RSA PRIVATE KEY-----",
        "done",
    ]
    out = redact_lines(lines)
    assert "MIIEowIBAAKCAQEA" not in "\n".join(out)
    assert out[0] == "loading key" and out[-1] == "done"


def test_truncated_private_key_block_is_hidden_to_the_end() -> None:
    assert "MIIE" not in redact("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg")


@pytest.mark.parametrize(
    "line",
    [
        "GET /healthz 200 3ms",
        "error: password authentication failed for user app",
        "token expired, refreshing",
        "listening on http://0.0.0.0:8080",
    ],
)
def test_ordinary_lines_survive(line: str) -> None:
    assert redact(line) == line


def test_key_name_is_kept_so_the_line_stays_readable() -> None:
    assert redact("password=hunter2") == "password=[REDACTED]"
    assert redact("postgres://app:pw@db/x") == "postgres://app:[REDACTED]@db/x"


# -- issue 11: gaps that leaked (each failed before the scanner rewrite) -----------------------------


@pytest.mark.parametrize(
    ("line", "secrets"),
    [
        ("DB_PASS=plainpass123 connecting", ["plainpass123"]),
        ("passphrase: phrase-secret-99", ["phrase-secret-99"]),
        ('password="a b,c" user=app', ["a b", ",c"]),
        ("password='x y;z'", ["x y", ";z"]),
        ('{"apiKey": "k1 k2", "ok": true}', ["k1 k2"]),
        ("x-auth-token: tok-77-abc", ["tok-77-abc"]),
        ("SESSION_COOKIE=choc-chip-42", ["choc-chip-42"]),
        ('msg="{\\"password\\": \\"esc aped\\"}"', ["esc aped"]),
    ],
)
def test_issue_gaps_are_closed(line: str, secrets: list[str]) -> None:
    redacted = redact(line)
    for secret in secrets:
        assert secret not in redacted, redacted
    assert "[REDACTED" in redacted


# -- the key rule: parts of names, and what is NOT a secret -------------------------------------------

REDACTOR = Redactor()


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "DB_PASSWORD",
        "dbpassword",
        "apiKey",
        "APIKey",
        "api_key",
        "x-auth-token",
        "AUTH",
        "client_secret",
        "SecretName",
        "passphrase",
        "example.com/token",
        "SESSION_COOKIE",
        "private_key_id",
        "credentials",
        "keys",
        "--db-password",
        "AccountKey",
        "Authorization",
    ],
)
def test_secret_key_names(name: str) -> None:
    assert REDACTOR.secret_key(name)


@pytest.mark.parametrize(
    "name",
    ["keyboard", "monkey", "passive", "author", "bypass", "LOG_LEVEL", "PAYMENT_API_URL", "image", "replicas", "Env"],
)
def test_names_that_only_contain_a_fragment_are_not_secret(name: str) -> None:
    assert not REDACTOR.secret_key(name)


@pytest.mark.parametrize(
    "line",
    [
        "keyboard: us, monkey: george, passive: true",
        "author: alice",
        "token expired, refreshing",
        "Scaled down replica set checkout-7d9f from 2 to 0",
        "image registry.example.com/shop/checkout:1.4.2 pulled",
        "GET /api/v1/session 200 basic auth disabled",
        "level=info msg=served path=/task-runner-deployment-abcdef1234567890",
    ],
)
def test_more_ordinary_lines_survive(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE end", "AKIAIOSFODNN7EXAMPLE"),
        ("gcp AIzaSyD-1234567890abcdefghijklmnopqrstu end", "AIzaSyD-1234567890"),
        ("oauth ya29.a0AfH6SMBx3-abcdefghijklmnopqr end", "ya29.a0AfH6SMBx3"),
        ("stripe sk_live_51H8abcdefghijklmnopqrstu end", "sk_live_51H8"),
        ("gitlab glpat-abcdefghijklmnopqrst12 end", "glpat-abcdefghij"),
        ("azure xyz8Q~abcdefghijklmnopqrstuvwxyz0123456 end", "abcdefghijklmnop"),
        ("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc-def_ghi", "eyJzdWIiOiIxIn0"),
        ("git clone https://ci:gh-pw-123@github.com/org/repo", "gh-pw-123"),
        ("Authorization: Bearer 0123456789abcdef0123", "0123456789abcdef0123"),
    ],
)
def test_credential_shaped_values_whatever_the_key(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_a_private_key_inside_json_with_escaped_newlines() -> None:
    key = "-----BEGIN PRIVATE KEY-----\\nMIIEvg\\n-----END PRIVATE KEY-----\\n"
    line = '{"type": "service_account", "private_key": "' + key + '"}'
    out = redact(line)
    assert "MIIEvg" not in out and '"type": "service_account"' in out


def test_configured_fragments_and_token_prefixes() -> None:
    configured = Redactor(RedactionRules.with_extras(keys=["PIN"], token_prefixes=["acme_live_"]))
    assert "4321" not in configured.text("atm.pin=4321")
    assert "acme_live_abcdef1234" not in configured.text("vendor acme_live_abcdef1234 ok")
    assert REDACTOR.text("atm.pin=4321") == "atm.pin=4321"  # not a built-in fragment


# -- values: recorded state ----------------------------------------------------------------------------


def fingerprint(value: str) -> str:
    return "fp:" + str(len(value)) + value[:1].encode().hex()  # deterministic, readable in asserts


def test_a_value_under_a_secret_key_is_hidden_whole_with_a_fingerprint() -> None:
    keyed = REDACTOR.keyed(fingerprint)
    assert keyed.value("DB_PASSWORD", "hunter2-old") == "[REDACTED fp:1168]"
    assert keyed.value("DB_PASSWORD", "") == ""
    assert keyed.value("LOG_LEVEL", "info") == "info"


def test_a_multi_line_value_hides_each_secret_line_to_its_end() -> None:
    keyed = REDACTOR.keyed(fingerprint)
    out = keyed.value("app.properties", "user=app\npassword=two words, one secret\nmode=fast\n")
    assert out.startswith("user=app\npassword=[REDACTED fp:") and out.endswith("]\nmode=fast\n")
    assert "two words" not in out and "one secret" not in out


def test_values_that_change_get_different_markers_without_a_fingerprint_too() -> None:
    assert REDACTOR.value("token", "a-1") != REDACTOR.value("token", "a-2")
    assert REDACTOR.value("token", "a-1") == REDACTOR.value("token", "a-1")


def test_tree_hides_env_values_headers_annotations_and_flag_arguments() -> None:
    template = {
        "metadata": {"annotations": {"example.com/token": "ann-1", "note": "token=ann-2 rotated"}},
        "spec": {
            "initContainers": [{"name": "init", "env": [{"name": "DB_PASS", "value": "plainpass123"}]}],
            "containers": [
                {
                    "name": "app",
                    "image": "shop/app:1",
                    "args": ["--db-password", "arg-secret", "--listen=:8080", "--api-key=flag-secret"],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DATABASE_URL", "value": "postgres://app:url-secret@db/shop"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    ],
                    "readinessProbe": {"httpGet": {"httpHeaders": [{"name": "X-Auth-Token", "value": "hdr-secret"}]}},
                }
            ],
        },
    }
    out = REDACTOR.tree(template)
    text = repr(out)
    for secret in ("ann-1", "ann-2", "plainpass123", "arg-secret", "flag-secret", "url-secret", "hdr-secret"):
        assert secret not in text
    container = out["spec"]["containers"][0]
    assert container["image"] == "shop/app:1" and container["env"][0] == {"name": "LOG_LEVEL", "value": "info"}
    assert container["args"][0] == "--db-password" and container["args"][2] == "--listen=:8080"
    assert container["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "password"}}  # a reference
    assert out == REDACTOR.tree(out)  # redacting twice changes nothing


def test_snapshot_stores_no_secret_and_a_rotation_is_still_a_change() -> None:
    def deployment(password: str) -> dict[str, object]:
        env = [{"name": "DB_PASSWORD", "value": password}]
        return {
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "annotations": {"x.io/token": password}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:1", "env": env}]}}},
        }

    old = snapshot("Deployment", deployment("hunter2-old"), fingerprint=fingerprint)
    new = snapshot("Deployment", deployment("NewPlainEnvPass-42"), fingerprint=fingerprint)
    stored = repr(old.body) + repr(new.body)
    assert "hunter2-old" not in stored and "NewPlainEnvPass-42" not in stored
    change = build_change(old, new, obj=None, at=datetime(2026, 1, 1, tzinfo=UTC))
    assert change is not None
    assert {f.path for f in change.fields} == {
        "spec.template.spec.containers[0].env[0].value",
        "metadata.annotations.x.io/token",
    }
    assert "hunter2" not in change.summary and "NewPlain" not in change.summary


def test_configmap_snapshot_hides_secret_keys_and_lines() -> None:
    cm = {
        "metadata": {"name": "cfg", "namespace": "shop"},
        "data": {"password": "cm-pass", "app.properties": "a=1\npassword=cm-line\n", "LOG_LEVEL": "info"},
        "binaryData": {"keystore": "AAAA"},
    }
    body = snapshot("ConfigMap", cm, fingerprint=fingerprint).body
    assert "cm-pass" not in repr(body) and "cm-line" not in repr(body) and "AAAA" not in repr(body)
    assert body["data"]["LOG_LEVEL"] == "info" and body["data"]["app.properties"].startswith("a=1\npassword=[REDACTED")


def test_revision_diff_blames_a_secret_env_change_without_its_values() -> None:
    def template(password: str) -> dict[str, object]:
        return {"spec": {"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": password}]}]}}

    [change] = template_diff(template("hunter2-old"), template("NewPlainEnvPass-42"))
    assert change.path == "spec.template.spec.containers[0].env[0].value"
    assert str(change.before).startswith("[REDACTED hmac:") and change.before != change.after
    assert "hunter2" not in repr(change) and "NewPlain" not in repr(change)


def test_warning_messages_are_redacted_in_status() -> None:
    event = {
        "kind": "Event",
        "type": "Warning",
        "reason": "FailedMount",
        "message": 'mount failed: password="evt pass, 55"',
        "involvedObject": {"kind": "Deployment", "name": "web"},
        "metadata": {"name": "web.1"},
    }
    data = namespace_status(Snapshot("shop", {"Event": (event,)}), analyzers=ANALYZERS)
    assert data["recent_warnings"] and "evt pass" not in repr(data) and ", 55" not in repr(data)


def test_settings_extend_the_rules_and_refuse_patterns() -> None:
    settings = load_settings({}, redact_keys=["PIN"], redact_token_prefixes=["acme_live_"])
    redactor = build_redactor(settings, fingerprint=fingerprint)
    assert redactor.value("ATM_PIN", "1234").startswith("[REDACTED fp:")
    assert "acme_live_0123456789" not in redactor.text("got acme_live_0123456789")
    with pytest.raises(ConfigError, match="redact_keys"):
        load_settings({}, redact_keys=["pass(word)+"])  # fragments are words, never regular expressions
    with pytest.raises(ConfigError, match="redact_token_prefixes"):
        load_settings({}, redact_token_prefixes=["a.*b"])
