"""One-time invitations: nobody types a numeric id to join.

An admin asks for an invitation (`/mods invite`, `/staff invite roads`, `/merchants invite
<place>`) and forwards the link; whoever taps it first becomes a moderator, that department's
staff or that merchant's staff, and the admin is told who joined. The link's payload is a
sealed token (services/signing.py) naming the invitation; the row says what it grants and
is spent by one guarded UPDATE in the same transaction as the role it grants, so a forged,
expired, used or replayed link grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.clock import Now, utc_now
from services.outbox import Dept, Msg, Notice, Outbox, Params
from services.refusal import Refused
from services.signing import seal, unseal
from settings import Settings
from storage import cases as case_store
from storage import invites as store
from storage import moderation as moderation_store
from storage import places as place_store
from storage.db import Database

INVITE_DAYS = 7
PURPOSE = "invite"
LINK_PREFIX = "i"  # /start i<token>


class Role(StrEnum):
    MODERATOR = "moderator"
    STAFF = "staff"  # of the department `target`
    MERCHANT = "merchant"  # staff of the merchant `target`


class InviteRefusal(StrEnum):
    FORGED = "forged"  # not a link the bot made (or made with another token)
    EXPIRED = "expired"
    USED = "used"  # someone tapped it first
    GONE = "gone"  # the department or merchant no longer exists


@dataclass(frozen=True)
class Joined:
    role: Role
    target: str | None


class Invites:
    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock

    def now(self) -> int:
        return int(self.clock().timestamp())

    async def create(self, role: Role, target: str | None, admin_id: int) -> str:
        """A new invitation's link payload (`i<token>`), good for INVITE_DAYS."""
        expires = self.now() + INVITE_DAYS * 86_400
        invite_id = await store.create(self.db, role, target, admin_id, self.now(), expires)
        return LINK_PREFIX + seal(self.settings.link_key, PURPOSE, (invite_id,), expires)

    async def accept(
        self, payload: str, telegram_id: int, who: str
    ) -> Joined | Refused[InviteRefusal]:
        """Whoever tapped the link joins, once; the admin who made it is told (`who`: the
        name Telegram gives, with the @username)."""
        now = self.now()
        token = payload.removeprefix(LINK_PREFIX)
        key = self.settings.link_key
        found = unseal(key, PURPOSE, token, 1, now)
        if found is None:
            expired = unseal(key, PURPOSE, token, 1, 0) is not None
            return Refused(InviteRefusal.EXPIRED if expired else InviteRefusal.FORGED)
        async with self.db.transaction() as conn:
            row = await store.invite(conn, found[0])
            if row is None:
                return Refused(InviteRefusal.FORGED)
            role, target = Role(row["role"]), row["target"]
            if role == Role.STAFF and self.settings.programme.department(target) is None:
                return Refused(InviteRefusal.GONE)
            if not await store.use(conn, row["id"], telegram_id, now):
                return Refused(InviteRefusal.USED)
            admin = int(row["created_by"])
            if role == Role.MODERATOR:
                await moderation_store.insert_moderator(conn, telegram_id, admin, now)
            elif role == Role.STAFF:
                await case_store.insert_staff(conn, target, telegram_id, admin, now)
            else:
                await place_store.insert_staff(conn, telegram_id, target, admin, now)
            params: Params = {"who": who, "id": telegram_id, "role": Msg(f"invite.role.{role}")}
            if role == Role.STAFF:
                params["target"] = Dept(target)
            elif target is not None:
                params["target"] = target
            key_of = "invite.joined" if target is None else "invite.joined_to"
            await self.outbox.queue(conn, [Notice(admin, key_of, params)])
        return Joined(role, target)
