"""Department performance (部门绩效) against a hand count: cases made and moved by the real
code (buttons for the approvals, the case service for the rest, the clock moved by hand),
then the figures, the register's sheet and /stats checked."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import openpyxl

from handlers import figures as figure_handlers
from services import exports
from services.cases import Action, Answer, Changed, Noted, State
from services.figures import month_period
from services.performance import performance
from tests.conftest import BotStarter, RunningBot
from tests.fakegram import FakeTelegram
from tests.riders import BEIJING, Chat
from tests.test_county_cases import (
    BOSS,
    COUNTY_ROADS_CHAT,
    COUNTY_STAFF,
    IN_HAOHUAHONG,
    MOD,
    RIDER,
    RIDER_2,
    RIDER_3,
    SHANGHAI,
    TOWN_OFFICE_CHAT,
    TOWN_STAFF,
    approved,
    at,
    start,
)

MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)


async def case_id(bot: RunningBot, reference: str) -> int:
    row = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT c.id FROM cases c JOIN reports r ON r.id = c.report_id WHERE r.reference = ?",
        (reference,),
    )
    assert row is not None
    return int(row[0])


async def test_performance_matches_a_hand_count(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start(start_bot, MONDAY)
    runtime = bot.app.bot_data["runtime"]
    cases = runtime.cases
    ref_a, _ = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    ref_b, _ = await approved(fake, RIDER_2, TOWN_OFFICE_CHAT, (39.91, 116.40), 2)
    ref_c, _ = await approved(fake, RIDER_3, COUNTY_ROADS_CHAT, IN_HAOHUAHONG, 3)
    a, b, c = [await case_id(bot, r) for r in (ref_a, ref_b, ref_c)]

    def when(hours: float) -> None:
        at(bot, MONDAY + timedelta(hours=hours))

    # A: accepted in an hour, fixed, the rider is not satisfied (返工), accepted an hour after
    # the reopening, fixed again, and satisfied.
    when(1)
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.ACCEPT, State.DISPATCHED), Changed)
    when(24)
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.FIXED, State.ACCEPTED), Changed)
    when(25)
    done = await cases.answer(a, RIDER.id, Answer.UNSATISFIED, note="还有一个坑")
    assert isinstance(done, Changed)
    when(26)
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.ACCEPT, State.REOPENED), Changed)
    when(30)
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.FIXED, State.ACCEPTED), Changed)
    assert isinstance(await cases.answer(a, RIDER.id, Answer.SATISFIED), Changed)
    # B: accepted late (5 hours, 4 allowed); one extension refused, one granted; fixed within
    # the new deadline; the rider stays silent and the clock confirms it.
    when(5)
    assert isinstance(await cases.act(b, TOWN_STAFF.id, Action.ACCEPT, State.DISPATCHED), Changed)
    when(6)
    assert isinstance(await cases.ask_extension(b, TOWN_STAFF.id, "11-08 下雨"), Noted)
    first = await runtime.db.fetchone("SELECT MAX(id) FROM case_extensions")
    assert isinstance(await cases.decide_extension(first[0], MOD.id, approve=False), Noted)
    assert isinstance(await cases.ask_extension(b, TOWN_STAFF.id, "2026-11-20 采购材料"), Noted)
    second = await runtime.db.fetchone("SELECT MAX(id) FROM case_extensions")
    assert isinstance(await cases.decide_extension(second[0], MOD.id, approve=True), Noted)
    at(bot, datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI))
    assert isinstance(await cases.act(b, TOWN_STAFF.id, Action.FIXED, State.ACCEPTED), Changed)
    at(bot, datetime(2026, 11, 13, 10, 0, tzinfo=SHANGHAI))
    check = await cases.service_check()
    assert [changed.case.id for changed in check.confirmed] == [b]
    # C: the county bureau returns it (退单); re-routed to the town office, never accepted.
    when(2)
    assert isinstance(
        await cases.act(c, COUNTY_STAFF.id, Action.NOT_OURS, State.DISPATCHED, note="归镇里"),
        Changed,
    )
    rerouted = await cases.act(
        c, MOD.id, Action.REROUTE, State.NOT_OURS, note="镇里处理", department="chengguan"
    )
    assert isinstance(rerouted, Changed)

    rows = await performance(
        runtime.db, runtime.settings.programme, month_period(2026, 11, SHANGHAI)
    )
    town, county = rows
    assert town.department == "chengguan"
    assert (town.received, town.cases) == (3, 3)  # A, B opened there; C re-routed to it
    assert (town.accepted, town.accepted_in_time) == (2, 1)  # B late
    assert (town.fixed, town.fixed_in_time, town.on_time_rate) == (2, 2, 1.0)
    assert (town.extensions_asked, town.extensions_granted) == (2, 1)
    assert (town.returned, town.reopened) == (0, 1)
    assert (town.answers, town.satisfied, town.silent, town.satisfaction) == (2, 1, 1, 0.5)
    assert town.median_accept_hours == 3.0  # A: 1 h after its reopening; B: 5 h
    assert (county.department, county.received, county.cases, county.returned) == (
        "roads",
        1,
        0,
        1,
    )
    assert county.on_time_rate is None
    assert county.satisfaction is None

    # The register's 部门绩效 sheet says the same.
    files = await exports.export(
        runtime.db,
        runtime.settings,
        datetime(2026, 11, 1, tzinfo=SHANGHAI),
        datetime(2026, 12, 1, tzinfo=SHANGHAI),
        MONDAY + timedelta(days=20),
    )
    book = openpyxl.load_workbook(io.BytesIO(files.xlsx))
    sheet = book["部门绩效"]
    header = [cell.value for cell in sheet[1]]
    town_row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert town_row["部门"] == "城关镇办"
    assert town_row["按时办结率"] == 1.0
    assert sheet.cell(2, header.index("按时办结率") + 1).number_format == "0.0%"
    assert town_row["满意率"] == 0.5
    assert (town_row["退单"], town_row["返工"], town_row["申请延期"]) == (0, 1, 2)
    county_row = dict(zip(header, [cell.value for cell in sheet[3]], strict=True))
    assert county_row["退单"] == 1
    assert county_row["按时办结率"] is None
    assert sheet.freeze_panes == "B2"
    register = book["台账"]
    assert any("好花红镇" in str(cell.value) for row in register.iter_rows() for cell in row)

    # /stats for November.
    boss = Chat(fake, BOSS)
    boss.text("/stats 2026-11")
    await fake.wait_for(lambda: any("部门绩效" in m.text for m in fake.sent_to(BOSS.id)))
    text = next(m.text for m in fake.sent_to(BOSS.id) if "部门绩效" in m.text)
    assert "城关镇办：派发3 · 按时办结率100%（办结2）· 满意率50%（回访2，默认1）" in text
    assert "县公路局：派发1 · 按时办结率-（办结0）" in text
    await fake.wait_for(
        lambda: any(m.kind == "photo" and "部门绩效" in m.text for m in fake.sent_to(BOSS.id))
    )
    chart = next(m for m in fake.sent_to(BOSS.id) if m.kind == "photo" and "部门绩效" in m.text)
    assert chart.file_bytes is not None
    assert chart.file_bytes.startswith(b"\x89PNG")

    # The weekly digest (Monday 11-09 for the week before) carries the same block.
    at(bot, datetime(2026, 11, 9, 9, 0, tzinfo=SHANGHAI))
    await bot.run_job(fake, figure_handlers.digest_job)
    await fake.wait_for(
        lambda: len([m for m in fake.sent_to(BOSS.id) if m.text.startswith("📋 部门绩效")]) == 1
    )
    weekly = [m.text for m in fake.sent_to(BOSS.id) if m.text.startswith("📋 部门绩效")][-1]
    assert "县公路局：派发1 ·" in weekly
    assert "退单1" in weekly


async def test_a_case_sent_back_is_not_fixed_until_it_is_fixed_again(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    """返工 (the rider not satisfied) undoes the fix: the case is neither fixed nor in time
    while the department works on it again, and no negative fix time appears."""
    bot = await start(start_bot, MONDAY)
    runtime = bot.app.bot_data["runtime"]
    cases = runtime.cases
    reference, _ = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    a = await case_id(bot, reference)
    at(bot, MONDAY + timedelta(hours=1))
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.ACCEPT, State.DISPATCHED), Changed)
    at(bot, MONDAY + timedelta(hours=2))
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.FIXED, State.ACCEPTED), Changed)
    at(bot, MONDAY + timedelta(hours=3))
    assert isinstance(await cases.answer(a, RIDER.id, Answer.UNSATISFIED, note="没修好"), Changed)
    at(bot, MONDAY + timedelta(hours=4))
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.ACCEPT, State.REOPENED), Changed)
    period = month_period(2026, 11, SHANGHAI)
    town = (await performance(runtime.db, runtime.settings.programme, period))[0]
    assert (town.accepted, town.fixed, town.fixed_in_time, town.reopened) == (1, 0, 0, 1)
    assert town.on_time_rate is None
    assert town.median_fix_hours is None
    at(bot, MONDAY + timedelta(hours=6))
    assert isinstance(await cases.act(a, TOWN_STAFF.id, Action.FIXED, State.ACCEPTED), Changed)
    town = (await performance(runtime.db, runtime.settings.programme, period))[0]
    assert (town.fixed, town.fixed_in_time) == (1, 1)
    assert town.median_fix_hours == 3.0  # from the fresh dispatch (3 h) to the fix (6 h)
