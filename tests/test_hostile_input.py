"""Hostile input, proven: thousands of generated updates through the real Application.

Random mixes of message kinds, missing optional fields, strings of 0-10,000 characters with
control characters, RTL marks and emoji, unknown commands, forged callback data, presses on
messages the bot never sent, chats and users it has never seen. Among them, real money moves:
a rider submits a report before each example, and the example's updates may approve it at
any tier (or confirm, reject, ask), run /payout and press "mark paid", from the moderator,
the admin or a stranger. No handler may raise, the bot keeps answering /start, and the
audit over the growing ledger stays clean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.callbacks import Verb
from services.audit import audit
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

EXAMPLES = 60
UPDATES_PER_EXAMPLE = (40, 80)
PROBE = TgUser(123_456, first_name="Probe", language_code="en")
MOD = TgUser(MODERATOR)
BOSS = TgUser(ADMIN)
REPORTS_SO_FAR: list[int] = [0]
SENT_SO_FAR: list[int] = [0]
BOT_REQUESTS: list[int] = [0]

nasty_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u200f", "\u202e", "\u0000", "\n", "\t", "<", "&", "*", "_", "`", "🚧"]),
    ),
    max_size=10_000,
)
users = st.builds(
    TgUser,
    id=st.integers(1, 2**40),
    first_name=st.text(min_size=1, max_size=64),
    language_code=st.one_of(st.none(), st.sampled_from(["zh-hans", "zh", "en", "ru", "xx", ""])),
    username=st.one_of(st.none(), st.text(max_size=32)),
)
pictures = st.sampled_from(
    [images.jpeg(images.picture(seed)) for seed in range(3)]
    + [images.png(), images.webp(), images.gif(), images.truncated_jpeg(), images.text_file()]
)
callback_data = st.one_of(
    st.binary(max_size=64).map(lambda raw: raw.decode("utf-8", "ignore")[:64]),
    st.builds(
        lambda verb, report, arg: f"{verb}{report}{arg}"[:64],
        st.sampled_from([f"{name}:" for name in Verb.known]),
        st.one_of(st.integers(-5, 50).map(str), st.text(max_size=10)),
        st.one_of(st.just(""), st.integers(-1, 30000).map(lambda n: f":{n}"), st.text(max_size=20)),
    ),
)

Action = Callable[[FakeTelegram], Any]


def press_real_button(user: TgUser, chat_id: int, label: str) -> Action:
    """Press the button labelled `label` on the latest message in `chat_id` that has one."""

    def press(fake: FakeTelegram) -> None:
        for message in reversed(fake.sent_to(chat_id)):
            if any(label in text for text, _ in message.buttons()):
                fake.press_button(user, message, message.button(label))
                return

    return press


money_moves = st.one_of(
    st.builds(
        press_real_button,
        st.sampled_from([MOD, MOD, BOSS, PROBE]),
        st.just(MODERATOR_CHAT),
        st.sampled_from(["✅ 50", "✅ 100", "✅ 150", "✅ 200", "确认奖励", "驳回", "补充信息"]),
    ),
    st.builds(press_real_button, st.sampled_from([BOSS, PROBE]), st.just(ADMIN), st.just("已发放")),
    st.just(lambda fake: fake.send_text(BOSS, "/payout")),
)


def text_action(user: TgUser, text: str, group: bool) -> Action:
    return lambda fake: fake.send_text(user, text, chat_id=-42 if group else None)


def command_action(user: TgUser, command: str, args: str) -> Action:
    return lambda fake: fake.send_text(user, f"/{command} {args}".strip())


actions = st.one_of(
    money_moves,
    st.builds(text_action, users, nasty_text, st.booleans()),
    st.builds(
        command_action,
        users,
        st.sampled_from(
            [
                "start",
                "help",
                "report",
                "my",
                "cancel",
                "privacy",
                "delete",
                "language",
                "queue",
                "mods",
                "stats",
                "nonsense",
                "START",
            ]
        ),
        st.text(max_size=40),
    ),
    st.builds(lambda u, data: lambda fake: fake.send_photo(u, data), users, pictures),
    st.builds(
        lambda u, data, mime: lambda fake: fake.send_document(u, data, mime_type=mime),
        users,
        pictures,
        st.sampled_from(["image/jpeg", "application/pdf", "video/mp4", "image/gif", ""]),
    ),
    st.builds(
        lambda u, lat, lon: lambda fake: fake.send_location(u, lat, lon),
        users,
        st.floats(-90, 90),
        st.floats(-180, 180),
    ),
    st.builds(
        lambda u, phone: lambda fake: fake.send_contact(u, phone),
        users,
        st.text(max_size=20),
    ),
    st.builds(
        lambda u, fields: lambda fake: fake.send_message_fields(u, **fields),
        users,
        st.sampled_from(
            [
                {
                    "sticker": {
                        "file_id": "S",
                        "file_unique_id": "SU",
                        "width": 1,
                        "height": 1,
                        "is_animated": False,
                        "is_video": False,
                        "type": "regular",
                    }
                },
                {
                    "video": {
                        "file_id": "V",
                        "file_unique_id": "VU",
                        "width": 1,
                        "height": 1,
                        "duration": 1,
                    }
                },
                {"dice": {"emoji": "🎲", "value": 3}},
                {},
            ]
        ),
    ),
    st.builds(
        lambda u, message_id, data, in_group: (
            lambda fake: fake.press_button(
                u, message_id, data, chat_id=MODERATOR_CHAT if in_group else None
            )
        ),
        st.one_of(users, st.just(TgUser(MODERATOR))),
        st.integers(1, 10**6),
        callback_data,
        st.booleans(),
    ),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(actions, min_size=UPDATES_PER_EXAMPLE[0], max_size=UPDATES_PER_EXAMPLE[1]))
async def test_generated_updates_never_break_the_bot(
    bot: RunningBot, fake: FakeTelegram, batch: list[Action]
) -> None:
    # A new honest rider every few examples keeps under the daily report cap.
    rider = TgUser(123_457 + REPORTS_SO_FAR[0] // 5, first_name="Honest", language_code="zh-hans")
    honest = Chat(fake, rider)
    if not fake.sent_to(rider.id):
        await honest.agree()
    await bot.settled(fake)
    honest.seen = len(fake.sent_to(rider.id))
    # A real report (a photo of its own) for this example's moderators to decide.
    await honest.report(images.jpeg(images.picture(1000 + REPORTS_SO_FAR[0])))
    REPORTS_SO_FAR[0] += 1
    await bot.settled(fake)
    with fake.held_updates():
        for action in batch:
            action(fake)
    SENT_SO_FAR[0] += len(batch)
    await bot.settled(fake)
    assert bot.errors == [], bot.errors[:3]
    before = len(fake.sent_to(PROBE.id))
    fake.send_text(PROBE, "/start")
    await fake.wait_for_messages(PROBE.id, before + 1)
    assert await audit(bot.app.bot_data["runtime"].db) == []
    BOT_REQUESTS[0] = len(fake.bot_calls())


def test_how_many_updates_were_generated() -> None:
    """Runs after the property test (file order) and records the count in the output."""
    print(
        f"hostile input: {SENT_SO_FAR[0]} generated updates, {BOT_REQUESTS[0]} bot requests, "
        f"{REPORTS_SO_FAR[0]} real reports"
    )
