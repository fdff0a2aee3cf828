"""The seven journeys of a new user, as transcripts with their counts (tests/journeys.py):
a Chinese rider, an English rider, a moderator, department staff, merchant staff, the admin
paying out, the county office exporting. 👤 is what the person did (a message sent or a
button tapped), 🤖 a new message from the bot, ✎ a message of the bot's that changed.

The bot runs in this process against the stand-in (tests/fakegram), on SQLite.

    .venv/bin/python -m bench.journeys
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from settings import Programme
from tests.conftest import MODERATOR, RunningBot, settings_for
from tests.fakegram import FakeTelegram
from tests.journeys import DEPARTMENTS, journeys


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with FakeTelegram() as fake:
            settings = settings_for(
                fake,
                Path(folder),
                programme=Programme(departments=DEPARTMENTS),
                moderator_ids=frozenset({MODERATOR}),
            )
            bot = RunningBot(settings)
            await bot.start()
            try:
                found = await journeys(fake, bot)
            finally:
                await bot.stop()
    for journey in found:
        print(f"\n## {journey.title}: {journey.counts()}")
        print("\n".join(journey.lines))
    print("\nsummary:")
    for journey in found:
        print(f"  {journey.title:<60} {journey.counts()}")


if __name__ == "__main__":
    asyncio.run(main())
