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

from handlers.common import BotContext, language_of, reply
from handlers.notify import split_message
from services.money import Money, PayeeSaved
from services.outbox import Fen, Notice, Params
from services.payouts import BatchOutcome, RiderDue

log = logging.getLogger(__name__)

CALLBACK_PAID = "pay:"


def money(context: BotContext) -> Money:
    return context.runtime.money


# --- riders -----------------------------------------------------------------------------


async def balance_command(update: Update, context: BotContext) -> None:
    """/balance: points, unpaid, on the way, paid."""
    user = update.effective_user
    if user is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    found = await money(context).balance(user.id)
    if found is None:
        await reply(update, context, "my.none")
        return
    await reply(
        update,
        context,
        "balance.text",
        points=found.points,
        unpaid=texts.money(language, max(found.unpaid_fen, 0)),
        on_the_way=texts.money(language, found.on_the_way_fen),
        paid=texts.money(language, found.paid_fen),
    )
    await spendable_line(update, context)  # points after codes not yet used (issue 12)


async def spendable_line(update: Update, context: BotContext) -> None:
    from handlers.care import spendable_line as line  # handlers.care imports this module

    await line(update, context)


async def history_command(update: Update, context: BotContext) -> None:
    """/history: the latest ledger entries with their reports."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    entries = await money(context).history(user.id)
    if not entries:
        await reply(update, context, "history.none")
        return
    zone = context.runtime.settings.timezone
    lines = [texts.get(language, "history.header")]
    for entry in entries:
        lines.append(
            texts.get(
                language,
                f"history.{entry.kind}",
                when=texts.when(language, datetime.fromtimestamp(entry.created_at, UTC), zone),
                amount=texts.money(language, abs(entry.amount_fen)),
                points=abs(entry.points),
                reference=entry.report_reference or "-",
                batch=entry.batch_key or "-",
            )
        )
    await context.bot.send_message(chat.id, "\n".join(lines))


async def payee_command(update: Update, context: BotContext) -> None:
    """/payee: show the payout details (masked) and ask for new ones."""
    user = update.effective_user
    if user is None:
        return
    current = await money(context).current_payee(user.id)
    if current is not None:
        await reply(
            update,
            context,
            "payee.current",
            name=current.masked_name,
            account=current.masked_account,
        )
    await ask_payee(context, user.id)


async def ask_payee(context: BotContext, telegram_id: int) -> None:
    """Ask for the real name and account; the rider's next text answers."""
    await money(context).ask_payee(telegram_id)
    await context.runtime.outbox.send(Notice(telegram_id, "payee.ask"))


async def payee_details(update: Update, context: BotContext, text: str) -> bool:
    """If the bot asked this rider for payout details, `text` is them: save or explain."""
    user = update.effective_user
    if user is None or not await money(context).awaiting_payee(user.id):
        return False
    saved = await money(context).save_payee(user.id, text)
    if isinstance(saved, PayeeSaved):
        await reply(
            update, context, "payee.saved", name=saved.masked_name, account=saved.masked_account
        )
    else:
        await reply(update, context, f"payee.problem.{saved}")
    return True


# --- admins -----------------------------------------------------------------------------


async def _admin(update: Update, context: BotContext) -> bool:
    user = update.effective_user
    if user is not None and context.runtime.moderation.is_admin(user.id):
        return True
    await reply(update, context, "admin.only")
    return False


async def reverse_command(update: Update, context: BotContext) -> None:
    """/reverse <reference> <reason>: take back an approved report's reward."""
    if not await _admin(update, context):
        return
    args = context.args or []
    if len(args) < 2:
        await reply(update, context, "reverse.usage")
        return
    reference, reason = args[0].upper(), " ".join(args[1:])
    outcome = await money(context).reverse(reference, reason)
    if isinstance(outcome, str):
        await reply(update, context, f"reverse.problem.{outcome}", reference=reference)
        return
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    key = "reverse.done" if outcome.created else "reverse.already"
    await reply(
        update, context, key, reference=reference, amount=texts.money(language, outcome.amount_fen)
    )
    contact = await money(context).contact(outcome.rider_id)
    if outcome.created and contact is not None:
        rider_key = "rider.reversed_paid" if outcome.already_paid else "rider.reversed"
        params: Params = {
            "reference": reference,
            "reason": outcome.reason,
            "amount": Fen(outcome.amount_fen),
            "points": outcome.points,
        }
        await context.runtime.outbox.send(Notice(contact[0], rider_key, params))


