"""How fast do review cards reach the moderators?

1. Latency: riders submit reports one at a time with the stand-in's caps off; prints the
   median and 90th percentile of seconds from the Submit press to the card's arrival.
2. A storm: N reports (default 60) submitted at the same moment, with the stand-in
   enforcing Telegram's 20 messages a minute into the group; prints how long until the
   last card arrived versus the ideal N/20 minutes, whether all arrived once and in order,
   and how many 429s the stand-in answered.

The bot runs as a real `python bot.py` child process.

    .venv/bin/python -m bench.cards [N]
    .venv/bin/python -m bench.cards --cases [N]

With --cases (即时办), three departments are configured and the figures are for
case cards: approve press -> case card in the department group (median, caps off), and N
approvals at once reaching 3 department groups with each group capped at 20 a minute
(ideal: N/3 cards per group at 20 a minute, the groups in parallel).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.process import start_bot as start_bot_process
from tests import images
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import BEIJING, Chat, reference_in

GROUP = -100200300
MODERATOR = 4242
LATENCY_SAMPLES = 20
# Our own limiter spaces messages into a group 3 s apart (20 a minute); samples further apart
# than that measure the bot, not the pacing.
SAMPLE_SPACING_SECONDS = 3.5


DEPARTMENT_GROUPS = (-100301, -100302, -100303)
CASE_CATEGORIES = ("Road hazard", "Damaged public facility", "Environment and sanitation")
DEPARTMENTS_TOML = "".join(
    f"""
