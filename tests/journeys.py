"""The seven journeys of a new user (bench/journeys.py prints them; tests/test_journeys.py
holds their counts), as transcripts with their counts.

Each person does what a newcomer would (a Chinese rider, an English rider, a moderator,
department staff, merchant staff, the admin paying out, the county office exporting); the
transcript shows each of their actions (👤) and what the bot sent them (🤖 a new message,
✎ an edited one). The counts per journey are what the closing notes of issue 21 quote: the
person's actions (messages sent and buttons tapped) and the bot's new messages and edits.

"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from settings import Department
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import BEIJING

ROADS_CHAT = -300
DEPARTMENTS = (
    Department("roads", "公路段", "Roads office", ROADS_CHAT, ("road_hazard", "public_facility")),
)
ZH_RIDER = TgUser(801, first_name="小王", language_code="zh-hans")
EN_RIDER = TgUser(802, first_name="Sam", language_code="en")
MOD = TgUser(MODERATOR, first_name="老王", username="laowang")
BOSS = TgUser(ADMIN, first_name="县总工会", language_code="zh-hans")
STAFF = TgUser(811, first_name="李", last_name="明", username="liming")
CLERK = TgUser(821, first_name="好味店员")
LINK = re.compile(r"https://t\.me/\w+\?start=(i[A-Za-z0-9_-]+)")
CODE = re.compile(r"[A-Z0-9]{8}")
# A station and a merchant near BEIJING, open around the clock: a journey at any hour.
PLACES = (
    "kind,name,address,town,lat,lon,coords,hours,amenities,benefit,prices,phone\n"
    "station,城关服务驿站,人民路1号,城关镇,39.9087,116.3975,wgs84,24h,座椅、热水,,,\n"
    "merchant,好味快餐,人民路8号,城关镇,39.9095,116.3990,wgs84,24h,热水,持卡九折,矿泉水=5,\n"
).encode()


@dataclass
class Journey:
    title: str
    lines: list[str] = field(default_factory=list)
    actions: int = 0
    messages: int = 0
    edits: int = 0

    def counts(self) -> str:
        return f"{self.actions} actions, {self.messages} messages, {self.edits} edits"


class Person:
    """Someone talking to the bot in `chat` (their private chat unless given), writing what
    they do and what they get into a journey."""

    def __init__(
        self, fake: FakeTelegram, bot: RunningBot, user: TgUser, chat: int | None = None
    ) -> None:
        self.fake, self.bot, self.user = fake, bot, user
        self.chat = user.id if chat is None else chat
        self.journey = Journey("")
        self._seen = len(fake.sent_to(self.chat))
        self._edits = {m.message_id: m.edits for m in fake.sent_to(self.chat)}

    def begin(self, journey: Journey) -> None:
        self.journey = journey
        self.take_in(record=False)

    def take_in(self, record: bool = True) -> list[SentMessage]:
        """What the bot sent or changed in this chat since last time."""
        sent = self.fake.sent_to(self.chat)
        new = sent[self._seen :]
        self._seen = len(sent)
        for message in sent:
            before = self._edits.get(message.message_id)
            if before is not None and message.edits > before and record:
                self.journey.edits += 1
                self.journey.lines.append(f"   ✎ {_first_line(message)}")
            self._edits[message.message_id] = message.edits
        if record:
            for message in new:
                self.journey.messages += 1
                self.journey.lines.append(f"   🤖 {_first_line(message)}")
        return new

    async def act(self, what: str, do: Callable[[], object]) -> list[SentMessage]:
        self.journey.actions += 1
        self.journey.lines.append(f"👤 {what}")
        do()
        await self.bot.settled(self.fake)
        await asyncio.sleep(0.05)
        await self.bot.settled(self.fake)
        return self.take_in()

    async def says(self, text: str) -> list[SentMessage]:
        return await self.act(f"writes “{text}”", lambda: self.fake.send_text(self.user, text))

    async def taps(self, message: SentMessage, label: str) -> list[SentMessage]:
        data = message.button(label)
        shown = next(text for text, value in message.buttons() if value == data)
        return await self.act(
            f"taps [{shown}]", lambda: self.fake.press_button(self.user, message, data)
        )

    async def waits(self) -> list[SentMessage]:
        """What arrives without an action of theirs (someone else acted)."""
        await self.bot.settled(self.fake)
        return self.take_in()

    async def find(self, has: str = "") -> SentMessage:
        """The latest message in this chat whose text or a button has `has`, waiting for it:
        cards come from their own sender, on its own time."""

        def matching() -> list[SentMessage]:
            return [
                m
                for m in self.fake.sent_to(self.chat)
                if has in m.text or any(has in text for text, _ in m.buttons())
            ]

        await self.fake.wait_for(lambda: bool(matching()), timeout=30)
        await self.waits()
        return matching()[-1]


def _first_line(message: SentMessage) -> str:
    kind = "" if message.kind == "text" else f"[{message.kind}] "
    text = message.text.split("\n", 1)[0]
    return kind + (text[:70] + "…" if len(text) > 70 else text)


async def rider_reports(
    rider: Person, journey: Journey, category: str, caption: str, seed: int
) -> None:
    rider.begin(journey)
    await rider.says("/start")
    await rider.taps(await rider.find("✅"), "✅")
    await rider.act(
        "sends a photo" + (f" captioned “{caption}”" if caption else ""),
        lambda: rider.fake.send_photo(
            rider.user, images.jpeg(images.picture(seed)), caption=caption or None
        ),
    )
    await rider.act("shares the location", lambda: rider.fake.send_location(rider.user, *BEIJING))
    categories = await rider.find(category)
    await rider.taps(categories, category)
    if not caption:
        await rider.taps(categories, "跳过" if category == "道路隐患" else "Skip")
    await rider.taps(categories, "提交" if category == "道路隐患" else "Submit")


async def joins(admin: Person, newcomer: Person, journey: Journey, command: str) -> None:
    """The admin makes an invitation link; the newcomer taps it (their journey)."""
    await admin.says(command)
    payload = LINK.search((await admin.find("邀请")).text)
    assert payload is not None
    newcomer.begin(journey)
    await newcomer.says(f"/start {payload[1]}")


async def journeys(fake: FakeTelegram, bot: RunningBot) -> list[Journey]:
    runtime = bot.app.bot_data["runtime"]
    done: list[Journey] = []
    await runtime.places.import_file(PLACES, "places.csv", ADMIN)  # open at any hour

    # 1. A Chinese rider: a report, the decision, the payout details.
    zh = Person(fake, bot, ZH_RIDER)
    rider_zh = Journey("rider (zh): /start, report, verified, payout details")
    await rider_reports(zh, rider_zh, "道路隐患", "", seed=1)
    moderator_journey = Journey("moderator: a card in the group, approve")
    moderators = Person(fake, bot, MOD, MODERATOR_CHAT)
    moderators.begin(moderator_journey)
    await moderators.waits()
    card = await moderators.find("✅ 50")
    await moderators.taps(card, "✅ 50")
    await zh.waits()
    await zh.taps(await zh.find("✍️"), "✍️")
    await zh.says("王小明")
    await zh.says("13812348000")
    await zh.taps(await zh.find("✅"), "✅")
    done.append(rider_zh)

    # 2. An English rider, who writes the description in the caption; then "near me".
    en = Person(fake, bot, EN_RIDER)
    rider_en = Journey("rider (en): report with a caption, then near me")
    await rider_reports(en, rider_en, "Road hazard", "Manhole cover missing", seed=2)
    await en.says("/nearby")  # the location shared for the report is seconds old: used
    done.append(rider_en)

    # 3. The moderator, privately: /queue, approve the English rider's report.
    private = Person(fake, bot, MOD)
    private.begin(moderator_journey)
    await private.says("/queue")
    await private.taps(await private.find("✅ 50"), "✅ 50")
    done.append(moderator_journey)

    # 4. Department staff: joined by the admin's link, accept and fix the case.
    boss = Person(fake, bot, BOSS)
    boss.begin(Journey(""))
    staff_journey = Journey("department staff: join by link, accept, fixed with a photo")
    await joins(boss, Person(fake, bot, STAFF), staff_journey, "/staff invite roads")
    office = Person(fake, bot, STAFF, ROADS_CHAT)
    office.begin(staff_journey)
    case = await office.find("接单")
    await office.taps(case, "接单")
    await office.taps(case, "已修好")
    prompt = await office.find("照片")
    await office.act(
        "replies with a photo of the fix",
        lambda: fake.send_photo(
            STAFF,
            images.jpeg(images.picture(9)),
            chat_id=ROADS_CHAT,
            reply_to_message_id=prompt.message_id,
        ),
    )
    done.append(staff_journey)

    # 5. Merchant staff: joined by link, redeem a rider's points code.
    merchant_journey = Journey("merchant staff: join by link, redeem a rider's code")
    clerk = Person(fake, bot, CLERK)
    await joins(boss, clerk, merchant_journey, "/merchants invite 好味快餐")
    zh.begin(Journey(""))
    await zh.says("/points")
    await zh.taps(await zh.find("矿泉水"), "矿泉水")
    code = CODE.search((await zh.find("兑换码")).text)
    assert code is not None
    await clerk.says(f"/redeem {code[0]}")
    await clerk.taps(await clerk.find("确认兑换"), "确认兑换")
    done.append(merchant_journey)

    # 6. The admin's payout: the batch, its file, marked paid.
    payout = Journey("admin: payout batch, file, marked paid")
    boss.begin(payout)
    await boss.says("/payout")
    await boss.taps(await boss.find("标记为已发放"), "标记为已发放")
    done.append(payout)

    # 7. The county office's export.
    export = Journey("county office: this month's register")
    boss.begin(export)
    await boss.says("/export")
    done.append(export)
    return done
