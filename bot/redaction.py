"""Redaction of secrets in text the bot shows people: container logs, event and status messages.

Logs routinely carry credentials (a connection URL, a bearer token echoed by a debug line, a
config dump). Everything the bot quotes from a log goes through `redact` first. The patterns
err on the side of hiding: a hidden value costs a reader little, a leaked one costs a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[REDACTED]"

_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]{8,}=*")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@")
_AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")
_KNOWN_TOKENS = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|sk-[A-Za-z0-9_-]{20,}|glpat-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35})"
)
# key=value, key: value, "key": "value" where the key's name says it holds a secret.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|credential|credentials|authorization|session[_-]?id|cookie)[\w.-]*)"
    r"(\"?'?\s*[=:]\s*\"?'?)"
    r"([^\s\"',;&}\]]+)"
)


def redact(text: str) -> str:
    """`text` with credentials replaced by [REDACTED]; the shape of the line stays readable."""
    text = _PRIVATE_KEY.sub("[REDACTED PRIVATE KEY]", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _AWS_ACCESS_KEY.sub(MASK, text)
    text = _KNOWN_TOKENS.sub(MASK, text)
    return _SECRET_ASSIGNMENT.sub(_mask_assignment, text)


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group(3)
    if value == MASK or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{MASK}"


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Redact line by line, except that a private key block spanning lines is hidden whole."""
    return redact("\n".join(lines)).split("\n")
