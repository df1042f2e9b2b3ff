"""Redaction benchmark: time per MB of typical log text, and the worst 1 MB line we could construct.

    .venv/bin/python bench/redaction_bench.py              # 8 MB of log text, 1 MB hostile lines
    .venv/bin/python bench/redaction_bench.py --mb 2 --line-mb 4

Typical text: access-log, JSON and plain lines (about one in twenty carrying a credential), redacted
line by line as `logs` does (`Redactor.lines`). Hostile lines: one line each, built against every
detector of bot/redaction.py (a key fragment repeated, separators without values, unclosed quotes,
prefixes without tokens, URLs without hosts, PEM headers without ends, the old quadratic pattern's
favourite: a long word before `password`). Each is timed as text (logs) and as a value (recording),
and the time grows with the line's length, not its square (the table shows both 1/4 size and full).
No assertions: figures only (the brief's rule for speed).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from bot.redaction import Redactor

REDACTOR = Redactor(fingerprint=lambda value: "hmac:0123456789abcdef")


def typical_lines(megabytes: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    paths = ["/healthz", "/api/v1/orders", "/api/v1/cart/42", "/static/app.js", "/login"]
    secrets = [
        "DB_PASSWORD=hunter2-{n} connecting",
        'auth ok: {{"token": "tok-{n}-xyz", "user": "app"}}',
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{n}In0.c2lnbmF0dXJl",
        "dial postgres://app:pw-{n}@db.internal:5432/shop",
        "using key AKIAIOSFODNN7EXAMPLE",
    ]
    lines: list[str] = []
    size = 0
    n = 0
    while size < megabytes * 1_000_000:
        n += 1
        kind = rng.random()
        if kind < 0.05:
            line = rng.choice(secrets).format(n=n)
        elif kind < 0.5:
            line = (
                f"10.0.{n % 255}.{rng.randrange(255)} - - [30/Nov/2026:08:00:{n % 60:02d} +0000] "
                f'"GET {rng.choice(paths)} HTTP/1.1" {rng.choice([200, 200, 304, 404, 500])} {rng.randrange(9999)} '
                f'"-" "Mozilla/5.0 (X11; Linux x86_64)" rt={rng.random():.3f}'
            )
        elif kind < 0.8:
            line = json.dumps(
                {
                    "ts": f"2026-11-30T08:00:{n % 60:02d}Z",
                    "level": rng.choice(["info", "warn", "error"]),
                    "msg": "request served",
                    "order_id": n,
                    "session_ttl": 3600,
                    "cache_key": f"cart:{n}",
                    "latency_ms": rng.randrange(400),
                }
            )
        else:
            line = f"2026-11-30 08:00:{n % 60:02d} INFO worker-{n % 8} processed batch {n} of payments in {n % 97} ms"
        lines.append(line)
        size += len(line) + 1
    return lines


def hostile_lines(size: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    return {
        "one word, no hint": fill("a"),
        "key fragment repeated (one word)": fill("pass"),
        "secret key, separator, no value": fill("password="),
        "secret keys with values": fill("DB_PASS=x "),
        "unclosed double quotes": fill('password="'),
        "escaped quotes, unclosed": fill('\\"password\\": \\"'),
        "innocent words with hints": fill("keyboard monkey passive "),
        "long word then password (old worst case)": fill("a")[: size - 20] + " password=hunter2x",
        "JWT prefix, no dots": fill("eyJ-"),
        "JWT prefix with dots": fill("eyJ."),
        "token prefixes, too short": fill("ghp_-"),
        "scheme separators, no host": fill("://"),
        "userinfo everywhere": fill("a://b:c@"),
        "PEM headers, no end": fill("-----BEGIN "),
        "PEM private header, no end": "-----BEGIN RSA PRIVATE KEY-----" + fill("A"),
        "bearer, no credential": fill("Bearer "),
        "Azure secret marker": fill("abc1Q~"),
        "random printable": "".join(random.Random(1).choice([chr(c) for c in range(32, 127)]) for _ in range(size)),
    }


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=8.0, help="megabytes of typical log text")
    parser.add_argument("--line-mb", type=float, default=1.0, help="size of each hostile line, in megabytes")
    args = parser.parse_args()

    lines = typical_lines(args.mb)
    megabytes = sum(len(line) + 1 for line in lines) / 1_000_000
    seconds = timed(lambda: REDACTOR.lines(lines))
    per_mb = seconds / megabytes * 1000
    print(f"typical log text: {megabytes:.1f} MB in {len(lines)} lines, {seconds:.3f} s, {per_mb:.0f} ms per MB")
    one_line = " ".join(lines)[:1_000_000]
    seconds = timed(lambda: REDACTOR.text(one_line))
    print(f"typical text as one 1 MB line: {seconds * 1000:.0f} ms")
    print()

    size = int(args.line_mb * 1_000_000)
    print(f"hostile lines ({size / 1_000_000:.2f} MB each; ms as text / as a value; then text at 1/4 size):")
    worst = ("", 0.0)
    for name, line in hostile_lines(size).items():
        as_text = timed(lambda line=line: REDACTOR.text(line))
        as_value = timed(lambda line=line: REDACTOR.value("note", line))
        quarter = line[: size // 4]
        small = timed(lambda quarter=quarter: REDACTOR.text(quarter))
        print(f"  {name:<42} {as_text * 1000:7.0f} ms {as_value * 1000:7.0f} ms   (1/4: {small * 1000:5.0f} ms)")
        worst = max(worst, (name, max(as_text, as_value)), key=lambda pair: pair[1])
    print(f"worst: {worst[0]!r}, {worst[1] * 1000:.0f} ms for {size / 1_000_000:.2f} MB")


if __name__ == "__main__":
    main()
