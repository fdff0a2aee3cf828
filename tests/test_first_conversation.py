"""End to end through the stand-in: /start, /help, /language, resilience to Telegram's faults."""

from __future__ import annotations

from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser

ZH = TgUser(101, first_name="小王", language_code="zh-hans")
EN = TgUser(102, first_name="Sam", language_code="en")


async def test_chinese_user_gets_chinese(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.send_text(ZH, "/start")
    fake.send_text(ZH, "/help")
    greeting, help_text = await fake.wait_for_messages(ZH.id, 2)
    assert greeting.text.startswith("小王，你好")
    assert "随手拍" in greeting.text
    assert "/help - 帮助与命令列表" in help_text.text
    assert "/language - 切换语言" in help_text.text


async def test_english_user_gets_english(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.send_text(EN, "/start")
    fake.send_text(EN, "/help")
    greeting, help_text = await fake.wait_for_messages(EN.id, 2)
    assert greeting.text.startswith("Hi Sam!")
    assert "verified report earns a cash reward" in greeting.text
    assert "/language - Change language" in help_text.text


def menus_set(fake: FakeTelegram, chat_id: int | None) -> dict[str | None, list[str]]:
    """The commands set for a chat's scope (None: the default scope), by language code."""
    found: dict[str | None, list[str]] = {}
    for call in fake.calls_to("setMyCommands"):
        scope = call.params.get("scope")
        if (scope or {}).get("chat_id") == chat_id:
            found[call.params.get("language_code")] = [
                c["command"] for c in call.params["commands"]
            ]
    return found


async def test_command_menus_are_published_in_both_languages(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await fake.wait_for(lambda: len(menus_set(fake, ADMIN)) == 3)
    calls = [c for c in fake.calls_to("setMyCommands") if not c.params.get("scope")]
    menus = {c.params.get("language_code"): c.params["commands"] for c in calls}
    assert set(menus) == {None, "zh", "en"}
    assert menus[None] == menus["zh"]
    assert {"command": "help", "description": "Help and list of commands"} in menus["en"]
    assert {"command": "help", "description": "帮助与命令列表"} in menus["zh"]
    riders = [c["command"] for c in menus["zh"]]
    assert {"nearby", "card", "points"} <= set(riders)  # every rider command is in the menu
    assert not {"payout", "queue", "redeem"} & set(riders)  # no staff command in a rider's


async def test_each_role_has_its_own_menu_and_help(bot: RunningBot, fake: FakeTelegram) -> None:
    """Moderators' chat, a moderator's and an admin's private chats each get their menus;
    /help lists what that person can do in sections."""
    await fake.wait_for(lambda: len(menus_set(fake, ADMIN)) == len(menus_set(fake, MODERATOR)) == 3)
    assert menus_set(fake, MODERATOR_CHAT)[None] == ["cases", "stats", "map", "help"]
    moderator = menus_set(fake, MODERATOR)["zh"]
    assert moderator[:3] == ["report", "my", "balance"]  # a rider too
    assert {"queue", "stats", "map", "cases"} <= set(moderator)
    assert "payout" not in moderator
    admin = menus_set(fake, ADMIN)["en"]
    assert {"payout", "audit", "export", "staff", "supervise", "queue"} <= set(admin)
    boss = TgUser(ADMIN, first_name="Boss", language_code="en")
    fake.send_text(boss, "/help")
    (help_text,) = await fake.wait_for_messages(ADMIN, 1)
    assert "/nearby - Stations and merchants near me" in help_text.text
    assert "\nModerators:\n/queue - Review pending reports one by one" in help_text.text
    assert "\nAdmins:\n/payout - Pay out now" in help_text.text
    fake.send_text(EN, "/help")
    (rider_help,) = await fake.wait_for_messages(EN.id, 1)
    assert "/card - My member card" in rider_help.text
    assert "Admins:" not in rider_help.text
    assert "/queue" not in rider_help.text


async def test_a_role_given_or_taken_updates_that_persons_menu(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await fake.wait_for(lambda: len(menus_set(fake, ADMIN)) == 3)
    boss = TgUser(ADMIN, first_name="Boss", language_code="en")
    fake.send_text(boss, "/mods add 777")
    await fake.wait_for(lambda: "queue" in menus_set(fake, 777).get("zh", []))
    fake.send_text(boss, "/mods remove 777")
    await fake.wait_for(
        lambda: any(
            (c.params.get("scope") or {}).get("chat_id") == 777
            for c in fake.calls_to("deleteMyCommands")
        )
    )


def test_every_command_is_in_a_menu_for_its_audience() -> None:
    """The menus against the routing table: nothing missing, nothing offered to the wrong
    people."""
    from telegram.ext import CommandHandler

    from bot import handlers
    from handlers import menus as table
    from handlers.access import Audience
    from locales import Texts

    audience_of = {
        table.RIDER: {Audience.RIDERS, Audience.ANYONE},
        table.MERCHANT: {Audience.MERCHANTS, Audience.RIDERS},
        table.STAFF: {Audience.STAFF},
        table.MODERATOR: {Audience.MODERATORS, Audience.STAFF},
        table.ADMIN: {Audience.ADMINS},
    }
    routed: dict[str, set[Audience]] = {}
    for handler in handlers(Texts()):
        if isinstance(handler, CommandHandler):
            for command in handler.commands:
                routed.setdefault(command, set()).add(handler.callback.audience)  # type: ignore[attr-defined]
    listed = {name for names in table.MENUS.values() for name in names}
    assert set(routed) == listed
    for role, names in table.MENUS.items():
        for name in names:
            assert routed[name] & audience_of[role], (role, name, routed[name])


async def test_language_choice_overrides_telegram(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.send_text(ZH, "/language")
    (choice,) = await fake.wait_for_messages(ZH.id, 1)
    assert choice.text == "请选择语言："
    fake.press_button(ZH, choice, choice.button("English"))
    await fake.wait_for_messages(ZH.id, 2)
    assert fake.sent_to(ZH.id)[1].text == "Done: I will talk to you in English."
    fake.send_text(ZH, "/start")
    messages = await fake.wait_for_messages(ZH.id, 3)
    assert messages[2].text.startswith("Hi 小王!")


async def test_unknown_text_points_to_help(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.send_text(EN, "<b>hello</b> *there*")
    (answer,) = await fake.wait_for_messages(EN.id, 1)
    assert "/help" in answer.text


async def test_forged_or_stale_button_is_answered_as_expired(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    fake.press_button(EN, 12345, "lang:klingon")
    fake.press_button(EN, 12346, "x" * 64)
    await fake.wait_for(lambda: len(fake.callback_answers) == 2)
    assert fake.callback_answers[1]["text"] == "This button has expired."
    assert fake.sent_to(EN.id) == []


async def test_429_is_waited_out_and_answered_once(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=1)
    fake.send_text(EN, "/start")
    (greeting,) = await fake.wait_for_messages(EN.id, 1)
    assert greeting.text.startswith("Hi Sam!")
    statuses = [c.status for c in fake.calls_to("sendMessage")]
    assert statuses == [429, 200]


async def test_server_errors_are_retried(bot: RunningBot, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", status=500)
    fake.fail_next("sendMessage", status=502)
    fake.send_text(EN, "/start")
    await fake.wait_for_messages(EN.id, 1)
    await bot.settled(fake)
    assert len(fake.sent_to(EN.id)) == 1
    assert [c.status for c in fake.calls_to("sendMessage")] == [500, 502, 200]


async def test_a_failing_handler_tells_the_user(fake: FakeTelegram, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import settings_for

    running = RunningBot(settings_for(fake, tmp_path))
    await running.start()
    try:
        fake.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
        fake.send_text(EN, "/start")
        (apology,) = await fake.wait_for_messages(EN.id, 1)
        assert apology.text.startswith("Sorry, something went wrong.")
    finally:
        await running.stop()
    assert len(running.errors) == 1


async def test_crowd_at_telegrams_caps_is_answered_exactly_once(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    fake.enforce_caps(per_second=30, per_group=20)
    users = [TgUser(200_000 + i, language_code="zh-hans" if i % 2 else "en") for i in range(300)]
    with fake.held_updates():
        for user in users:
            fake.send_text(user, "/start")
    await fake.wait_for(lambda: all(fake.sent_to(u.id) for u in users), timeout=60)
    await bot.settled(fake)
    for user in users:
        (answer,) = fake.sent_to(user.id)
        assert answer.text.startswith(
            "Rider，你好" if user.language_code == "zh-hans" else "Hi Rider!"
        )


async def test_the_agree_button_goes_once_pressed(bot: RunningBot, fake: FakeTelegram) -> None:
    """Pressed once, the privacy notice's button is removed: nothing left to press twice."""
    fake.send_text(ZH, "/start")
    (notice,) = await fake.wait_for_messages(ZH.id, 1)
    assert [label for label, _ in notice.buttons()] == ["✅ 同意并开始", "📄 完整隐私说明"]
    fake.press_button(ZH, notice, notice.button("✅"))
    await fake.wait_for_messages(ZH.id, 2)
    await bot.settled(fake)
    assert notice.buttons() == []
