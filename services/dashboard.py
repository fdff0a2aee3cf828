"""The county office's page (the dashboard): who may open it, and what it shows.

Two doors, checked on every request of the page's data:
- a signed link an admin gets with /dashboard (`seal`ed admin id and expiry): it opens the
  page until it expires, and only while that person is still an admin;
- the same page as a Telegram Mini App for moderators: the `initData` Telegram gives the page,
  signed with the bot's token (HMAC-SHA256 keyed by HMAC-SHA256("WebAppData", token), as
  Telegram documents), at most `INIT_DATA_MAX_AGE` old, of a user who moderates (admins do).

What it shows holds nothing of a rider: cases by reference, category, town, department,
state, deadlines and place; each case's history by role and time, with the words of
departments and moderators but not the rider's; and each department's performance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode

from locales import Phrases
from services import geo
from services.cases import Light, Role, State, light
from services.clock import Now, utc_now
from services.figures import year_period
from services.performance import HEADERS, RATE_COLUMNS, performance, rate_text, sheet_rows
from services.signing import seal, unseal
from settings import Settings
from storage import dashboard as store
from storage.dashboard import NO_TOWN, Filters
from storage.db import Database, Row

PURPOSE = "dashboard"
INIT_DATA_MAX_AGE = 24 * 3600  # Telegram signs initData when the Mini App opens
TABLE_LIMIT = 500  # rows in the table; the count says how many more match
PATH = "/dashboard"


class Door(StrEnum):
    """How a visitor came in: the scheme of their `Authorization` header."""

    LINK = "Link"  # an admin's signed link
    MINI_APP = "tma"  # Telegram's initData (the Mini App convention)


class Denied(StrEnum):
    """Why the page's data was refused (`dashboard.denied.<value>` in locales)."""

    MISSING = "missing"  # no credentials at all
    INVALID = "invalid"  # forged, expired, or for another bot
    NOT_ALLOWED = "not_allowed"  # a real user who is not a moderator (or no longer an admin)


@dataclass(frozen=True)
class Visitor:
    telegram_id: int
    door: Door
    language: str | None = None  # Telegram's language_code, for the Mini App


