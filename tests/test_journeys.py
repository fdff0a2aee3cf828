"""The seven journeys a newcomer makes (tests/journeys.py) take no more actions and bring no
more messages than they do now; bench/journeys.py prints their transcripts."""

from __future__ import annotations

from settings import Programme
from tests.conftest import BotStarter
from tests.fakegram import FakeTelegram
from tests.journeys import DEPARTMENTS, journeys

# (actions, new messages) of each journey: what issue 21's closing note quotes as "after".
MOST = {
    "rider (zh)": (11, 12),
    "rider (en)": (7, 7),
    "moderator": (3, 2),
    "department staff": (4, 3),
    "merchant staff": (3, 3),
    "admin": (2, 2),
    "county office": (1, 3),
}


async def test_each_journey_takes_no_more_than_it_does_now(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(programme=Programme(departments=DEPARTMENTS))
    found = {journey.title.split(":")[0]: journey for journey in await journeys(fake, bot)}
    assert set(found) == set(MOST)
    for title, (actions, messages) in MOST.items():
        journey = found[title]
        assert journey.actions <= actions, (title, journey.lines)
        assert journey.messages <= messages, (title, journey.lines)
    # Nobody is asked for a numeric id, and the report's steps are one message that changes.
    assert not any("numeric id" in line for journey in found.values() for line in journey.lines)
    assert found["rider (en)"].edits >= 2
