"""The reward ledger: points, credits and reversals, balances, history and payout details.

Money is integer fen throughout (100 yuan = 10000). Every credit has an idempotency key
(`reward:<report>`, `reversal:<report>`), so a repeated update or a retried job never
credits twice; the database refuses to update or delete an entry.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from settings import Programme
from storage import ledger as store
from storage.db import Connection, Database
from storage.ledger import Balance, Entry, Payee

__all__ = [
    "Balance",
    "Entry",
    "Payee",
    "Reversal",
    "account_problem",
    "balance",
    "credit_reward",
    "history",
    "mask_account",
    "mask_name",
    "name_problem",
    "normalise_account",
    "parse_payee",
    "payee",
    "points_for",
    "record_reversal",
    "reverse_reward",
    "set_payee",
    "yuan",
]

NAME_MAX_CHARS = 40
ACCOUNT_MIN_CHARS = 5
ACCOUNT_MAX_CHARS = 60
_PHONE = re.compile(r"1\d{10}")
_PHONE_DECORATION = re.compile(r"[\s\-()]")


@dataclass(frozen=True)
class Reversal:
    """A reward taken back: what the rider loses and whether it had already been paid out."""

    report_id: int
    reference: str | None
    rider_id: int
    amount_fen: int  # positive: the reward's amount
    points: int  # positive: the reward's points
    reason: str
    created: bool  # False: the report had been reversed before (this call changed nothing)
    already_paid: bool  # a batch had settled the reward: the debt goes into the next batch


def points_for(amount_fen: int, programme: Programme) -> int:
    """Points for a verified report: a fixed number plus some per whole 10 yuan of reward."""
    return programme.points.per_report + (amount_fen // 1000) * programme.points.per_10_yuan


def yuan(fen: int) -> str:
    """`12345` -> `123.45`, `-50` -> `-0.50`: exact, two decimals, no floats."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


async def credit_reward(
    conn: Connection,
    *,
    report_id: int,
    rider_id: int,
    amount_fen: int,
    points: int,
    now: int,
) -> bool:
    """Credit the report's reward inside the approval's transaction; False if already credited.

    Raises ValueError for a negative amount or points, or a rider who did not send the report.
    """
    if amount_fen < 0 or points < 0:
        raise ValueError("a reward's amount and points must not be negative")
    if await store.report_rider(conn, report_id) != rider_id:
        raise ValueError(f"report {report_id} was not sent by rider {rider_id}")
    return await store.insert_reward(
        conn,
        report_id=report_id,
        rider_id=rider_id,
        amount_fen=amount_fen,
        points=points,
        now=now,
    )


async def record_reversal(
    conn: Connection, *, report_id: int, reason: str, now: int
) -> Reversal | None:
    """Add the reversal entry inside the caller's transaction; None if no reward exists.

    Idempotent: reversing twice adds one entry (the second call returns `created=False`
    and the first reason). Leaves the report's status to the caller.
    """
    reward = await store.reward(conn, report_id)
    if reward is None:
        return None
    created = await store.insert_reversal(conn, reward=reward, memo=reason, now=now)
    recorded = reason if created else await store.reversal_memo(conn, report_id)
    return Reversal(
        report_id=report_id,
        reference=reward.reference,
        rider_id=reward.rider_id,
        amount_fen=reward.amount_fen,
        points=reward.points,
        reason=recorded or "",
        created=created,
        already_paid=reward.settled_by_batch is not None,
    )


async def reverse_reward(db: Database, *, report_id: int, reason: str, now: int) -> Reversal | None:
    """Reverse an approved report: in one transaction, report -> reversed and the reversal.

    Returns None (and changes nothing) when the report has no reward to reverse. If the
    reward was paid already, the rider's balance goes negative and the next batch nets it.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("a reversal needs a reason")
    async with db.transaction() as conn:
        reversal = await record_reversal(conn, report_id=report_id, reason=reason, now=now)
        if reversal is not None:
            await store.mark_report_reversed(conn, report_id, now)
        return reversal


async def balance(db: Database, rider_id: int) -> Balance:
    return await store.balance(db, rider_id)


async def history(db: Database, rider_id: int, limit: int = 10) -> list[Entry]:
    """The rider's latest entries, newest first, with the report or batch each refers to."""
    return await store.history(db, rider_id, limit)


