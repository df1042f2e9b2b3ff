"""The one redaction of secrets: in text the bot shows and in the state it records.

Two uses, one set of rules:

* **Text** (`Redactor.text`, `Redactor.lines`): container logs, event and condition messages,
  finding titles and evidence. What looks secret becomes `[REDACTED]`; the rest of the line stays
  readable (`password=[REDACTED]`, `postgres://app:[REDACTED]@db/shop`).
* **Values** (`Redactor.value`, `Redactor.tree`): env var values, ConfigMap data, annotations,
  container args, culprit before/after. A value whose KEY looks secret is hidden whole; any value
  is also scanned like text (a `password=` line inside `app.properties`, a URL with a password under
  an innocent name). A Redactor given the change store's keyed fingerprint writes
  `[REDACTED hmac:0123abcd…]`, so a changed secret is still a recorded change (the fingerprint
  differs) while the value itself is never stored or shown.

What looks secret (`RedactionRules`, extended by the `redact_keys` and `redact_token_prefixes`
settings):

* **Key names** containing a fragment of `KEY_FRAGMENTS`. A name is cut into parts at anything that
  is not a letter or digit and at camelCase humps (`DB_PASS` → db, pass; `apiKey` → api, key;
  `x-auth-token` → x, auth, token). A part matches a fragment when it equals it (a plural `s` may
  follow: `keys`, `tokens`), or, for fragments of five letters or more, when it starts or ends with
  it (`dbpassword`, `secretname`, `authtoken`). Short fragments (`key`, `pass`, `pwd`, `auth`) must be
  a whole part, so `keyboard`, `monkey`, `passive` and `author` are not secrets.
* **Values** of known shapes, whatever the key: private key blocks (`-----BEGIN … PRIVATE KEY-----`),
  URLs with a password (`scheme://user:pw@host`), `Bearer`/`Basic` credentials, JWTs (`eyJ….….…`)
  and tokens with a known prefix (`TOKEN_PREFIXES`: AWS access key ids, GitHub, GitLab, Slack,
  Stripe, Google API keys and OAuth tokens, npm, PyPI, Hugging Face, SendGrid, OpenAI-style `sk-`),
  and Azure AD client secrets (`…Q~…`).
* In text, a secret key followed by `=`, `:`, `:=` or `=>` (quotes allowed around the key and the
  value) hides its value: a quoted value up to its closing quote (spaces and commas included), an
  unquoted one up to the next space (in text) or the end of the line (in values, where
  `password=two words` is one property).

Linear time: no pattern here backtracks over a run it already scanned. Each detector finds its
anchors (a separator, a prefix, a key fragment) with a literal search, reads the token after it with
one character-class run, and resumes after that token; the spans found are merged once. A 1 MB line
costs tens of milliseconds whatever it holds (bench/redaction_bench.py). Patterns are never taken
from configuration (only key fragments and literal prefixes), so a setting cannot make it slow.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.model import Change, CulpritChange, FieldChange

MASK = "[REDACTED]"
MASK_PREFIX = "[REDACTED"
PRIVATE_KEY = " PRIVATE KEY"
_PLAIN = {"": MASK, PRIVATE_KEY: f"{MASK_PREFIX}{PRIVATE_KEY}]"}

KEY_FRAGMENTS: tuple[str, ...] = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "passphrase",
    "auth",
    "private",
    "cookie",
    "session",
    # compounds people write as one word, whose short fragment is not a part of its own
    "apikey",
    "accesskey",
    "authorization",
)
"""Key-name fragments that mark a value as secret (see the module docstring for the matching rule)."""

LONG_FRAGMENT = 5
"""Fragments at least this long also match at the start or end of a part (`dbpassword`)."""

MAX_KEY = 256
"""A "word" longer than this is not a key name (and is not examined as one)."""

TOKEN_PREFIXES: dict[str, int] = {
    # AWS access key ids: the prefix and 16 upper-case letters or digits
    **dict.fromkeys(("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"), 16),
    **dict.fromkeys(("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), 30),  # GitHub
    "glpat-": 20,  # GitLab
    **dict.fromkeys(("xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxe.", "xapp-"), 10),  # Slack
    **dict.fromkeys(("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"), 16),  # Stripe
    "sk-": 20,  # OpenAI-style API keys
    "AIza": 30,  # Google API keys
    "ya29.": 20,  # Google OAuth access tokens
    "npm_": 30,
    "pypi-": 40,
    "hf_": 30,  # Hugging Face
    "SG.": 20,  # SendGrid
    "eyJ": 16,  # JWTs (base64 of '{"'); also needs two dots, see _prefixed_tokens
}
"""Token prefix → the least number of token characters after it for the token to count."""
EXTRA_PREFIX_MIN = 8
"""Configured prefixes (`redact_token_prefixes`) need this many token characters after them."""

Fingerprint = Callable[[str], str]

_PROCESS_KEY = secrets.token_bytes(32)
"""For a Redactor given no fingerprint: values still hide as distinct markers within this process
(so a diff of two hidden values still sees a change), from a key that is never stored or shown."""


def process_fingerprint(value: str) -> str:
    return "hmac:" + hmac.new(_PROCESS_KEY, value.encode(), hashlib.sha256).hexdigest()[:16]


# -- the rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactionRules:
    """What looks secret: key fragments and token prefixes (the defaults plus configured extras)."""

    key_fragments: tuple[str, ...] = KEY_FRAGMENTS
    token_prefixes: tuple[tuple[str, int], ...] = tuple(TOKEN_PREFIXES.items())

    @classmethod
    def with_extras(cls, *, keys: Iterable[str] = (), token_prefixes: Iterable[str] = ()) -> RedactionRules:
        """The defaults plus `keys` (fragments, any case) and `token_prefixes` (literal, case-sensitive)."""
        fragments = tuple(dict.fromkeys((*KEY_FRAGMENTS, *(k.strip().lower() for k in keys if k.strip()))))
        prefixes = dict(TOKEN_PREFIXES)
        for prefix in token_prefixes:
            if prefix and prefix not in prefixes:
                prefixes[prefix] = EXTRA_PREFIX_MIN
        return cls(fragments, tuple(prefixes.items()))


class _Compiled:
    """The rules, ready to scan with: literal searches over an ASCII-lower-cased copy of the text."""

    __slots__ = ("anything", "fragments", "hint", "long_fragments", "minimum", "prefix", "secret_key")

    def __init__(self, rules: RedactionRules) -> None:
        fragments = sorted(set(rules.key_fragments), key=len, reverse=True)
        prefixes = sorted({p for p, _ in rules.token_prefixes}, key=len, reverse=True)
        self.fragments = frozenset(fragments)
        self.long_fragments = tuple(f for f in fragments if len(f) >= LONG_FRAGMENT)
        self.hint = re.compile(_trie_pattern(fragments))
        """Any fragment, anywhere in the lower-cased text: where a secret key may be."""
        self.prefix = re.compile(_trie_pattern(prefixes))
        anchors = {*fragments, "bearer", "basic", "://", PRIVATE_KEY_BEGIN.lower(), "q~", *map(str.lower, prefixes)}
        self.anything = re.compile(_trie_pattern(anchors))
        """Any anchor of any detector, in the lower-cased text: most values have none, and cost one search."""
        self.minimum = dict(rules.token_prefixes)
        self.secret_key: Callable[[str], bool] = functools.lru_cache(maxsize=8192)(self._secret_key)

    def _secret_key(self, name: str) -> bool:
        for found in _PART.findall(name):
            part = found.lower()
            if part in self.fragments or (part.endswith("s") and part[:-1] in self.fragments):
                return True
            if any(part.startswith(f) or part.endswith((f, f + "s")) for f in self.long_fragments):
                return True
        return False


def _trie_pattern(words: Iterable[str]) -> str:
    """One alternation of the literal `words`, shaped as a trie (`se(?:cret|ssion)`): at each position
    `re` follows one branch per character, so a search costs the same however many words there are,
    and an optional tail (`pass(?:word)?`) never backtracks further than the longest word."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie) or "(?!)"


