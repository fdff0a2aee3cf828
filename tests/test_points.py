"""Points that buy something: codes, a raced redemption, never negative, statement, audit."""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from services import ledger
from services.audit import audit
from services.points import ALPHABET, CODE_LENGTH
from storage import points as points_store
from tests.conftest import RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.money_helpers import Money
from tests.riders import Chat
from tests.test_places import MERCHANT, STATION_24H, admin_chat, csv_file, load_places

RIDER = TgUser(601, first_name="Li", language_code="en")
STAFF_A = TgUser(701, language_code="en")
STAFF_B = TgUser(702, language_code="en")
CODE = re.compile(rf"[{ALPHABET}]{{{CODE_LENGTH}}}")


async def setup(bot: RunningBot, fake: FakeTelegram, approvals: int = 2) -> tuple[Chat, Money]:
    """Places loaded, two staff at 好味快餐, a rider with 20 points per approval near it."""
    await load_places(fake, csv_file(STATION_24H, MERCHANT))
    admin = admin_chat(fake)
    for staff in (STAFF_A, STAFF_B):
        fake.send_text(admin.user, f"/merchants add 好味快餐 {staff.id}")
        assert "registered as staff" in (await admin.one()).text
    money = Money(bot.app.bot_data["runtime"].db)
    rider_id = await money.rider(telegram_id=RIDER.id)
    now = int(datetime.now(UTC).timestamp())  # this week: no payout batch is due yet
    for _ in range(approvals):
        await money.approve(rider_id, now=now)  # 100 yuan: 20 points
    runtime = bot.app.bot_data["runtime"]
    await runtime.places.ask_location(RIDER.id)
    assert await runtime.places.answers_ask(RIDER.id, 39.9090, 116.3990)
    return Chat(fake, RIDER), money


async def get_code(rider: Chat, item: str) -> str:
    rider.text("/points")
    _balance, offers = await rider.next(2)
    rider.press(offers, item)
    issued = await rider.one()
    assert issued.kind == "photo"  # the QR
    found = CODE.search(issued.text)
    assert found, issued.text
    return found.group(0)


