"""Exact percentiles without reading every value: the database ranks, Python interpolates.

A median or 90th percentile of a year of review times needs two values per percentile, not
the year's 80,000: those at the ranks either side of `fraction * (n - 1)`. `ranks()` numbers
each group's values in order (ROW_NUMBER, on both engines) and returns only the values at
those ranks, with the group's n; services/stats.py interpolates between them exactly as it
does over a whole sorted list. Ties make no difference: equal values at neighbouring ranks
are the same number whichever row carries them.

Also the SQL that turns unix seconds into the programme's local day number (days since
1970-01-01, local time), for counts per local day and week: PostgreSQL by the zone's name
(`AT TIME ZONE`); SQLite, which has no time zones, by the zone's UTC offset, changing at the
moments the zone's offset changes (Asia/Shanghai has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from storage.db import Connection, dialect

Group = Any  # a group's key as the database returns it: a number or a text


@dataclass(frozen=True)
class Ranked:
    """One group's number of values and its values at the ranks asked for (0 = smallest)."""

    n: int
    at: dict[int, int]


def _rank_conditions(fractions: Iterable[Fraction]) -> str:
    """The ranks either side of each `fraction * (n - 1)`, as SQL over the columns pos, n."""
    wanted = []
    for fraction in fractions:
        lower = f"{fraction.numerator} * (n - 1) / {fraction.denominator}"
        wanted += [lower, f"{lower} + 1"]
    return f"pos IN ({', '.join(wanted)})"


async def ranks(
    conn: Connection, values: str, params: Sequence[object], fractions: Iterable[Fraction]
) -> dict[Group, Ranked]:
    """Per group of `values` (SQL giving the columns grp and value, integers, never NULL),
    its n and the values around each fraction's rank. Groups without values are absent."""
    sql = (
        "SELECT grp, n, pos, value FROM ("  # noqa: S608 (the callers' fixed SQL, integers)
        " SELECT grp, value, COUNT(*) OVER (PARTITION BY grp) AS n,"
        " ROW_NUMBER() OVER (PARTITION BY grp ORDER BY value) - 1 AS pos"
        f" FROM ({values}) AS v) AS r WHERE {_rank_conditions(fractions)}"
    )
    found: dict[Group, Ranked] = {}
    async with conn.execute(sql, tuple(params)) as cursor:
        for group, n, position, value in await cursor.fetchall():
            found.setdefault(group, Ranked(int(n), {})).at[int(position)] = int(value)
    return found


_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


@dataclass(frozen=True)
class LocalDays:
    """The programme's time zone over a span of time, as SQL needs it: its IANA name, and
    its UTC offset at the span's start with every change of it inside the span."""

    zone: str
    offset: int  # seconds east of UTC at the span's start
    changes: tuple[tuple[int, int], ...] = ()  # (unix second, offset from then on), in order

    def __post_init__(self) -> None:
        if not _ZONE_NAME.match(self.zone):  # it is written into the SQL
            raise ValueError(f"not a time zone name: {self.zone!r}")


def local_day(conn: Connection, column: str, days: LocalDays) -> str:
    """SQL for the local day number of `column` (unix seconds, not NULL): an integer."""
    if dialect(conn) == "postgresql":
        return f"((to_timestamp({column}) AT TIME ZONE '{days.zone}')::date - DATE '1970-01-01')"
    offset = str(int(days.offset))
    if days.changes:
        steps = "".join(
            f" WHEN {column} < {int(at)} THEN {offset_before}"
            for at, offset_before in _before(days)
        )
        offset = f"CASE{steps} ELSE {int(days.changes[-1][1])} END"
    # Seconds are positive, so SQLite's integer division is the floor.
    return f"(({column} + {offset}) / 86400)"


def _before(days: LocalDays) -> list[tuple[int, int]]:
    """(change, the offset in force until it) for each change, in order."""
    offsets = [days.offset, *(offset for _, offset in days.changes)]
    return [(at, offsets[index]) for index, (at, _) in enumerate(days.changes)]


def monday(day: str) -> str:
    """SQL for the local day number of the Monday starting the week of `day` (SQL for a day
    number): day 0, 1970-01-01, was a Thursday."""
    return f"({day} - ({day} + 3) % 7)"
