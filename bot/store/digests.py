"""Which digests were sent: one row per (channel, period), claimed before posting.

Claiming the row in a transaction before posting makes a second bot, or a restart around the digest
time, skip a digest that is already out; a failed post releases it so the next run tries again.
"""

from __future__ import annotations

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.store.database import Database


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE digests_sent (channel TEXT NOT NULL, period TEXT NOT NULL, claimed_at REAL NOT NULL, "
        "PRIMARY KEY (channel, period))"
    )


MIGRATIONS = [_create_tables]


class DigestLedger:
    """The `digests_sent` table."""

    def __init__(self, database: Database, *, clock: Clock = utcnow) -> None:
        self.database = database
        self.clock = clock
        database.ensure_schema("digests", MIGRATIONS)

    def claim(self, channel: str, period: str) -> bool:
        """True when this call claimed (channel, period); False when it was already claimed."""
        with self.database.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO digests_sent (channel, period, claimed_at) VALUES (?, ?, ?)",
                [channel, period, self.clock().timestamp()],
            )
            return bool(cursor.rowcount)

    def release(self, channel: str, period: str) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM digests_sent WHERE channel = ? AND period = ?", [channel, period])
