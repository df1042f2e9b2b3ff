"""Host names in configuration text: which Services an env value, an argument or a log line names.

`payments`, `payments:8080`, `payments.shop`, `payments.shop.svc.cluster.local:8080`,
`http://payments:8080/v1` and `postgres://user@payments-db:5432/app` all name a host; `names_service`
says whether one of them is the Service `payments` of namespace `shop` (the forms in-cluster DNS
resolves for it). Pure text functions: the snapshot keeps a ConfigMap's host names (never its values)
with them, and the diagnosis follows the names to the Services a workload calls.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`<>|]+")
_SPLIT = re.compile(r"[\s,;'\"`()\[\]{}<>|]+")
_PORT = re.compile(r"^(?P<host>[^:/]+):(?P<port>\d{1,5})(?:/.*)?$")
MAX_TEXT = 4096
"""Longer texts are read only up to here: enough for any env value or log line worth reading."""


def hosts_in(text: str, *, bare: bool = True) -> set[str]:
    """Host names `text` names: URLs' hosts, `host:port`, dotted names, and (with `bare`) plain words.

    `bare` words (`payments`) count only as the whole of a short value or after `=` in an argument
    (`--upstream=payments`): a word in a sentence is not a host name.
    """
    found: set[str] = set()
    text = text[:MAX_TEXT]
    for url in _URL.findall(text):
        # scheme://user:pass@host:port/path: the host only, whatever the (maybe masked) credentials.
        authority = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0].rsplit("@", 1)[-1]
        host = authority.rsplit(":", 1)[0] if re.search(r":\d+$", authority) else authority
        if HOST.match(host):
            found.add(host)
    text = _URL.sub(" ", text)
    tokens = [t for t in _SPLIT.split(text) if t]
    whole = len(tokens) == 1
    for token in tokens:
        for part in _parts(token):
            host, explicit = _host_of(part)
            if host is None:
                continue
            if explicit or "." in host or (bare and (whole or "=" in token)):
                found.add(host)
    return found


def _parts(token: str) -> list[str]:
    """`--upstream=payments:8080` → [`--upstream=payments:8080`, `payments:8080`]."""
    parts = [token]
    if "=" in token and "://" not in token.split("=", 1)[0]:
        parts.append(token.split("=", 1)[1])
    return parts


def _host_of(token: str) -> tuple[str | None, bool]:
    """(host, explicit): explicit when the token says it is a host (a URL, or a port after it)."""
    token = token.strip(".:")
    if "://" in token:
        try:
            host = urlsplit(token).hostname
        except ValueError:
            return None, False
        return (host, True) if host and HOST.match(host) else (None, False)
    if "@" in token:
        token = token.rsplit("@", 1)[1]
    match = _PORT.match(token)
    if match:
        host = match.group("host")
        return (host, True) if HOST.match(host) else (None, False)
    # Service names are lower case; a word in capitals (`REDACTED`, `INFO`) is not a host.
    if "/" in token or not HOST.match(token) or token.replace(".", "").isdigit():
        return None, False
    return token, False


def names_service(host: str, service: str, namespace: str) -> bool:
    """Whether `host` is what in-cluster DNS resolves to Service `service` of `namespace`."""
    host = host.lower().rstrip(".")
    return host in (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


def services_named(text: str, services: set[str], namespace: str, *, bare: bool = True) -> set[str]:
    """Which of `services` (names in `namespace`) `text` names."""
    return {s for host in hosts_in(text, bare=bare) for s in services if names_service(host, s, namespace)}