async def payout_command(update: Update, context: BotContext) -> None:
    """/payout: pay everything approved and unpaid now; the file comes back at once."""
    if not await _admin(update, context):
        return
    outcome = await money(context).adhoc_batch()
    if outcome.nothing_to_pay:
        await remind_missing_payees(context, outcome.missing_payee)
        await reply(update, context, "payout.nothing", waiting=len(outcome.missing_payee))
        return
    await announce(context, outcome)


async def audit_command(update: Update, context: BotContext) -> None:
    """/audit: check the money invariants; OK or each violation."""
    chat = update.effective_chat
    if chat is None or not await _admin(update, context):
        return
    problems = await money(context).audit()
    if not problems:
        await reply(update, context, "audit.ok")
        return
    language = await language_of(context, update.effective_user)
    header = context.runtime.texts.get(language, "audit.problems", count=len(problems))
    for piece in split_message("\n".join([header, *problems])):
        await context.bot.send_message(chat.id, piece)


async def payout_job(context: BotContext) -> None:
    """The schedule (and start-up): build every due batch, catch up missed ones, announce."""
    for outcome in await money(context).scheduled_batches():
        await announce(context, outcome)


async def announce(context: BotContext, outcome: BatchOutcome) -> None:
    """Send the files to admins and finance, tell riders, then record that it was done."""
    runtime = context.runtime
    texts, settings = runtime.texts, runtime.settings
    language = runtime.languages.default
    assert outcome.batch_id is not None
    # A period in which nobody is due makes an empty batch: nothing to send finance.
    if outcome.files is not None and outcome.paid:
        caption = texts.get(
            language,
            "payout.file_caption",
            batch=outcome.period.key,
            total=texts.money(language, outcome.total_fen),
            count=len(outcome.paid),
        )
        button = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton(
                texts.get(language, "button.mark_paid"),
                callback_data=f"{CALLBACK_PAID}{outcome.batch_id}",
            )
        )
        recipients = sorted(settings.admin_ids)
        if settings.finance_chat_id is not None:
            recipients.append(settings.finance_chat_id)
        for chat_id in recipients:
            try:
                await context.bot.send_document(
                    chat_id,
                    outcome.files.xlsx,
                    filename=outcome.files.xlsx_name,
                    caption=caption,
                    reply_markup=button,
                )
                await context.bot.send_document(
                    chat_id, outcome.files.csv, filename=outcome.files.csv_name
                )
            except TelegramError as exc:
                log.warning("payout file to %s not delivered: %r", chat_id, exc)
    await runtime.outbox.send(
        *(
            Notice(due.telegram_id, "payout.on_the_way", {"amount": Fen(due.amount_fen)})
            for due in outcome.paid
            if due.telegram_id is not None
        )
    )
    await remind_missing_payees(context, outcome.missing_payee)
    await money(context).announced(outcome.batch_id)
    log.info(
        "payout batch %s announced: %d lines, %d without payout details",
        outcome.period.key,
        len(outcome.paid),
        len(outcome.missing_payee),
    )


async def remind_missing_payees(context: BotContext, riders: tuple[RiderDue, ...]) -> None:
    """Riders a batch could not pay for lack of payout details: remind them, ask again."""
    for due in riders:
        if due.telegram_id is not None:
            await context.runtime.outbox.send(
                Notice(due.telegram_id, "payout.need_details", {"amount": Fen(due.amount_fen)})
            )
            await money(context).ask_payee(due.telegram_id)


async def on_mark_paid(update: Update, context: BotContext) -> None:
    """An admin's "mark paid" button under a payout file."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    if not context.runtime.moderation.is_admin(user.id):
        await query.answer(texts.get(language, "admin.only"), show_alert=True)
        return
    batch = (query.data or "").removeprefix(CALLBACK_PAID)
    outcome = await money(context).mark_paid(int(batch) if batch.isdigit() else -1, user.id)
    if not outcome.marked:
        await query.answer(texts.get(language, "payout.not_markable"), show_alert=True)
        return
    await query.answer(texts.get(language, "payout.marked", batch=outcome.period_key or "-"))
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(None)
    await context.runtime.outbox.send(
        *(
            Notice(due.telegram_id, "payout.paid", {"amount": Fen(due.amount_fen)})
            for due in outcome.paid
            if due.telegram_id is not None
        )
    )
