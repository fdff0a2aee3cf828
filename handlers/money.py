"""Money in the chat: /balance, /history, /payee, and for admins /reverse, /payout, /audit,
the scheduled payout job and the button that marks a batch paid.

Riders hear twice about each payout: when their amount enters a batch, and when an admin
marks the batch paid. Payout details are asked for when the first reward is approved.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError

from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext, Runtime
from handlers.prompts import PromptReply
from handlers.speak import Speaker
from handlers.widgets import drop_buttons, spendable_line
from services.budget import payout_over_budget
from services.money import PAYEE_MARK, VERB_PAYEE_START, Money, PayeeProposed, payee_prompt
from services.payouts import BatchOutcome

log = logging.getLogger(__name__)

MARK_PAID = Verb("paid")  # item: the batch id
CONFIRM_PAYEE = Verb("payok")  # item: the proposed details' token
CANCEL_PAYEE = Verb("payno")
START_PAYEE = Verb(VERB_PAYEE_START)  # under the 💳 message: the two steps begin
STOP_PAYEE = Verb("paystop")  # under each step's question: leave the details as they are
ANNOUNCE_RETRY_SECONDS = 300
BATCHES_LISTED = 10
# Only a reply to the bot's payout details prompt is ever read as payout details.
PAYEE_PROMPT_REPLY = PromptReply(PAYEE_MARK)


def money(context: BotContext) -> Money:
    return context.runtime.money


# --- riders -----------------------------------------------------------------------------


@allow(Audience.RIDERS)
async def balance_command(update: Update, context: BotContext) -> None:
    """/balance: points, unpaid, on the way, paid."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    found = await money(context).balance(user.id)
    if found is None:
        await say.reply("my.none")
        return
    await say.reply(
        "balance.text",
        points=found.points_left,
        unpaid=await say.money(max(found.unpaid_fen, 0)),
        on_the_way=await say.money(found.on_the_way_fen),
        paid=await say.money(found.paid_fen),
    )
    if found.points_owed:
        await say.reply("balance.points_owed", points=found.points_owed)
    await spendable_line(update, context)  # points after codes not yet used


@allow(Audience.RIDERS)
async def history_command(update: Update, context: BotContext) -> None:
    """/history: the latest ledger entries with their reports."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    entries = await money(context).history(user.id)
    if not entries:
        await say.reply("history.none")
        return
    t = await say.phrases()
    lines = [t("history.header")]
    for entry in entries:
        lines.append(
            t(
                f"history.{entry.kind}",
                when=t.when(datetime.fromtimestamp(entry.created_at, UTC)),
                amount=t.money(abs(entry.amount_fen)),
                points=abs(entry.points),
                reference=entry.report_reference or "-",
                batch=entry.batch_key or "-",
            )
        )
    await say.send("\n".join(lines))


@allow(Audience.RIDERS)
async def payee_command(update: Update, context: BotContext) -> None:
    """/payee: show the payout details (masked) and ask for new ones, step by step."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    current = await money(context).current_payee(user.id)
    if current is not None:
        await say.reply("payee.current", name=current.masked_name, account=current.masked_account)
    await start_steps(say, user.id)


async def ask_payee(context: BotContext, telegram_id: int) -> None:
    """Send the 💳 message again, with its button."""
    await context.runtime.outbox.send(payee_prompt(telegram_id))


async def start_steps(say: Speaker, telegram_id: int) -> None:
    """Open the first step (the real name) and ask it."""
    if not await say.context.runtime.money.start_payee(telegram_id):
        await say.reply("payee.problem.not_rider")
        return
    await ask_step(say, "name")


async def ask_step(say: Speaker, step: str, problem: str | None = None) -> None:
    """One step's question (after what was wrong with the last answer), with a way out."""
    t = await say.phrases()
    lead = f"{t(f'payee.problem.{problem}')}\n" if problem else ""
    stop = InlineKeyboardButton(t("button.payee_stop"), callback_data=STOP_PAYEE.data(1))
    await say.send(
        lead + t(f"payee.step.{step}"), reply_markup=InlineKeyboardMarkup.from_button(stop)
    )


