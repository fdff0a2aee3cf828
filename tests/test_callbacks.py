"""Button data: one codec, 64 bytes checked when built, forged data read as nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.callbacks import MAX_BYTES, Verb, parse, pattern
from tests.conftest import ADMIN, MODERATOR, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

SAMPLE = Verb("t_sample")
OTHER = Verb("t_other")


def test_data_round_trips() -> None:
    pressed = parse(SAMPLE.data(42, "rr:blurry"))
    assert pressed is not None
    assert pressed.verb is SAMPLE
    assert pressed.item == 42
    assert pressed.argument == "rr:blurry"
    assert parse(OTHER.data(-1)) == type(pressed)(OTHER, -1, "")
    assert parse(SAMPLE.data(7, 5000)).number() == 5000  # type: ignore[union-attr]
    assert parse(SAMPLE.data(7, "³")).number() is None  # type: ignore[union-attr]


def test_data_over_64_bytes_fails_when_built() -> None:
    room = MAX_BYTES - len(SAMPLE.data(1, "")) - 1
    assert len(SAMPLE.data(1, "x" * room).encode()) == MAX_BYTES
    with pytest.raises(ValueError, match="64 bytes"):
        SAMPLE.data(1, "x" * (room + 1))
    with pytest.raises(ValueError, match="64 bytes"):
        SAMPLE.data(1, "字" * 20)  # 60 bytes of UTF-8, over with the prefix


@pytest.mark.parametrize(
    "forged",
    [
        None,
        "",
        "t_sample",
        "t_sample:",
        "t_sample:x",
        "nope:1",
        "T_SAMPLE:1",
        "t_sample:1" + "9" * 30,
    ],
)
def test_forged_or_stale_data_parses_to_nothing(forged: str | None) -> None:
    assert parse(forged) is None


def test_verbs_are_unique_and_well_formed() -> None:
    with pytest.raises(ValueError, match="twice"):
        Verb("t_sample")
    with pytest.raises(ValueError, match="a-z"):
        Verb("Bad-Verb")


def test_pattern_matches_its_verbs_only() -> None:
    matcher = pattern(SAMPLE)
    assert matcher.match(SAMPLE.data(3))
    assert not matcher.match(OTHER.data(3))
    assert not matcher.match("t_sample_more:3")


async def test_every_button_that_does_not_parse_is_answered_as_expired(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    """Data that matches a handler's verb but not the codec (forged, or from another build)
    is answered "button expired" by the handler's one preamble, and changes nothing."""
    rider = Chat(fake, TgUser(961, language_code="en"))
    await rider.agree()
    seen = len(fake.sent_to(rider.user.id))
    before = len(fake.callback_answers)
    riders = ["sub", "cat", "lang", "delete", "payok", "pitem", "pcancel", "nmore", "pprob"]
    for name in riders:
        fake.press_button(rider.user, 4242, f"{name}:1x")
    for name in ("ap", "rj"):
        fake.press_button(TgUser(MODERATOR, language_code="en"), 4243, f"{name}:1x")
    fake.press_button(TgUser(ADMIN, language_code="en"), 4244, "paid:1x")
    count = len(riders) + 3
    await fake.wait_for(lambda: len(fake.callback_answers) >= before + count)
    await bot.settled(fake)
    answers = [a.get("text") for a in fake.callback_answers[before:]]
    assert answers == ["This button has expired."] * count
    assert len(fake.sent_to(rider.user.id)) == seen


def test_only_the_decorator_reads_button_data() -> None:
    """Handlers take a parsed press from `@pressed`; none repeats the preamble."""
    handlers = Path(__file__).resolve().parent.parent / "handlers"
    readers = sorted(
        str(path.relative_to(handlers))
        for path in handlers.rglob("*.py")
        if "parse(query.data" in path.read_text()
        or "parse(update.callback_query" in path.read_text()
    )
    assert readers == ["callbacks.py"]
