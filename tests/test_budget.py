"""The monthly reward budget: shown on the card, past it only an admin approves, admins warned."""

from __future__ import annotations

from functools import partial

from services.budget import BudgetUse
from settings import PayoutRules, Programme
from tests.conftest import ADMIN, BotStarter
from tests.fakegram import FakeTelegram, TgUser
from tests.test_moderation import BOSS, MOD, answers_after, card_of, ledger, submit


async def test_budget_on_the_card_refusal_and_warnings(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(programme=Programme(payout=PayoutRules(budget_month_fen=12_000)))
    await submit(fake, TgUser(701, language_code="zh-hans"), seed=31)
    first = await card_of(fake)
    assert "💰 本月奖励预算：已用0.00元 / 120.00元（0%）" in first.text
    fake.press_button(MOD, first, first.button("✅ 100"))
    await fake.wait_for(lambda: "✅ 核实有效" in first.text)
    assert "💰" not in first.text  # decided cards no longer show it
    warning = (await fake.wait_for_messages(ADMIN, 1))[0]
    assert warning.text.startswith("⚠️ ")
    assert "100.00元" in warning.text
    assert "83%" in warning.text

    await submit(fake, TgUser(702, language_code="zh-hans"), seed=32)
    second = await card_of(fake, 2)
    assert "已用100.00元 / 120.00元（83%）" in second.text
    before = len(fake.callback_answers)
    fake.press_button(MOD, second, second.button("✅ 50"))
    await fake.wait_for(lambda: len(fake.callback_answers) > before)
    assert answers_after(fake, before)[0].startswith("这笔奖励会超出本月")
    await bot.settled(fake)
    assert [key for key, _, _ in await ledger(bot)] == ["reward:1"]
    assert "⏳ 待审核" in second.text

    fake.press_button(BOSS, second, second.button("✅ 50"))  # an admin's approval passes
    await fake.wait_for(lambda: "✅ 核实有效" in second.text)
    assert [amount for _, amount, _ in await ledger(bot)] == [10_000, 5_000]
    await bot.settled(fake)
    warnings = [m.text for m in fake.sent_to(ADMIN) if "预算" in m.text]
    assert len(warnings) == 2
    assert warnings[1].startswith("🛑 ")


def test_year_budget_counts_too() -> None:
    use = BudgetUse((2026, 10), 1_000, 10_000, 99_000, 100_000)
    assert not use.exceeded_by(1_000)
    assert use.exceeded_by(1_001)  # the year's budget, not the month's
    assert BudgetUse((2026, 10), 9_000, 10_000, 0, None).exceeded_by(1_001)


async def test_a_yearly_budget_alone_is_enforced_and_shown(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(programme=Programme(payout=PayoutRules(budget_year_fen=15_000)))
    await submit(fake, TgUser(711, language_code="zh-hans"), seed=41)
    first = await card_of(fake)
    assert "💰 本年奖励预算：已用0.00元 / 150.00元（0%）" in first.text
    fake.press_button(MOD, first, first.button("✅ 100"))
    await fake.wait_for(lambda: "✅ 核实有效" in first.text)
    await bot.settled(fake)
    assert not fake.sent_to(ADMIN)  # 66% of the year's budget crosses no threshold

    for n, seed in ((2, 42), (3, 43)):
        await submit(fake, TgUser(710 + n, language_code="zh-hans"), seed=seed)
        card = await card_of(fake, n)
        assert "已用100.00元 / 150.00元（66%）" in card.text
        answered = len(fake.callback_answers) + 1
        fake.press_button(MOD, card, card.button("✅ 100"))
        await fake.wait_for(partial(lambda count: len(fake.callback_answers) >= count, answered))
        assert answers_after(fake, answered - 1)[0].startswith("这笔奖励会超出本月（或全年）")
    await bot.settled(fake)
    assert [key for key, _, _ in await ledger(bot)] == ["reward:1"]

    second = await card_of(fake, 2)
    fake.press_button(BOSS, second, second.button("✅ 100"))  # an admin's approval passes
    await fake.wait_for(lambda: "✅ 核实有效" in second.text)
    await bot.settled(fake)
    warnings = [m.text for m in fake.sent_to(ADMIN) if "年度预算" in m.text]
    assert len(warnings) == 2  # 80% and 100% crossed by the one approval, each told once
    assert warnings[0].startswith("⚠️ ")
    assert "年的奖励" in warnings[0]
    assert warnings[1].startswith("🛑 ")
    assert all("133%" in warning for warning in warnings)