[[departments]]
key = "d{index}"
zh = "部门{index}"
en = "Department {index}"
chat_id = {chat}
categories = ["{key}"]
"""
    for index, (chat, key) in enumerate(
        zip(DEPARTMENT_GROUPS, ("road_hazard", "public_facility", "sanitation"), strict=True)
    )
)


async def start_bot(
    fake: FakeTelegram, workdir: Path, name: str, extra_config: str = ""
) -> asyncio.subprocess.Process:
    config = workdir / "config.toml"
    config.write_text("[reports]\ndaily_cap = 100000\n" + extra_config, encoding="utf-8")
    return await start_bot_process(
        fake,
        workdir,
        f"sqlite:///{workdir / (name + '.db')}",
        poll_within=60,
        MODERATOR_CHAT_ID=str(GROUP),
        MODERATOR_IDS=str(MODERATOR),
        CONFIG_FILE=str(config),
    )


async def ready_to_submit(chat: Chat, seed: int, category: str = "Road hazard") -> SentMessage:
    """Agree, photo, location, category, skip: returns the summary with its Submit button."""
    await chat.agree()
    chat.photo(images.jpeg(images.picture(seed)))
    await chat.one()
    chat.location(*BEIJING)
    return await chat.categorise(await chat.one(), category)


async def card_arrival(fake: FakeTelegram, count: int) -> float:
    await fake.wait_for_messages(GROUP, count, timeout=900)
    return time.perf_counter()


async def latency(workdir: Path) -> list[float]:
    async with FakeTelegram() as fake:
        process = await start_bot(fake, workdir, "latency")
        try:
            seconds = []
            for index in range(LATENCY_SAMPLES):
                chat = Chat(fake, TgUser(10_000 + index, language_code="en"))
                summary = await ready_to_submit(chat, index)
                pressed = time.perf_counter()
                chat.press(summary, "Submit")
                seconds.append(await card_arrival(fake, index + 1) - pressed)
                await asyncio.sleep(SAMPLE_SPACING_SECONDS)
            return seconds
        finally:
            process.terminate()
            await process.wait()


async def storm(workdir: Path, count: int) -> tuple[float, bool, int]:
    async with FakeTelegram() as fake:
        process = await start_bot(fake, workdir, "storm")
        try:
            chats = [Chat(fake, TgUser(20_000 + i, language_code="en")) for i in range(count)]
            summaries = [await ready_to_submit(chat, 1000 + i) for i, chat in enumerate(chats)]
            fake.enforce_caps(per_second=30, per_group=20, group_window=60.0)
            started = time.perf_counter()
            with fake.held_updates():
                for chat, summary in zip(chats, summaries, strict=True):
                    chat.press(summary, "Submit")
            references = [reference_in(await chat.one()) for chat in chats]
            finished = await card_arrival(fake, count)
            await asyncio.sleep(2)
            cards = fake.sent_to(GROUP)
            shown = [card.text.split(" · ")[0].removeprefix("🆕 ") for card in cards]
            in_order = shown == sorted(references) and len(cards) == count
            return finished - started, in_order, fake.cap_rejections
        finally:
            process.terminate()
            await process.wait()


async def submitted_cards(fake: FakeTelegram, count: int, first_user: int) -> list[SentMessage]:
    """`count` riders submit (categories in turn); returns their review cards."""
    for index in range(count):
        chat = Chat(fake, TgUser(first_user + index, language_code="en"))
        category = CASE_CATEGORIES[index % len(CASE_CATEGORIES)]
        chat.press(await ready_to_submit(chat, first_user + index, category), "Submit")
        await chat.one()
    return await fake.wait_for_messages(GROUP, count, timeout=900)


def approve(fake: FakeTelegram, card: SentMessage) -> None:
    fake.press_button(TgUser(MODERATOR), card, card.button("✅ 50"))


def case_cards(fake: FakeTelegram) -> int:
    return sum(len(fake.sent_to(group)) for group in DEPARTMENT_GROUPS)


def at_least(fake: FakeTelegram, count: int) -> bool:
    return case_cards(fake) >= count


async def case_latency(workdir: Path) -> list[float]:
    async with FakeTelegram() as fake:
        process = await start_bot(fake, workdir, "case-latency", DEPARTMENTS_TOML)
        try:
            cards = await submitted_cards(fake, LATENCY_SAMPLES, 30_000)
            seconds = []
            for index, card in enumerate(cards):
                pressed = time.perf_counter()
                approve(fake, card)
                arrived = functools.partial(at_least, fake, index + 1)
                await fake.wait_for(arrived, timeout=60)
                seconds.append(time.perf_counter() - pressed)
                await asyncio.sleep(SAMPLE_SPACING_SECONDS)
            return seconds
        finally:
            process.terminate()
            await process.wait()


async def case_storm(workdir: Path, count: int) -> tuple[float, list[int], int]:
    async with FakeTelegram() as fake:
        process = await start_bot(fake, workdir, "case-storm", DEPARTMENTS_TOML)
        try:
            cards = await submitted_cards(fake, count, 40_000)
            fake.enforce_caps(per_second=30, per_group=20, group_window=60.0)
            started = time.perf_counter()
            with fake.held_updates():
                for card in cards:
                    approve(fake, card)
            await fake.wait_for(lambda: case_cards(fake) >= count, timeout=900)
            finished = time.perf_counter()
            await asyncio.sleep(2)
            per_group = [len(fake.sent_to(group)) for group in DEPARTMENT_GROUPS]
            return finished - started, per_group, fake.cap_rejections
        finally:
            process.terminate()
            await process.wait()


async def main_cases(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        samples = await case_latency(workdir)
        seconds, per_group, rejections = await case_storm(workdir, count)
    deciles = statistics.quantiles(samples, n=10)
    print(f"Approve -> case card, {LATENCY_SAMPLES} approvals one at a time, caps off:")
    print(f"  median {statistics.median(samples):.3f} s, 90th percentile {deciles[-1]:.3f} s")
    per = max(per_group)
    # 20 a minute per group, paced evenly (3 s apart), the groups in parallel.
    ideal = (per - 1) * 3.0
    print(f"{count} approvals at once, 3 department groups, each capped at 20 a minute:")
    print(
        f"  last case card after {seconds:.1f} s (ideal {ideal:.0f} s: {per} per group); "
        f"cards per group {per_group}; 429s: {rejections}"
    )


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        samples = await latency(workdir)
        seconds, in_order, rejections = await storm(workdir, count)
    deciles = statistics.quantiles(samples, n=10)
    print(f"Submit -> card, {LATENCY_SAMPLES} reports one at a time, caps off:")
    print(f"  median {statistics.median(samples):.3f} s, 90th percentile {deciles[-1]:.3f} s")
    print(f"{count} reports submitted at once, stand-in enforcing 20 a minute into the group:")
    print(
        f"  last card after {seconds:.1f} s (ideal {count / 20 * 60:.0f} s); "
        f"all once and in order: {in_order}; 429s: {rejections}"
    )


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--cases"]
    number = int(arguments[0]) if arguments else 60
    asyncio.run(main_cases(number) if "--cases" in sys.argv else main(number))
