"""Nobody types numeric ids: an admin's one-time link makes whoever taps it a moderator, a
department's staff or a merchant's staff; the admin is told who joined."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from settings import Programme
from tests.conftest import ADMIN, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat
from tests.test_cases import DEPARTMENTS
from tests.test_places import MERCHANT, STATION_24H, admin_chat, csv_file, load_places

BOSS = TgUser(ADMIN, first_name="Boss", language_code="zh-hans")
NEWCOMER = TgUser(4401, first_name="李", last_name="明", username="liming", language_code="zh-hans")
LATE = TgUser(4402, first_name="晚到", language_code="zh-hans")
LINK = re.compile(r"https://t\.me/\w+\?start=(i[A-Za-z0-9_-]+)")


async def invite(fake: FakeTelegram, command: str) -> str:
    """The admin's command; the link's payload."""
    boss = Chat(fake, BOSS)
    boss.seen = len(fake.sent_to(ADMIN))
    boss.text(command)
    made = await boss.one()
    found = LINK.search(made.text)
    assert found is not None, made.text
    assert "7天内有效，只能用一次" in made.text
    return found[1]


async def tap(fake: FakeTelegram, user: TgUser, payload: str) -> str:
    chat = Chat(fake, user)
    chat.seen = len(fake.sent_to(user.id))
    chat.text(f"/start {payload}")
    return (await chat.one()).text


async def test_a_department_invitation_makes_staff_once_and_tells_the_admin(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(programme=Programme(departments=DEPARTMENTS))
    cases = bot.app.bot_data["runtime"].cases
    payload = await invite(fake, "/staff invite roads")
    assert (await tap(fake, NEWCOMER, payload)).startswith("欢迎！你已加入公路段")
    assert await cases.departments_of(NEWCOMER.id) == ["roads"]
    await fake.wait_for(lambda: any("已通过邀请链接" in m.text for m in fake.sent_to(ADMIN)))
    told = next(m.text for m in fake.sent_to(ADMIN) if "已通过邀请链接" in m.text)
    assert told == "✅ 李 明 @liming（4401）已通过邀请链接成为公路段的部门人员。"
    fake.send_text(TgUser(ADMIN), "/staff")
    await fake.wait_for(lambda: "李 明 @liming (4401)" in fake.sent_to(ADMIN)[-1].text)
    # The same link again (forwarded on, or tapped twice) grants nothing.
    assert "已经用过了" in await tap(fake, LATE, payload)
    assert await cases.departments_of(LATE.id) == []
    assert "已经用过了" in await tap(fake, NEWCOMER, payload)
    # A forged one, and one that expired.
    assert "无效" in await tap(fake, LATE, payload[:-3] + "abc")
    assert "无效" in await tap(fake, LATE, "iAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    later = await invite(fake, "/staff invite power")
    moved = datetime.now(UTC) + timedelta(days=8)
    bot.app.bot_data["runtime"].clock.source = lambda: moved
    assert "过期" in await tap(fake, LATE, later)
    assert await cases.departments_of(LATE.id) == []
    await bot.settled(fake)


async def test_a_moderator_invitation_and_the_new_moderators_menu(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    payload = await invite(fake, "/mods invite")
    assert (await tap(fake, NEWCOMER, payload)).startswith("欢迎！你已成为审核员")
    assert await bot.app.bot_data["runtime"].moderation.is_moderator(NEWCOMER.id)
    await fake.wait_for(
        lambda: any(
            (c.params.get("scope") or {}).get("chat_id") == NEWCOMER.id
            and "queue" in [x["command"] for x in c.params["commands"]]
            for c in fake.calls_to("setMyCommands")
        )
    )


async def test_a_merchant_invitation_makes_its_staff(bot: RunningBot, fake: FakeTelegram) -> None:
    await load_places(fake, csv_file(STATION_24H, MERCHANT))
    admin_chat(fake).seen = len(fake.sent_to(ADMIN))
    payload = await invite(fake, "/merchants invite 好味快餐")
    assert "好味快餐" in await tap(fake, NEWCOMER, payload)
    assert await bot.app.bot_data["runtime"].places.staff_merchant(NEWCOMER.id) == "好味快餐"
    await bot.settled(fake)  # the admin has been told who joined
    boss = Chat(fake, BOSS)
    boss.seen = len(fake.sent_to(ADMIN))
    boss.text("/merchants invite 没有这家")
    assert "没有这家" in (await boss.one()).text