async def test_a_rider_spends_points_on_a_code_and_staff_redeem_it(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider, _ = await setup(bot, fake)
    rider.text("/points")
    balance, offers = await rider.next(2)
    assert "Points you can spend: 40" in balance.text
    assert [t for t, _ in offers.buttons()] == [
        "好味快餐: 热饭一份 (30 points)",
        "好味快餐: 矿泉水 (5 points)",
    ]
    rider.press(offers, "热饭一份")
    code = CODE.search((await rider.one()).text).group(0)  # type: ignore[union-attr]
    rider.text("/balance")
    assert "can spend now: 10 (30 held" in (await rider.next(2))[1].text
    staff = Chat(fake, STAFF_A)
    staff.text(f"/redeem {code.lower()}")
    check = await staff.one()
    assert "热饭一份, 30 points" in check.text
    staff.press(check, "Confirm")
    assert f"Redeemed {code}" in (await staff.one()).text
    told = (await rider.one()).text  # through the outbox, in the stored language
    assert "好味快餐" in told
    assert "30" in told
    assert "热饭一份" in told
    db = bot.app.bot_data["runtime"].db
    row = await db.fetchone("SELECT SUM(points) FROM ledger WHERE kind = 'redemption'")
    assert row[0] == -30
    assert await audit(db) == []


async def test_two_staff_pressing_at_once_redeem_the_code_once(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider, _ = await setup(bot, fake)
    code = await get_code(rider, "热饭一份")
    checks = []
    for user in (STAFF_A, STAFF_B):
        chat = Chat(fake, user)
        chat.text(f"/redeem {code}")
        checks.append((chat, await chat.one()))
    for chat, check in checks:  # both presses queued before either is handled
        fake.press_button(chat.user, check, check.button("Confirm"))
    answers = [(await chat.one()).text for chat, _ in checks]
    assert sorted("Redeemed" in a for a in answers) == [False, True]
    assert any("used already" in a for a in answers)
    db = bot.app.bot_data["runtime"].db
    rows = await db.fetchall("SELECT points FROM ledger WHERE kind = 'redemption'")
    assert [r[0] for r in rows] == [-30]


async def test_concurrent_redeem_calls_spend_once(bot: RunningBot, fake: FakeTelegram) -> None:
    rider, _ = await setup(bot, fake)
    code = await get_code(rider, "矿泉水")
    points = bot.app.bot_data["runtime"].points
    outcomes = await asyncio.gather(*(points.redeem(s.id, code) for s in (STAFF_A, STAFF_B) * 3))
    assert sum(not isinstance(o, str) for o in outcomes) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["used"] * 5


async def test_points_never_go_negative(bot: RunningBot, fake: FakeTelegram) -> None:
    rider, _money = await setup(bot, fake, approvals=2)
    code = await get_code(rider, "热饭一份")  # 30 of 40 points held
    runtime = bot.app.bot_data["runtime"]
    db = runtime.db
    report = await db.fetchone("SELECT MIN(id) FROM reports")
    await ledger.reverse_reward(db, report_id=report[0], reason="duplicate", now=1)  # -20
    assert await runtime.points.redeem(STAFF_A.id, code) == "not_enough"
    row = await db.fetchone("SELECT SUM(points), COUNT(*) FROM ledger WHERE kind = 'redemption'")
    assert row[1] == 0
    found = await points_store.code(db, code)
    assert found is not None
    assert found.status == "issued"
    with pytest.raises(sqlite3.IntegrityError, match="points would go negative"):
        async with db.transaction() as conn:
            await points_store.insert_redemption(
                conn, rider_id=found.rider_id, points=25, code="ZZZZZZZZ", memo="", now=1
            )
    rider.text("/points")  # 20 points, 30 held by the code: nothing affordable beyond water
    balance, _offers = await rider.next(2)
    assert "spend: 0" in balance.text


async def test_codes_expire_and_can_be_cancelled(bot: RunningBot, fake: FakeTelegram) -> None:
    rider, _ = await setup(bot, fake)
    code = await get_code(rider, "矿泉水")
    issued = rider.fake.sent_to(RIDER.id)[-1]
    rider.press(issued, "Cancel")
    await asyncio.sleep(0.3)
    assert "cancelled" in fake.callback_answers[-1].get("text", "")
    points = bot.app.bot_data["runtime"].points
    assert await points.redeem(STAFF_A.id, code) == "cancelled"
    second = await get_code(rider, "矿泉水")
    later = datetime.now(UTC) + timedelta(minutes=16)
    points.clock = lambda: later
    assert await points.redeem(STAFF_A.id, second) == "expired"


async def test_outsiders_cannot_redeem_and_limits_hold(bot: RunningBot, fake: FakeTelegram) -> None:
    rider, _ = await setup(bot, fake, approvals=5)
    stranger = Chat(fake, TgUser(799, language_code="en"))
    stranger.text("/redeem ABCDEFGH")
    assert "registered staff" in (await stranger.one()).text
    for _ in range(5):  # the default: 5 codes per rider per day
        await get_code(rider, "矿泉水")
    rider.text("/points")
    _, offers = await rider.next(2)
    rider.press(offers, "矿泉水")
    await asyncio.sleep(0.3)
    assert "today's codes" in fake.callback_answers[-1].get("text", "")


async def test_month_end_statement_per_merchant(bot: RunningBot, fake: FakeTelegram) -> None:
    rider, _ = await setup(bot, fake)
    code = await get_code(rider, "热饭一份")
    points = bot.app.bot_data["runtime"].points
    assert not isinstance(await points.redeem(STAFF_A.id, code), str)
    admin = admin_chat(fake)
    month = datetime.now(UTC).astimezone(bot.settings.timezone).strftime("%Y-%m")
    fake.send_text(admin.user, f"/merchants statement {month}")
    statement = await admin.one()
    assert statement.kind == "document"
    assert "1" in statement.text
    assert "30" in statement.text
    assert statement.file_bytes is not None
    sheet = load_workbook(io.BytesIO(statement.file_bytes)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[2][0] == code
    assert rows[2][2] == "热饭一份"
    assert rows[2][3] == 30
    assert rows[-1][0] == "total"
    assert rows[-1][3] == 30


async def test_an_item_press_handled_again_gets_the_same_code_and_holds_points_once(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider, _ = await setup(bot, fake)
    rider.text("/points")
    _balance, offers = await rider.next(2)
    press = fake.press_button(RIDER, offers, offers.button("热饭一份"))
    first = CODE.search((await rider.one()).text)
    assert first is not None
    # The same press handled again, as the update inbox replays an update a killed process
    # had taken: a new update carrying the same callback query.
    again = {key: value for key, value in press.items() if key != "update_id"}
    fake.inject(again)
    second = CODE.search((await rider.one()).text)
    assert second is not None
    assert second.group(0) == first.group(0)
    rider.text("/balance")
    assert "can spend now: 10 (30 held" in (await rider.next(2))[1].text
    codes = await bot.app.bot_data["runtime"].db.fetchall("SELECT code FROM redemption_codes")
    assert [row[0] for row in codes] == [first.group(0)]


async def test_staff_cannot_redeem_their_own_code(bot: RunningBot, fake: FakeTelegram) -> None:
    _rider, money = await setup(bot, fake)
    runtime = bot.app.bot_data["runtime"]
    staff_as_rider = await money.rider(telegram_id=STAFF_A.id)
    await money.approve(staff_as_rider, now=int(datetime.now(UTC).timestamp()))
    await runtime.places.ask_location(STAFF_A.id)
    assert await runtime.places.answers_ask(STAFF_A.id, 39.9090, 116.3990)
    staff = Chat(fake, STAFF_A)
    code = await get_code(staff, "矿泉水")
    staff.text(f"/redeem {code}")
    assert "is your own: ask a colleague" in (await staff.one()).text
    assert await runtime.points.redeem(STAFF_A.id, code) == "own_code"  # a forged confirm too
    colleague = Chat(fake, STAFF_B)
    colleague.text(f"/redeem {code}")
    check = await colleague.one()
    colleague.press(check, "Confirm")
    assert f"Redeemed {code}" in (await colleague.one()).text


async def test_a_reversal_after_points_were_spent_is_a_debt_the_next_points_settle(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider, money = await setup(bot, fake, approvals=2)  # 40 points
    code = await get_code(rider, "热饭一份")
    runtime = bot.app.bot_data["runtime"]
    assert not isinstance(await runtime.points.redeem(STAFF_A.id, code), str)  # 10 left
    assert "30" in (await rider.one()).text  # told of the redemption
    report = await runtime.db.fetchone("SELECT MIN(id) FROM reports")
    await ledger.reverse_reward(runtime.db, report_id=report[0], reason="duplicate", now=1)
    rider.text("/balance")
    balance, owed = await rider.next(2)
    assert balance.text.startswith("Points: 0\n")
    assert "10 points are still owed" in owed.text
    rider.text("/points")
    assert "spend: 0" in (await rider.next(2))[0].text

    (rider_id,) = await runtime.db.fetchone("SELECT rider_id FROM reports WHERE id = ?", report)
    await money.approve(rider_id, now=2)  # 20 more points
    rider.text("/balance")
    assert (await rider.one()).text.startswith("Points: 10\n")
    rider.text("/points")  # the debt is settled: no "owed" line came between, 10 can be spent
    assert "spend: 10" in (await rider.next(2))[0].text
