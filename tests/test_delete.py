"""/delete keeps its promise: nothing of the rider's stays but accounting records.

A rider with a paid report (in an exported payout file), new payout details since, a question
answered and messages waiting in the outbox asks to be forgotten. Afterwards every column of
every table, and the database file's bytes, are searched for what they told us.
"""

from __future__ import annotations

import re
from pathlib import Path

from handlers.infra.notify import VERBATIM
from services.outbox import Notice
from tests import images
from tests import test_cases as cases
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import Chat, reference_in

RIDER = TgUser(951_357_246, first_name="王小二", language_code="zh-hans")
MOD = TgUser(MODERATOR, first_name="审核员甲")
BOSS = TgUser(ADMIN, language_code="en")

NAME = "王小二"
OLD_ACCOUNT = "13912345678"  # in the exported payout file: an accounting record, stays
NEW_ACCOUNT = "wxid_wangxiaoer_2026"  # the live payout details, given after the export
FIRST = "西门路口井盖缺失晚上很危险"
SECOND = "东门菜市场门口电线掉下来了"
QUESTION = "电线是否还在冒火花"
ANSWER = "还在冒火花旁边是幼儿园"
WAITING = "一条还没送达的通知"
ERASED = (NEW_ACCOUNT, FIRST, SECOND, QUESTION, ANSWER, WAITING)