@allow(Audience.RIDERS)
@pressed
async def on_payee_start(update: Update, context: BotContext, press: ButtonPress) -> None:
    """The 💳 message's button: the steps begin."""
    say = Speaker(update, context)
    await say.alert()
    await start_steps(say, press.user.id)


@allow(Audience.RIDERS)
@pressed
async def on_payee_stop(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Leave the details as they were; text typed afterwards is not taken."""
    say = Speaker(update, context)
    await drop_buttons(press.query.message)
    await say.alert()
    if await money(context).stop_payee_step(press.user.id):
        await say.reply("payee.cancelled")


async def in_payee_step(update: Update, context: BotContext) -> bool:
    """Whether the rider has a step open (handlers/dispatch.py sends their text here)."""
    user = update.effective_user
    return user is not None and await money(context).payee_step(user.id) is not None


@allow(Audience.RIDERS)
async def on_payee_text(update: Update, context: BotContext) -> None:
    """The answer to the open step: the name, then the account, then Confirm / Cancel."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    say = Speaker(update, context)
    answered = await money(context).answer_payee_step(user.id, message.text)
    if answered.proposed is not None:
        await show_for_confirm(say, answered.proposed)
    elif answered.step is not None:
        await ask_step(say, answered.step, answered.problem)


async def show_for_confirm(say: Speaker, proposed: PayeeProposed) -> None:
    """The details masked, with Confirm / Cancel: nothing is stored before Confirm."""
    t = await say.phrases()
    buttons = InlineKeyboardMarkup.from_row(
        [
            InlineKeyboardButton(
                t("button.payee_confirm"), callback_data=CONFIRM_PAYEE.data(proposed.token)
            ),
            InlineKeyboardButton(
                t("button.payee_cancel"), callback_data=CANCEL_PAYEE.data(proposed.token)
            ),
        ]
    )
    await say.reply(
        "payee.confirm",
        name=proposed.masked_name,
        account=proposed.masked_account,
        reply_markup=buttons,
    )


@allow(Audience.RIDERS)
async def on_payee_reply(update: Update, context: BotContext) -> None:
    """A reply to the older one-message prompt ("name account"), still in riders' chats."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    say = Speaker(update, context)
    proposed = await money(context).propose_payee(user.id, message.text)
    if proposed is None:
        await say.reply("payee.problem.payee_format")
        await start_steps(say, user.id)
        return
    await show_for_confirm(say, proposed)


@allow(Audience.RIDERS)
@pressed
async def on_payee_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Confirm stores the details shown; Cancel drops them. A stale button changes nothing."""
    query, user = press.query, press.user
    say = Speaker(update, context)
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(None)
    if press.verb is CONFIRM_PAYEE:
        saved = await money(context).confirm_payee(user.id, press.item)
        if saved is None:
            await say.alert("payee.stale", popup=True)
            return
        await say.alert()
        await say.reply("payee.saved", name=saved.masked_name, account=saved.masked_account)
        return
    await money(context).cancel_payee(user.id, press.item)
    await say.alert()
    await say.reply("payee.cancelled")


# --- admins (in a private chat or the finance chat; see handlers/access.py) ----------------


@allow(Audience.ADMINS)
async def reverse_command(update: Update, context: BotContext) -> None:
    """/reverse <reference> <reason>: take back an approved report's reward."""
    say = Speaker(update, context)
    args = context.args or []
    if len(args) < 2:
        await say.reply("reverse.usage")
        return
    reference, reason = args[0].upper(), " ".join(args[1:])
    outcome = await money(context).reverse(reference, reason)
    if isinstance(outcome, str):
        await say.reply(f"reverse.problem.{outcome}", reference=reference)
        return
    key = "reverse.done" if outcome.created else "reverse.already"
    await say.reply(key, reference=reference, amount=await say.money(outcome.amount_fen))


@allow(Audience.ADMINS)
async def payout_command(update: Update, context: BotContext) -> None:
    """/payout: pay everything approved and unpaid now; the file comes back at once."""
    outcome = await money(context).adhoc_batch()
    if outcome.nothing_to_pay:
        await money(context).remind_missing(outcome.missing_payee)
        await Speaker(update, context).reply("payout.nothing", waiting=len(outcome.missing_payee))
        return
    await announce(context, outcome)


@allow(Audience.ADMINS)
async def audit_command(update: Update, context: BotContext) -> None:
    """/audit: check the money invariants; OK or each violation."""
    say = Speaker(update, context)
    problems = await money(context).audit()
    if not problems:
        await say.reply("audit.ok")
        return
    header = await say.text("audit.problems", count=len(problems))
    await say.send("\n".join([header, *problems]))


async def payout_job(context: BotContext) -> None:
    """The schedule, start-up and retries: build every due batch, catch up missed ones,
    announce each not yet announced (the claim keeps a concurrent /payout from doubling)."""
    for outcome in await money(context).scheduled_batches():
        await announce(context, outcome)


async def announce(context: BotContext, outcome: BatchOutcome) -> None:
    """If this caller wins the batch's claim: send the files to the admins and the finance
    chat that have not got them; announced (riders told, in that transaction) once at least
    one has; else released for a retry, and the admins told once."""
    service = money(context)
    assert outcome.batch_id is not None
    if outcome.announced or not await service.claim_announcement(outcome.batch_id):
        return
    delivered = await service.delivered_to(outcome.batch_id)
    # A period in which nobody is due makes an empty batch: nothing to send finance.
    if outcome.files is not None and outcome.paid:
        for chat_id in _finance_recipients(context):
            if chat_id in delivered:
                continue
            if await _send_files(context, chat_id, outcome, copy=False):
                await service.file_delivered(outcome.batch_id, chat_id)
                delivered.add(chat_id)
        if not delivered:
            attempts = await service.announce_failed(outcome.batch_id)
            log.warning(
                "payout batch %s reached nobody (attempt %d); retrying in %d s",
                outcome.period.key,
                attempts,
                ANNOUNCE_RETRY_SECONDS,
            )
            await service.tell_admins_undelivered(outcome.period.key, outcome.batch_id)
            _schedule_retry(context)
            return
    await service.announced(outcome)
    log.info(
        "payout batch %s announced: %d lines, %d without payout details",
        outcome.period.key,
        len(outcome.paid),
        len(outcome.missing_payee),
    )


def _finance_recipients(context: BotContext) -> list[int]:
    settings = context.runtime.settings
    recipients = sorted(settings.admin_ids)
    if settings.finance_chat_id is not None:
        recipients.append(settings.finance_chat_id)
    return recipients


def _schedule_retry(context: BotContext) -> None:
    queue = context.job_queue
    if queue is not None and not queue.get_jobs_by_name("payout retry"):
        queue.run_once(
            payout_job,  # type: ignore[arg-type]  # PTB types jobs' context loosely
            when=ANNOUNCE_RETRY_SECONDS,
            name="payout retry",
        )


HELD_BACK_LISTED = 10  # riders named in the caption; the file's 暂缓 sheet lists them all


def held_back_line(runtime: Runtime, language: str, outcome: BatchOutcome) -> str:
    """Who this batch holds back for want of payout details, and how much (the riders have
    been reminded)."""
    texts = runtime.texts
    held = outcome.missing_payee
    names = ", ".join(
        f"{due.telegram_id if due.telegram_id is not None else '#' + str(due.rider_id)} "
        f"{texts.money(language, due.amount_fen)}"
        for due in held[:HELD_BACK_LISTED]
    )
    more = len(held) - HELD_BACK_LISTED
    if more > 0:
        names += texts.get(language, "payout.held_back_more", more=more)
    total = texts.money(language, sum(due.amount_fen for due in held))
    return texts.get(language, "payout.held_back", count=len(held), total=total, riders=names)


async def _send_files(
    context: BotContext, chat_id: int, outcome: BatchOutcome, *, copy: bool
) -> bool:
    """The XLSX (with the mark-paid button, unless a copy) and the CSV; False if refused."""
    runtime = context.runtime
    texts = runtime.texts
    language = runtime.languages.default
    assert outcome.files is not None
    assert outcome.batch_id is not None
    caption = texts.get(
        language,
        "payout.file_caption",
        batch=outcome.period.key,
        total=texts.money(language, outcome.total_fen),
        count=len(outcome.paid),
    )
    if outcome.missing_payee:
        caption += "\n" + held_back_line(runtime, language, outcome)
    programme = runtime.settings.programme
    if payout_over_budget(programme, outcome.total_fen) and programme.payout.budget_month_fen:
        budget = texts.money(language, programme.payout.budget_month_fen)
        caption += "\n" + texts.get(language, "payout.over_budget", budget=budget)
    button = None
    if copy:
        caption = texts.get(
            language, "payout.copy_caption", caption=caption, sha256=outcome.files.sha256
        )
    else:
        button = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton(
                texts.get(language, "button.mark_paid"),
                callback_data=MARK_PAID.data(outcome.batch_id),
            )
        )
    try:
        await context.bot.send_document(
            chat_id,
            outcome.files.xlsx,
            filename=outcome.files.xlsx_name,
            caption=caption,
            reply_markup=button,
        )
        await context.bot.send_document(chat_id, outcome.files.csv, filename=outcome.files.csv_name)
    except TelegramError as exc:
        log.warning("payout file to %s not delivered: %r", chat_id, exc)
        return False
    return True