def normalise_account(text: str) -> str:
    """Trim the account; a phone typed as `+86 138-1234-8000` becomes `13812348000`."""
    text = text.strip()
    digits = _PHONE_DECORATION.sub("", text)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits if _PHONE.fullmatch(digits) else text


def name_problem(name: str) -> str | None:
    """None if `name` is a usable real name, else a problem key: name_empty, name_too_long,
    name_control_chars."""
    name = name.strip()
    if not name:
        return "name_empty"
    if len(name) > NAME_MAX_CHARS:
        return "name_too_long"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        return "name_control_chars"
    return None


def account_problem(account: str) -> str | None:
    """None if `account` (normalised) is a phone number or a 5-60 character account id,
    else a problem key: account_too_short, account_too_long, account_spaces,
    account_unprintable."""
    if _PHONE.fullmatch(account):
        return None
    if len(account) < ACCOUNT_MIN_CHARS:
        return "account_too_short"
    if len(account) > ACCOUNT_MAX_CHARS:
        return "account_too_long"
    if any(char.isspace() for char in account):
        return "account_spaces"
    if not account.isprintable():
        return "account_unprintable"
    return None


def mask_account(account: str) -> str:
    """`13812348000` -> `138****8000`; other accounts keep their first 3 and last 4
    characters when at least 4 are hidden, else only the last 2. The hidden part is always
    four stars, so the mask does not tell the account's length."""
    if len(account) >= 11:
        return f"{account[:3]}****{account[-4:]}"
    if len(account) > 2:
        return f"****{account[-2:]}"
    return "****"


def mask_name(name: str) -> str:
    """`张三丰` -> `张**`: the first character, then one star per other character
    (a one-character name becomes `*`)."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


_MOBILE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_WECHAT_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{5,19}")
_CJK_NAME = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+(·[\u3400-\u9fff\uf900-\ufaff]+)*")
_LATIN_NAME = re.compile(r"[^\W\d_]+([ ·][^\W\d_]+)*")


def is_account(account: str) -> bool:
    """A mainland mobile number, an email-like Alipay id, or a WeChat id by WeChat's rule
    (6-20 characters, starting with a letter; letters, digits, `_` and `-`)."""
    return bool(
        _MOBILE.fullmatch(account) or _EMAIL.fullmatch(account) or _WECHAT_ID.fullmatch(account)
    )


def is_real_name(name: str) -> bool:
    """2-20 characters: Chinese characters (joined by `·`, no spaces), or letters in words
    separated by one space or `·` (`Li Lei`). "路口事故 请联系" is not a name."""
    if not 2 <= len(name) <= 20:
        return False
    if _CJK_NAME.fullmatch(name):
        return True
    return bool(_LATIN_NAME.fullmatch(name)) and not any(
        "\u3400" <= char <= "\ufaff" for char in name
    )


def parse_payee(text: str) -> tuple[str, str] | None:
    """("real name", "account") from a rider's answer "name account", the account last (a
    phone number may be typed with spaces: `张三 +86 138 1234 8000`); None unless both look
    like what they must be. Anything more than a name and an account is refused."""
    words = text.split()
    for cut in range(1, len(words)):
        name, account = " ".join(words[:cut]), normalise_account("".join(words[cut:]))
        if cut < len(words) - 1 and not _MOBILE.fullmatch(account):
            continue  # only a phone number may span words
        if is_real_name(name) and is_account(account):
            return name, account
    return None


async def set_payee(
    db: Database, rider_id: int, real_name: str, account: str, *, now: int
) -> Payee:
    """Store the rider's payout details (normalised); ValueError with the problem key if invalid."""
    real_name = real_name.strip()
    account = normalise_account(account)
    problem = name_problem(real_name) or account_problem(account)
    if problem is not None:
        raise ValueError(problem)
    details = Payee(rider_id=rider_id, real_name=real_name, account=account, updated_at=now)
    await store.save_payee(db, details)
    return details


async def payee(db: Database, rider_id: int) -> Payee | None:
    return await store.payee(db, rider_id)
