"""Money in the chat: /balance, /history, /payee, and for admins /reverse, /payout, /audit,
the scheduled payout job and the button that marks a batch paid.

Riders hear twice about each payout: when their amount enters a batch, and when an admin
marks the batch paid. Payout details are asked for when the first reward is approved.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import filters

from handlers.common import BotContext, language_of, reply
from handlers.notify import split_message
from services.money import PAYEE_MARK, Money, payee_prompt
from services.payouts import BatchOutcome

log = logging.getLogger(__name__)

CALLBACK_PAID = "pay:"
CALLBACK_PAYEE = "payee:"  # payee:ok:<token> / payee:no:<token>
ANNOUNCE_RETRY_SECONDS = 300
BATCHES_LISTED = 10


class _PayeePromptReply(filters.MessageFilter):
    """A reply to the bot's payout details prompt: the only text read as payout details."""

    def filter(self, message: Message) -> bool:
        prompt = message.reply_to_message
        return (
            prompt is not None
            and prompt.from_user is not None
            and prompt.from_user.is_bot
            and (prompt.text or "").startswith(PAYEE_MARK)
        )


PAYEE_PROMPT_REPLY = _PayeePromptReply()


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
    """Send the payout details prompt; only a reply to it is read as the details."""
    await context.runtime.outbox.send(payee_prompt(telegram_id))


async def on_payee_reply(update: Update, context: BotContext) -> None:
    """A reply to the prompt: show the details masked with Confirm / Cancel, or refuse."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    proposed = await money(context).propose_payee(user.id, message.text)
    if proposed is None:
        await reply(update, context, "payee.problem.payee_format")
        await ask_payee(context, user.id)
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    texts.get(language, "button.payee_confirm"),
                    callback_data=f"{CALLBACK_PAYEE}ok:{proposed.token}",
                ),
                InlineKeyboardButton(
                    texts.get(language, "button.payee_cancel"),
                    callback_data=f"{CALLBACK_PAYEE}no:{proposed.token}",
                ),
            ]
        ]
    )
    await message.reply_text(
        texts.get(
            language,
            "payee.confirm",
            name=proposed.masked_name,
            account=proposed.masked_account,
        ),
        reply_markup=buttons,
    )


async def on_payee_button(update: Update, context: BotContext) -> None:
    """Confirm stores the details shown; Cancel drops them. A stale button changes nothing."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    _, _, rest = (query.data or "").partition(CALLBACK_PAYEE)
    action, _, token_text = rest.partition(":")
    token = int(token_text) if token_text.isdigit() else -1
    if isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(None)
    if action == "ok":
        saved = await money(context).confirm_payee(user.id, token)
        if saved is None:
            await query.answer(texts.get(language, "payee.stale"), show_alert=True)
            return
        await query.answer()
        await reply(
            update, context, "payee.saved", name=saved.masked_name, account=saved.masked_account
        )
        return
    await money(context).cancel_payee(user.id, token)
    await query.answer()
    await reply(update, context, "payee.cancelled")


# --- admins -----------------------------------------------------------------------------


async def _admin(update: Update, context: BotContext) -> bool:
    """An admin, in a private chat with the bot or in the finance chat. Elsewhere (a group)
    nothing is said, so onlookers learn nothing; a non-admin in private is told it's admins'."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return False
    is_admin = context.runtime.moderation.is_admin(user.id)
    in_finance = chat.id == context.runtime.settings.finance_chat_id
    if chat.type != Chat.PRIVATE and not in_finance:
        return False
    if is_admin:
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


async def payout_command(update: Update, context: BotContext) -> None:
    """/payout: pay everything approved and unpaid now; the file comes back at once."""
    if not await _admin(update, context):
        return
    outcome = await money(context).adhoc_batch()
    if outcome.nothing_to_pay:
        await money(context).remind_missing(outcome.missing_payee)
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
    button = None
    if copy:
        caption = texts.get(
            language, "payout.copy_caption", caption=caption, sha256=outcome.files.sha256
        )
    else:
        button = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton(
                texts.get(language, "button.mark_paid"),
                callback_data=f"{CALLBACK_PAID}{outcome.batch_id}",
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


async def batches_command(update: Update, context: BotContext) -> None:
    """/batches: the recent batches, one line each, with their state and who did what."""
    chat = update.effective_chat
    if chat is None or not await _admin(update, context):
        return
    found = await money(context).recent_batches(BATCHES_LISTED)
    if not found:
        await reply(update, context, "batches.none")
        return
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    zone = context.runtime.settings.timezone

    def when(seconds: int | None) -> str:
        if seconds is None:
            return "-"
        return texts.when(language, datetime.fromtimestamp(seconds, UTC), zone)

    lines = [texts.get(language, "batches.header")]
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
            texts.get(
                language,
                "batches.line",
                batch=batch.period_key,
                state=texts.get(language, f"batches.state.{state}"),
                count=batch.line_count,
                total=texts.money(language, batch.total_fen),
                announced=when(batch.announced_at),
                paid=when(batch.paid_at),
                paid_by=batch.paid_by if batch.paid_by is not None else "-",
            )
        )
    for piece in split_message("\n".join(lines)):
        await context.bot.send_message(chat.id, piece)


async def batch_command(update: Update, context: BotContext) -> None:
    """/batch <key>: a copy of the batch's files, same bytes, without a mark-paid button."""
    chat = update.effective_chat
    if chat is None or not await _admin(update, context):
        return
    args = context.args or []
    if len(args) != 1:
        await reply(update, context, "batch.usage")
        return
    outcome = await money(context).batch_files(args[0])
    if outcome is None or outcome.files is None:
        await reply(update, context, "batch.unknown", batch=args[0])
        return
    if not await _send_files(context, chat.id, outcome, copy=True):
        await reply(update, context, "batch.unknown", batch=args[0])


async def on_mark_paid(update: Update, context: BotContext) -> None:
    """An admin's "mark paid" button under a payout file: the first press marks it (and the
    riders are told in that transaction); any later press says who marked it and when."""
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
    if isinstance(query.message, Message) and outcome.status == "paid":
        with contextlib.suppress(BadRequest):
            await query.message.edit_reply_markup(None)
    if outcome.marked:
        await query.answer(texts.get(language, "payout.marked", batch=outcome.period_key or "-"))
    elif outcome.status == "paid" and outcome.paid_at is not None:
        zone = context.runtime.settings.timezone
        await query.answer(
            texts.get(
                language,
                "payout.already_paid",
                batch=outcome.period_key or "-",
                admin=outcome.paid_by or "-",
                when=texts.when(language, datetime.fromtimestamp(outcome.paid_at, UTC), zone),
            ),
            show_alert=True,
        )
    else:
        await query.answer(texts.get(language, "payout.not_markable"), show_alert=True)