def init_data_user(bot_token: str, init_data: str, now: int) -> tuple[int, str | None] | None:
    """The user id and language of Telegram-signed `init_data`; None if it is forged, for
    another bot, or older than `INIT_DATA_MAX_AGE`."""
    fields = dict(parse_qsl(init_data, keep_blank_values=True))
    given = fields.pop("hash", "")
    checked = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, checked.encode(), hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(expected, given):
        return None
    stamp = fields.get("auth_date", "")
    if not stamp.isdigit() or not -300 <= now - int(stamp) <= INIT_DATA_MAX_AGE:
        return None
    try:
        user = json.loads(fields.get("user", ""))
        user_id = user["id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    language = user.get("language_code")
    return user_id, language if isinstance(language, str) else None


def sign_init_data(bot_token: str, fields: dict[str, str]) -> str:
    """`fields` signed as Telegram signs a Mini App's initData (for tests and benches)."""
    checked = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    mac = hmac.new(secret, checked.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": mac})


class Dashboard:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        is_moderator: Callable[[int], Awaitable[bool]],
        clock: Now = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.rules = settings.programme.dashboard
        self.is_moderator = is_moderator
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock().timestamp())

    @property
    def url(self) -> str | None:
        """The page's address; None without PUBLIC_URL (nobody could open it)."""
        base = self.settings.web.public_url
        return None if base is None else f"{base}{PATH}"

    def link(self, admin_id: int, language: str) -> tuple[str, int] | None:
        """An admin's signed link to the page and when it expires; None without PUBLIC_URL."""
        if self.url is None:
            return None
        expires = self._now() + self.rules.link_hours * 3600
        token = seal(self.settings.link_key, PURPOSE, (admin_id,), expires)
        return f"{self.url}?{urlencode({'t': token, 'lang': language})}", expires

    async def visitor(self, authorization: str) -> Visitor | Denied:
        """Who is asking, from the request's `Authorization` header (`Link <token>` or
        `tma <initData>`), or why not."""
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if not credentials:
            return Denied.MISSING
        now = self._now()
        if scheme == Door.LINK:
            values = unseal(self.settings.link_key, PURPOSE, credentials, 1, now)
            if values is None:
                return Denied.INVALID
            if values[0] not in self.settings.admin_ids:
                return Denied.NOT_ALLOWED
            return Visitor(values[0], Door.LINK)
        if scheme == Door.MINI_APP:
            found = init_data_user(self.settings.bot_token, credentials, now)
            if found is None:
                return Denied.INVALID
            if not await self.is_moderator(found[0]):
                return Denied.NOT_ALLOWED
            return Visitor(found[0], Door.MINI_APP, found[1])
        return Denied.MISSING

    # --- what the page shows ------------------------------------------------------------------

    async def overview(self, t: Phrases) -> dict[str, Any]:
        """What the page needs once: the map's base, the filters' choices, the performance
        table of the year so far."""
        programme = self.settings.programme
        async with self.db.snapshot() as conn:
            towns, categories = await store.choices(conn)
        year = year_period(self.clock().astimezone(self.settings.timezone).year, t.zone)
        rows = await performance(self.db, programme, year)
        table = sheet_rows(rows, {d.key: d.name(t.language) for d in programme.departments})
        for row in table:
            for column in RATE_COLUMNS:
                row[column] = rate_text(row[column])
        return {
            "map": self._map(),
            "filters": self._choices(t, towns, categories),
            "performance": {
                "period": year.year,
                "headers": list(HEADERS.get(t.language, HEADERS["en"])),
                "rows": table,
            },
        }

    def _choices(
        self, t: Phrases, towns: list[str], categories: list[str]
    ) -> dict[str, list[dict[str, str]]]:
        """Each filter's options: what is configured, then what the cases name besides."""
        programme = self.settings.programme

        def options(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
            return [{"value": value, "label": label} for value, label in dict(pairs).items()]

        configured = [category.key for category in programme.categories]
        return {
            "town": options(
                [
                    *((town, town) for town in [*programme.towns.names, *towns]),
                    (NO_TOWN, t("town.none")),
                ]
            ),
            "department": options((d.key, d.name(t.language)) for d in programme.departments),
            "category": options(
                (key, self._category(t, key)) for key in [*configured, *categories]
            ),
            "state": options((state, t(f"dashboard.state.{state}")) for state in ["open", *State]),
        }

    def _map(self) -> dict[str, Any]:
        """The tiles and the towns' outlines (the service area's without a towns file), in
        the tiles' coordinates."""
        programme = self.settings.programme
        tiles = self.rules.tiles
        shift = geo.to_gcj02 if tiles == "amap" else _same
        outlines = [
            {"name": name, "rings": [[shift(lat, lon) for lat, lon in ring] for ring in rings]}
            for name, rings in programme.towns.outlines()
        ]
        area = programme.service_area.outline()
        if not outlines and area is not None:
            outlines = [{"name": "", "rings": [[shift(lat, lon) for lat, lon in area]]}]
        return {"tiles": tiles, "key": self.rules.tianditu_key, "outlines": outlines}

    async def cases(self, t: Phrases, filters: Filters) -> dict[str, Any]:
        """The table's rows (at most `TABLE_LIMIT`), how many match, and the map's points:
        every running case matching, coloured by its deadlines."""
        now = self._now()
        async with self.db.snapshot() as conn:
            rows, total = await store.cases(conn, filters, TABLE_LIMIT)
            running = await store.running(conn, filters)
        shift = geo.to_gcj02 if self.rules.tiles == "amap" else _same
        points = []
        for row in running:
            lit = _light(row, now)
            lat, lon = shift(row["latitude"], row["longitude"])
            colour = lit.value if lit else "none"
            points.append([round(lat, 6), round(lon, 6), colour, row["reference"]])
        return {
            "total": total,
            "shown": len(rows),
            "cases": [self._row(t, row, now) for row in rows],
            "points": points,
        }

    def _row(self, t: Phrases, row: Row, now: int) -> dict[str, Any]:
        lit = _light(row, now)
        return {
            "reference": row["reference"],
            "category": self._category(t, row["category"]),
            "town": row["town"] or t("town.none"),
            "department": self._department(t, row["department"]),
            "state": row["state"],
            "state_label": t(f"dashboard.state.{row['state']}"),
            "light": lit.value if lit else None,
            "urgent": bool(row["urgent"]),
            "opened": self._time(t, row["opened_at"]),
            "due": self._time(t, row["due_at"]),
            "fixed": self._time(t, row["fixed_at"]),
        }

    async def history(self, t: Phrases, reference: str) -> list[dict[str, Any]] | None:
        """Every decision and transition of a case, oldest first; None: no such case. A
        rider's own words (a reopening's reason) are not shown: only that they answered."""
        async with self.db.snapshot() as conn:
            events = await store.history(conn, reference)
        if events is None:
            return None
        shown = []
        for event in events:
            shown.append(
                {
                    "at": self._time(t, event["created_at"]),
                    "who": t(f"dashboard.role.{event['role']}"),
                    "action": _known(t, "dashboard.action", event["action"]),
                    "state": t(f"dashboard.state.{event['to_state']}"),
                    "department": self._department(t, event["department"]),
                    "note": None if event["role"] == Role.RIDER else event["note"],
                }
            )
        return shown

    def _department(self, t: Phrases, key: str) -> str:
        department = self.settings.programme.department(key)
        return department.name(t.language) if department else key

    def _category(self, t: Phrases, key: str | None) -> str:
        category = self.settings.programme.category(key or "")
        return category.name(t.language) if category else key or "-"

    def _time(self, t: Phrases, stamp: int | None) -> str | None:
        if stamp is None:
            return None
        return datetime.fromtimestamp(stamp, UTC).astimezone(t.zone).strftime("%Y-%m-%d %H:%M")


def _light(row: Row, now: int) -> Light | None:
    return light(
        State(row["state"]), now, row["due_at"], row["remind_at"], row["accept_due_at"],
        row["accept_remind_at"],
    )  # fmt: skip


def _same(lat: float, lon: float) -> tuple[float, float]:
    return lat, lon


def _known(t: Phrases, prefix: str, value: str) -> str:
    """`prefix.value` in the catalogue, or `prefix.other` for a value it does not name."""
    found = t(f"{prefix}.{value}")
    return t(f"{prefix}.other", value=value) if found == f"{prefix}.{value}" else found


def filters_of(query: Mapping[str, str]) -> Filters:
    """The table's filters from the page's query string; a missing or empty choice is any."""

    def pick(name: str) -> str | None:
        return query.get(name, "")[:100] or None

    return Filters(pick("town"), pick("department"), pick("category"), pick("state"))
