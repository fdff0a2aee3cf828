"""The outbox: notices queued with their change, rendered in the recipient's language, split
when long, delivered at most once and in order per chat, and forgotten a month later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.infra.notify import split_message
from services.outbox import At, Category, Fen, Msg, Notice, Outbox, decode, encode
from storage.db import Database


def test_a_notice_survives_its_round_trip_through_the_database() -> None:
    notice = Notice(
        42,
        "rider.approved",
        {"reference": "R-1", "amount": Fen(5000), "when": At(1), "why": Msg("reject.other")},
        lines=(("promise.digest_line", {"category": Category("road")}),),
        language="en",
        force_reply=True,
    )
    back = decode(42, "rider.approved", "en", encode(notice))
    assert back == notice


def test_long_text_is_split_between_lines_and_nothing_is_lost() -> None:
    lines = [f"• R-20261127-{n:04d} (deadline 11/28/26, 3:00 PM)" for n in range(400)]
    text = "\n".join(lines)
    pieces = split_message(text)
    assert len(pieces) > 1
    assert all(len(piece) <= 4096 for piece in pieces)
    assert "\n".join(pieces) == text
    one_long_line = "字" * 9000
    assert "".join(split_message(one_long_line)) == one_long_line
    assert split_message("short") == ["short"]


async def test_queueing_is_idempotent_and_delivery_claims_once(db: Database) -> None:
    outbox = Outbox(db)
    notice = Notice(7, "payout.paid", {"amount": Fen(100)}, once_key="payout.paid:1:7")
    assert await outbox.send(notice) == 1
    assert await outbox.send(notice) == 0  # the same notice is never queued twice
    (pending,) = await outbox.due()
    assert await outbox.claim(pending)
    assert not await outbox.claim(pending)  # a second sender cannot take it
    assert await outbox.due() == []


async def test_a_chats_notices_wait_behind_its_earlier_one(db: Database) -> None:
    outbox = Outbox(db)
    await outbox.send(Notice(7, "payout.on_the_way"), Notice(8, "payout.on_the_way"))
    await outbox.send(Notice(7, "payout.paid"))
    first = await outbox.due()
    assert [(p.notice.chat_id, p.notice.message) for p in first] == [
        (7, "payout.on_the_way"),
        (8, "payout.on_the_way"),
    ]
    await outbox.failed(first[0], "502", permanent=False)  # tried again in a minute
    assert [p.notice.chat_id for p in await outbox.due()] == [8]  # "paid" waits for it


async def test_a_notice_interrupted_mid_send_is_not_sent_again(db: Database) -> None:
    outbox = Outbox(db)
    await outbox.send(Notice(7, "payout.paid"))
    (pending,) = await outbox.due()
    assert await outbox.claim(pending)  # ... and the process dies here
    restarted = Outbox(db)
    assert await restarted.after_restart() == (1, 0)
    assert await restarted.due() == []


async def test_after_a_restart_notices_kept_for_later_are_tried_at_once(db: Database) -> None:
    outbox = Outbox(db)
    await outbox.send(Notice(7, "payout.paid"))
    (pending,) = await outbox.due()
    assert await outbox.claim(pending)
    await outbox.failed(pending, "Telegram is down", permanent=False)
    assert await outbox.due() == []  # a minute's pause
    assert await Outbox(db).after_restart() == (0, 1)
    assert [p.notice.message for p in await outbox.due()] == ["payout.paid"]


async def test_settled_notices_are_purged_after_a_month(db: Database) -> None:
    outbox = Outbox(db)
    await outbox.send(Notice(7, "payout.paid"), Notice(8, "payout.paid"))
    delivered, waiting = await outbox.due()
    assert await outbox.claim(delivered)
    await outbox.delivered(delivered)
    outbox.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    assert await outbox.purge() == 1
    rows = await db.fetchall("SELECT chat_id FROM outbox")
    assert [row[0] for row in rows] == [waiting.notice.chat_id]  # unsent notices stay


def test_a_notice_with_photo_and_buttons_survives_the_round_trip() -> None:
    from services.outbox import Button, Dept, Notice, decode, encode

    notice = Notice(
        7,
        "case.rider.fixed",
        {"reference": "R-1", "department": Dept("roads")},
        photo="case:3",
        buttons=((Button("case.button.yes", "cyes", 3, "fixed"), Button("x", "cno", 3)),),
    )
    back = decode(7, "case.rider.fixed", None, encode(notice))
    assert back.photo == "case:3"
    assert back.buttons == notice.buttons
    assert back.params == notice.params
