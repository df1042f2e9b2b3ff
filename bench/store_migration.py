"""How long the first start after issue 14 takes to give a single-cluster database's rows their cluster.

Writes a database as the single-cluster bot did (the components' schema steps before the cluster step)
with N changes, then opens it with this code and times the migration of the change history (the
largest table by far: a rebuild of `changes`, `change_state` and `watch_checkpoints`). Prints figures.

    PYTHONPATH=. python bench/store_migration.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.store import changes as changes_module
from bot.store.changes import ChangeStore
from bot.store.database import Database

SINGLE_CLUSTER_STEPS = changes_module.MIGRATIONS[:2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "old.db"
    old = Database(path)
    old.ensure_schema("changes", SINGLE_CLUSTER_STEPS)
    now = datetime.now(UTC)
    fields = json.dumps([{"path": "spec.template.spec.containers[0].image", "before": "app:1", "after": "app:2"}])
    with old.transaction() as tx:
        tx.conn.executemany(
            "INSERT INTO changes (at, kind, namespace, name, change_kind, summary, actor, revision, fields, uid, "
            "resource_version) VALUES (?, 'Deployment', ?, ?, 'image', 'image app: app:1 → app:2', 'ci', ?, ?, ?, ?)",
            (
                (
                    (now - timedelta(seconds=i % (30 * 86400))).timestamp(),
                    f"team-{i % 50}",
                    f"app-{i % 400}",
                    i % 30,
                    fields,
                    f"uid-{i % 400}",
                    str(i),
                )
                for i in range(args.rows)
            ),
        )
    old.close()
    size = path.stat().st_size / 1e6
    start = time.perf_counter()
    store = ChangeStore(Database(path, legacy_cluster="prod-eu"), cluster="prod-eu")
    took = time.perf_counter() - start
    count = store.count(since=now - timedelta(days=31))
    print(
        f"migrated {args.rows} changes ({size:.0f} MB before, {path.stat().st_size / 1e6:.0f} MB after) "
        f"in {took:.1f}s; {count} rows read back as prod-eu"
    )


if __name__ == "__main__":
    main()