@allow(Audience.ADMINS)
async def batches_command(update: Update, context: BotContext) -> None:
    """/batches: the recent batches, one line each, with their state and who did what."""
    say = Speaker(update, context)
    found = await money(context).recent_batches(BATCHES_LISTED)
    if not found:
        await say.reply("batches.none")
        return
    t = await say.phrases()

    def when(seconds: int | None) -> str:
        return "-" if seconds is None else t.when(datetime.fromtimestamp(seconds, UTC))

    lines = [t("batches.header")]
    for batch in found:
        state = (
            "paid"
            if batch.status == "paid"
            else "announced"
            if batch.announced_at is not None
            else "open"
            if batch.status == "open"
            else "unsent"
        )
        lines.append(
            t(
                "batches.line",
                batch=batch.period_key,
                state=t(f"batches.state.{state}"),
                count=batch.line_count,
                total=t.money(batch.total_fen),
                announced=when(batch.announced_at),
                paid=when(batch.paid_at),
                paid_by=batch.paid_by if batch.paid_by is not None else "-",
            )
        )
    await say.send("\n".join(lines))


@allow(Audience.ADMINS)
async def batch_command(update: Update, context: BotContext) -> None:
    """/batch <key>: a copy of the batch's files, same bytes, without a mark-paid button."""
    chat = update.effective_chat
    if chat is None:
        return
    say = Speaker(update, context)
    args = context.args or []
    if len(args) != 1:
        await say.reply("batch.usage")
        return
    outcome = await money(context).batch_files(args[0])
    if outcome is None or outcome.files is None:
        await say.reply("batch.unknown", batch=args[0])
        return
    if not await _send_files(context, chat.id, outcome, copy=True):
        await say.reply("batch.unknown", batch=args[0])


@allow(Audience.ADMINS)
@pressed
async def on_mark_paid(update: Update, context: BotContext, press: ButtonPress) -> None:
    """An admin's "mark paid" button under a payout file: the first press marks it (and the
    riders are told in that transaction); any later press says who marked it and when."""
    query, user = press.query, press.user
    say = Speaker(update, context)
    outcome = await money(context).mark_paid(press.item, user.id)
    if isinstance(query.message, Message) and outcome.status == "paid":
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(None)
    if outcome.marked:
        await say.alert("payout.marked", batch=outcome.period_key or "-")
    elif outcome.status == "paid" and outcome.paid_at is not None:
        t = await say.phrases()
        await say.alert(
            "payout.already_paid",
            popup=True,
            batch=outcome.period_key or "-",
            admin=outcome.paid_by or "-",
            when=t.when(datetime.fromtimestamp(outcome.paid_at, UTC)),
        )
    else:
        await say.alert("payout.not_markable", popup=True)
