"""Which engine this pass of the suite ran on, and the two engines' migrations kept in step."""

from __future__ import annotations

import os
from pathlib import Path

from storage.db import Database, migrations
from tests import engines


async def test_engine_of_this_run(db: Database) -> None:
    """Records the engine (CI reads the line from the report) and checks it is the one asked."""
    print(f"database engine: {db.engine}")
    assert db.engine == engines.ENGINE
    if os.environ.get("REQUIRE_ENGINE"):
        assert db.engine == os.environ["REQUIRE_ENGINE"]
    if os.environ.get("ENGINE_MARK_FILE"):  # .ci/run checks this pass really ran on it
        Path(os.environ["ENGINE_MARK_FILE"]).write_text(db.engine, encoding="utf-8")  # noqa: ASYNC240
    assert await db.schema_version() == len(migrations(db.engine))


def test_both_engines_have_the_same_migrations() -> None:
    sqlite = [(number, name) for number, name, _ in migrations("sqlite")]
    postgresql = [(number, name) for number, name, _ in migrations("postgresql")]
    assert sqlite == postgresql