@functools.lru_cache(maxsize=16)
def _compile(rules: RedactionRules) -> _Compiled:
    return _Compiled(rules)


_PART = re.compile(r"[a-z0-9]+|[A-Z][a-z0-9]+|[A-Z]+(?![a-z])")
"""The parts of a name: lower runs, Capitalised words, UPPER runs (an UPPER run before a Capitalised
word leaves it its capital: `APIKey` → API, Key). Linear: the only backtrack is one character."""


# -- the scanner ---------------------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
"""Lower-cases ASCII letters only, so every index of the copy is the same index of the text."""
_KEY_CHARS = re.compile(r"[A-Za-z0-9_.\-]*")


def _word_then_value(unquoted: str) -> re.Pattern[str]:
    """From a key fragment: the rest of its word, then (if there is one) a separator and the value.

    The value is the first that fits: inside escaped quotes (`\\"…\\"`, JSON inside a JSON string),
    inside quotes (escapes skipped), or unquoted after an optional auth scheme (`Bearer `). The word
    class holds no separator or quote character and each value alternative starts with a different
    character and cannot fail, so nothing backtracks: one pass over the word and the value.
    The value's group is the last one matched (`Match.lastgroup`); "word" means there is none."""
    return re.compile(
        r"""(?P<word>[A-Za-z0-9_.\-]*)"""
        r"""(?:\\?["'`]?[ \t]*(?:=>|:=|=|:)(?![:/=])[ \t]*"""
        r"""(?:\\"(?P<escaped>(?:[^\\\n]|\\(?!"))*)"""
        r"""|"(?P<double>[^"\\\n]*(?:\\.[^"\\\n]*)*)"""
        r"""|'(?P<single>[^'\\\n]*(?:\\.[^'\\\n]*)*)"""
        r"""|`(?P<backtick>[^`\n]*)"""
        r"""|(?:(?:bearer|basic|token|digest)[ \t]+)?(?P<unquoted>""" + unquoted + r""")))?""",
        re.IGNORECASE,
    )