async def every_value(bot: RunningBot) -> list[tuple[str, str, object]]:
    """(table, column, value) of every non-null value in the database."""
    db = bot.app.bot_data["runtime"].db
    listing = (
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name <> 'schema_version'"
        if db.engine == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    tables = [row[0] for row in await db.fetchall(listing)]
    found: list[tuple[str, str, object]] = []
    for table in tables:
        for row in await db.fetchall(f"SELECT * FROM {table}"):  # noqa: S608
            found.extend((table, column, row[column]) for column in row.keys())  # noqa: SIM118
    return [(table, column, value) for table, column, value in found if value is not None]


ASKED = "我家住在幸福路九号，奖励能送上门吗"  # an /ask question, the rider's own words


def raw_bytes(bot: RunningBot) -> bytes:
    """The database file and its write-ahead log, as bytes on disk."""
    path: Path = bot.app.bot_data["runtime"].db.path
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def contains(value: object, needle: str) -> bool:
    """Whether `needle` stands in `value` as a whole: an id inside another number (a
    timestamp such as 1796380109 holds "801") is not the id."""
    if isinstance(value, int | float):
        return str(value) == needle
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    if not needle.isdigit():
        return needle in text
    return re.search(rf"(?<!\d){re.escape(needle)}(?!\d)", text) is not None


async def told(fake: FakeTelegram, rider: Chat, start: str) -> SentMessage:
    """The next message to the rider that starts with `start` (notices may come in between)."""

    def found() -> int | None:
        sent = fake.sent_to(rider.user.id)
        return next(
            (i for i in range(rider.seen, len(sent)) if sent[i].text.startswith(start)), None
        )

    await fake.wait_for(lambda: found() is not None)
    index = found()
    assert index is not None
    rider.seen = index + 1
    return fake.sent_to(rider.user.id)[index]


async def test_delete_erases_everything_but_the_exported_accounting_records(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    runtime = bot.app.bot_data["runtime"]
    rider = Chat(fake, RIDER)
    await rider.agree()

    # An approved report, with payout details.
    first = reference_in(await rider.report(images.jpeg(images.picture(1)), description=FIRST))
    card = (await fake.wait_for_messages(MODERATOR_CHAT, 1))[0]
    fake.press_button(MOD, card, card.button("✅ 100"))
    await rider.next(2)  # verified, and asked for payout details
    await rider.give_payee(f"{NAME} {OLD_ACCOUNT}")

    # A second report the moderators asked about, and the rider answered.
    second = reference_in(await rider.report(images.jpeg(images.picture(2)), description=SECOND))
    card = (await fake.wait_for_messages(MODERATOR_CHAT, 2))[1]
    assert second in card.text
    fake.press_button(MOD, card, card.button("补充信息"))
    prompt = (await fake.wait_for_messages(MODERATOR_CHAT, 3))[2]
    fake.send_message_fields(
        MOD, chat_id=MODERATOR_CHAT, text=QUESTION, reply_to_message=prompt.raw
    )
    await rider.one()
    rider.text(ANSWER)
    await rider.one()

    # The first report is paid in an exported batch; then the rider gives new details.
    fake.send_text(BOSS, "/payout")
    await fake.wait_for_messages(ADMIN, 2)  # the payout files
    await told(fake, rider, "💰")
    rider.text("/payee")
    await told(fake, rider, "第1步")
    rider.text(NAME)
    await told(fake, rider, "第2步")
    rider.text(NEW_ACCOUNT)
    rider.press(await told(fake, rider, "请核对"), "✅")
    await told(fake, rider, "收款信息已保存：王** · wxi")
    await runtime.outbox.send(Notice(RIDER.id, VERBATIM, {"text": WAITING}))

    values = await every_value(bot)
    for needle in (*ERASED, NAME, OLD_ACCOUNT):  # the search finds them before /delete
        assert any(contains(value, needle) for _, _, value in values), needle
    assert any(value == RIDER.id for _, _, value in values)
    if runtime.db.engine == "sqlite":
        assert all(needle.encode() in raw_bytes(bot) for needle in ERASED)

    rider.text("/delete")
    confirm = await told(fake, rider, "确定要删除")
    assert "已经发给财务的发放文件" in confirm.text
    assert "14天" in confirm.text
    rider.press(confirm, "确认删除")
    await told(fake, rider, "已删除你的个人数据和照片")

    # Only the exported batch (its lines and its files) still names the rider.
    for table, column, value in await every_value(bot):
        for needle in ERASED:
            assert not contains(value, needle), (table, column, needle)
        for needle in (NAME, OLD_ACCOUNT, str(RIDER.id)):
            if contains(value, needle):
                assert (table, column) in {
                    ("payout_lines", "payee_name"),
                    ("payout_lines", "payee_account"),
                    ("payout_batches", "file_xlsx"),
                    ("payout_batches", "file_csv"),
                }, (table, column, needle)
        assert value != RIDER.id, (table, column)
    references = {row[0] for row in await runtime.db.fetchall("SELECT reference FROM reports")}
    assert references == {first, second}
    (user,) = await runtime.db.fetchall("SELECT telegram_id, erased_at FROM users")
    assert user["telegram_id"] is None
    assert user["erased_at"] is not None

    # Nor do the erased words linger in free pages or the write-ahead log (SQLite's file).
    if runtime.db.engine == "sqlite":
        await runtime.db.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = raw_bytes(bot)
        for needle in ERASED:
            assert needle.encode() not in raw, needle

    before = len(fake.sent_to(ADMIN))
    fake.send_text(BOSS, "/audit")
    verdicts = ("✅ The accounts", "❗")

    def audits() -> list[str]:
        return [m.text for m in fake.sent_to(ADMIN)[before:] if m.text.startswith(verdicts)]

    await fake.wait_for(lambda: bool(audits()))
    assert audits() == ["✅ The accounts balance (OK)."]


async def test_privacy_notice_says_what_stays_and_how_long_backups_keep_data(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(952, language_code="en"))
    rider.text("/privacy")
    notice = (await rider.one()).text
    assert "payout files already sent to finance" in notice
    assert "each backup is deleted after 14 days" in notice
    rider.text("/delete")
    confirm = (await rider.one()).text
    assert "payout files already sent to finance" in confirm
    assert "without your name" in confirm
    assert "within 14 days" in confirm


async def test_delete_reaches_cases_places_and_unconfirmed_payout_details(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    """The tables that came after /delete was written: a case the rider said was not fixed
    (with a photo), payout details typed but not confirmed, the rider's place for "near me"."""
    bot = await cases.start(start_bot)
    runtime = bot.app.bot_data["runtime"]
    _reference, card = await cases.approved_case(fake)
    await cases.press(bot, fake, cases.ROADS, card, "接单")
    await cases.press(bot, fake, cases.ROADS, card, "已修好")
    await cases.press(bot, fake, cases.ROADS, card, "无照片")
    asked = await cases.rider_message(fake, "真的修好了吗")
    await cases.press(bot, fake, cases.RIDER, asked, "不满意")
    await cases.reply(bot, fake, cases.RIDER, cases.RIDER.id, photo=True)
    rider = Chat(fake, cases.RIDER)
    rider.seen = len(fake.sent_to(cases.RIDER.id))
    rider.text("/payee")
    await told(fake, rider, "第1步")
    rider.text(NAME)
    await told(fake, rider, "第2步")
    rider.text(NEW_ACCOUNT)
    await told(fake, rider, "请核对")  # and never confirmed
    await runtime.places.ask_location(cases.RIDER.id)
    assert await runtime.places.answers_ask(cases.RIDER.id, 39.9090, 116.3990)
    rider.text(f"/ask {ASKED}")
    await told(fake, rider, "✅ 你的问题")

    values = await every_value(bot)
    assert any(value == cases.RIDER.id for _, _, value in values)
    assert any(contains(value, NEW_ACCOUNT) for _, _, value in values)
    assert any(contains(value, ASKED) for _, _, value in values)

    rider.text("/delete")
    rider.press(await told(fake, rider, "确定要删除"), "确认删除")
    await told(fake, rider, "已删除你的个人数据和照片")
    await bot.settled(fake)

    for table, column, value in await every_value(bot):
        assert value != cases.RIDER.id, (table, column)
        assert not contains(value, str(cases.RIDER.id)), (table, column)
        for needle in (NAME, NEW_ACCOUNT, ASKED):
            assert not contains(value, needle), (table, column, needle)
    kinds = [row[0] for row in await runtime.db.fetchall("SELECT kind FROM case_photos")]
    assert "rider" not in kinds  # the rider's photo of the unfixed hazard
    assert await runtime.db.fetchall("SELECT * FROM rider_locations") == []
    # The case itself goes on: the department still has a hazard to fix.
    (state,) = await runtime.db.fetchone("SELECT state FROM cases")
    assert state == "reopened"
