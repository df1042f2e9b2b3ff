"""Secrets in log lines and messages are hidden; ordinary text is left alone."""

from __future__ import annotations

import pytest

from bot.redaction import redact, redact_lines


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