_IN_TEXT = _word_then_value(r"""[^\s"'&]*""")
"""In text (logs), an unquoted value ends at a space, a quote or `&`."""
_IN_VALUE = _word_then_value(r"[^\r\n]*")
"""In a configured value (a properties or YAML line), an unquoted value runs to the end of the line."""
_AUTH_SCHEME = re.compile(r"(?:bearer|basic)[ \t]+")
_CREDENTIAL = re.compile(r"[A-Za-z0-9\-._~+/]*=*")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_.~\-]*=*")
_TOKEN_HEAD = re.compile(r"[A-Za-z0-9_.~\-]{3}[0-9]")
_AUTHORITY = re.compile(r"""[^/?#\s"'<>]*""")
PRIVATE_KEY_BEGIN = "-----BEGIN "
MAX_HEADER = 80
"""A PEM header (`-----BEGIN RSA PRIVATE KEY-----`) is at most this long."""

Span = tuple[int, int, str]
"""(start, end, label) of a secret in the text; the label is " PRIVATE KEY" or ""."""


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that cannot fail (a `*` run) ends, matched at `pos`."""
    match = pattern.match(text, pos)
    return match.end() if match is not None else pos


def _word_start(text: str, pos: int) -> bool:
    return pos == 0 or not text[pos - 1].isalnum()


def _private_keys(text: str, spans: list[Span]) -> None:
    pos = 0
    while (begin := text.find(PRIVATE_KEY_BEGIN, pos)) != -1:
        header_from = begin + len(PRIVATE_KEY_BEGIN)
        header_end = text.find("-----", header_from, header_from + MAX_HEADER)
        if header_end == -1 or "PRIVATE KEY" not in text[header_from:header_end]:
            pos = header_from
            continue
        end_marker = text.find("-----END ", header_end + 5)
        if end_marker == -1:
            spans.append((begin, len(text), PRIVATE_KEY))  # cut short: hide it to the end
            return
        closing = text.find("-----", end_marker + 9, end_marker + 9 + MAX_HEADER)
        end = closing + 5 if closing != -1 else end_marker + 9
        spans.append((begin, end, PRIVATE_KEY))
        pos = end


def _url_passwords(text: str, spans: list[Span]) -> None:
    """`scheme://user:password@host`: the password (the user stays, it helps to read the line)."""
    pos = 0
    while (i := text.find("://", pos)) != -1:
        start = i + 3
        end = _end(_AUTHORITY, text, start)
        at = text.rfind("@", start, end)
        if at != -1:
            colon = text.find(":", start, at)
            if colon != -1 and colon + 1 < at:
                spans.append((colon + 1, at, ""))
        pos = max(end, start)


def _auth_schemes(text: str, lowered: str, spans: list[Span]) -> None:
    """`Bearer <token>` / `Basic <base64>`: the credential, unless it is a plain lower-case word."""
    for match in _AUTH_SCHEME.finditer(lowered):
        if not _word_start(text, match.start()):
            continue
        end = _end(_CREDENTIAL, text, match.end())
        credential = text[match.end() : end]
        if len(credential) >= 8 and not (credential.isalpha() and credential.islower()):
            spans.append((match.end(), end, ""))


def _prefixed_tokens(text: str, compiled: _Compiled, spans: list[Span]) -> None:
    pos = 0
    while (match := compiled.prefix.search(text, pos)) is not None:
        end = _end(_TOKEN_TAIL, text, match.end())
        prefix = match.group()
        long_enough = end - match.end() >= compiled.minimum.get(prefix, EXTRA_PREFIX_MIN)
        if (
            long_enough
            and _word_start(text, match.start())
            and (prefix != "eyJ" or text.count(".", match.start(), end) >= 2)
        ):
            spans.append((match.start(), end, ""))
        pos = end  # the whole token run is read once, whatever it was


def _azure_secrets(text: str, spans: list[Span]) -> None:
    """Azure AD client secrets: 3 token characters, a digit, `Q~`, about 34 more."""
    pos = 0
    while (marker := text.find("Q~", pos)) != -1:
        start = marker - 4
        end = _end(_TOKEN_TAIL, text, marker + 2)
        if start >= 0 and 30 <= end - start <= 44 and _TOKEN_HEAD.fullmatch(text, start, marker):
            spans.append((start, end, ""))
        pos = max(end, marker + 2)


def _assignments(text: str, lowered: str, compiled: _Compiled, *, to_line_end: bool) -> list[Span]:
    """`secret_key<sep>value`: the value. Each key-fragment hit reads the rest of its word (and its
    value) once; the search resumes after them, so no character is read twice."""
    spans: list[Span] = []
    n = len(text)
    reverse = ""
    search, secret = compiled.hint.search, compiled.secret_key
    word_then_value = (_IN_VALUE if to_line_end else _IN_TEXT).match
    pos = 0
    while (hit := search(lowered, pos)) is not None:
        h, floor = hit.start(), pos
        found = word_then_value(text, h)
        assert found is not None  # every part of it is optional
        value = found.lastgroup
        pos = found.end()
        if value is None or value == "word":
            continue  # a word that is not a key: `keyboard`, `token expired`
        if not reverse:
            reverse = text[::-1]
        left = _KEY_CHARS.match(reverse, n - h, n - floor)  # the word's start, never before `floor`
        start = h - (left.end() - (n - h)) if left is not None else h
        end = found.end("word")
        if end - start > MAX_KEY or not secret(text[start:end]):
            pos = end  # not a secret key: its "value" may hold one (`note: password=x`)
            continue
        v, stop = found.span(value)
        if stop > v and not text.startswith(MASK_PREFIX, v):
            spans.append((v, stop, ""))
    return spans


def _find(text: str, compiled: _Compiled, *, to_line_end: bool) -> list[Span]:
    lowered = text.translate(_ASCII_LOWER)
    if compiled.anything.search(lowered) is None:
        return []
    spans: list[Span] = []
    _private_keys(text, spans)
    _url_passwords(text, spans)
    _auth_schemes(text, lowered, spans)
    _prefixed_tokens(text, compiled, spans)
    _azure_secrets(text, spans)
    assigned = _assignments(text, lowered, compiled, to_line_end=to_line_end)
    if not spans:
        return assigned  # in order and apart already: the common case needs no merge
    spans += assigned
    spans.sort()
    merged = [spans[0]]
    for start, end, label in spans[1:]:
        last_start, last_end, last_label = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end), last_label or label)
        else:
            merged.append((start, end, label))
    return merged


# -- the redactor --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redactor:
    """Redacts text and values by `rules`. A hidden VALUE reads `[REDACTED hmac:…]`, a keyed
    fingerprint (the change store's when given, so markers match the recorded history; else one of
    this process), so two different secrets stay different in a diff; text masks are always plain
    `[REDACTED]`."""

    rules: RedactionRules = RedactionRules()
    fingerprint: Fingerprint | None = None
    _compiled: _Compiled | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def _scanner(self) -> _Compiled:
        """The compiled rules, built on first use (importing this module compiles nothing heavy)."""
        compiled = self._compiled
        if compiled is None:
            compiled = _compile(self.rules)
            object.__setattr__(self, "_compiled", compiled)
        return compiled

    def keyed(self, fingerprint: Fingerprint) -> Redactor:
        return replace(self, fingerprint=fingerprint)

    def secret_key(self, name: str) -> bool:
        """Does this key name (env var, ConfigMap key, annotation, flag) say it holds a secret?"""
        return len(name) <= MAX_KEY and self._scanner.secret_key(name)

    # -- text -----------------------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """`text` with credentials replaced by [REDACTED]; the shape of the line stays readable."""
        return self._apply(text, _find(text, self._scanner, to_line_end=False), keyed=False)

    def lines(self, lines: Iterable[str]) -> list[str]:
        """Redact line by line, except that a private key block spanning lines is hidden whole."""
        return self.text("\n".join(lines)).split("\n")

    # -- values ---------------------------------------------------------------------------------------

    def value(self, key: str | None, value: str) -> str:
        """A configured value: hidden whole when `key` looks secret, else scanned like text (a line
        holds a value up to its end). Empty values and booleans have nothing to hide."""
        if not value or value.lower() in ("true", "false") or value.startswith(MASK_PREFIX):
            return value
        if key is not None and self.secret_key(key):
            return self.mask(value)
        return self._apply(value, _find(value, self._scanner, to_line_end=True), keyed=True)

    def tree(self, value: Any, key: str | None = None) -> Any:
        """A JSON value (a pod template, a spec, a culprit's before/after) with secrets hidden:

        * `{"name": N, "value": V}` items (env vars, HTTP probe headers): V hidden when N looks secret;
        * maps under `annotations` and `data`: each value hidden when its key looks secret;
        * `args`/`command` lists: the item after a secret-looking flag (`--db-password`, `x`);
        * every other string: scanned as a value.
        """
        if isinstance(value, str):
            return self.value(None, value)
        if isinstance(value, list):
            return self._list(value, flags=key in ("args", "command"))
        if not isinstance(value, dict):
            return value
        if key in ("annotations", "data") and all(isinstance(v, str) for v in value.values()):
            return {k: self.value(str(k), v) for k, v in value.items()}
        out = {k: self.tree(v, str(k)) for k, v in value.items()}
        name, inner = value.get("name"), value.get("value")
        if isinstance(name, str) and isinstance(inner, str):
            out["value"] = self.value(name, inner)
        return out

    def _list(self, items: list[Any], *, flags: bool) -> list[Any]:
        out: list[Any] = []
        secret_next = False
        for item in items:
            if secret_next and isinstance(item, str):
                out.append(item if not item or item.startswith(MASK_PREFIX) else self.mask(item))
                secret_next = False
                continue
            out.append(self.tree(item))
            secret_next = (
                flags and isinstance(item, str) and item.startswith("-") and "=" not in item and self.secret_key(item)
            )
        return out

    def culprit(self, change: CulpritChange) -> CulpritChange:
        summary = self.text(change.summary) if change.summary else change.summary
        return replace(change, before=self.tree(change.before), after=self.tree(change.after), summary=summary)

    def change(self, change: Change) -> Change:
        """A recorded change as shown: its summary and field values scanned again (history recorded
        before a rule was added, or by an older version, still shows no secret)."""
        fields = tuple(FieldChange(f.path, self.tree(f.before), self.tree(f.after), f.label) for f in change.fields)
        return replace(change, summary=self.text(change.summary), fields=fields)

    def mask(self, secret: str, label: str = "") -> str:
        fingerprint = self.fingerprint or process_fingerprint
        return f"{MASK_PREFIX}{label} {fingerprint(secret)}]"

    def _apply(self, text: str, spans: list[Span], *, keyed: bool) -> str:
        if not spans:
            return text
        out: list[str] = []
        last = 0
        for start, end, label in spans:
            out += (text[last:start], self.mask(text[start:end], label) if keyed else _PLAIN[label])
            last = end
        out.append(text[last:])
        return "".join(out)


DEFAULT = Redactor()
"""The default rules with this process's fingerprint: for pure functions and tests given no Redactor."""


def redact(text: str) -> str:
    """`DEFAULT.text(text)`."""
    return DEFAULT.text(text)


def redact_lines(lines: Iterable[str]) -> list[str]:
    """`DEFAULT.lines(lines)`."""
    return DEFAULT.lines(lines)
