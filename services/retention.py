"""Keeping the privacy notice's promises: photos go N days after a decision, expired drafts
go, and nothing is left of riders who asked to be forgotten. Money records stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reporting import FINISHED
from storage import retention as store
from storage.db import Database


@dataclass(frozen=True)
class Purged:
    photos: int
    drafts: int
    erased_riders_photos: int


async def purge(db: Database, now: datetime, photo_retention_days: int) -> Purged:
    """Delete what is due, in one transaction; returns counts (never contents) for the log."""
    cutoff = int((now - timedelta(days=photo_retention_days)).timestamp())
    async with db.transaction() as conn:
        return Purged(
            photos=await store.drop_old_photos(conn, cutoff, sorted(FINISHED)),
            drafts=await store.purge_expired_drafts(conn),
            erased_riders_photos=await store.leftovers_of_erased_riders(conn),
        )
