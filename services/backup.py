"""Online backups of the SQLite database with the SQLite backup API (safe while it runs)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

BACKUP_GLOB = "bot-*.db"


def backup(database: Path, folder: Path, keep: int, now: datetime) -> Path:
    """Copy `database` into `folder` as bot-YYYYmmdd-HHMMSS.db and keep the newest `keep`.

    Blocking: run it in a thread. The copy is consistent even while the bot writes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"bot-{now:%Y%m%d-%H%M%S}.db"
    partial = target.with_suffix(".db.partial")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    partial.replace(target)  # a half-written backup never looks like a backup
    for old in sorted(folder.glob(BACKUP_GLOB))[:-keep]:
        old.unlink()
    return target
