"""Review cards in Telegram: sent once per report, kept up to date, decided by button.

Cards leave through one sender task, oldest report first (at the group's pace); a card not
yet sent (a restart, Telegram down) stays in the database until it is. A decision button maps
to one service call (`DECISIONS`); services/moderation.py checks who pressed it and whether
the report is still open, and queues the rider's notice with the decision. Menu buttons
(reasons, duplicates, ask, photos, pin) change nothing and only show more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

from telegram import ForceReply, InputMediaPhoto, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import filters

from handlers import review_card as rc
from handlers.access import Audience, allow
from handlers.callbacks import Pressed, Verb, parse
from handlers.common import BotApplication, BotContext, Runtime
from handlers.infra.transport import sent_maybe
from handlers.prompts import PromptReply
from handlers.review_card import UNSENDABLE, view
from handlers.speak import Speaker
from handlers.widgets import refresh_card
from services.moderation import REJECT_REASONS, Card, Decided, Declined, Moderation, Problem
from services.outbox import Notice
from services.reporting import ReportStatus

log = logging.getLogger(__name__)

ASK_MARK = "✍️"  # every language's ask prompt starts with it (see moderation.ask_prompt)
ASK_PROMPT_REPLY = PromptReply(ASK_MARK)
REFERENCE = re.compile(r"R-\d{8}-\d{4,}")
SENDER_RETRY_SECONDS = 5.0

Decide = Callable[[Moderation, Pressed, int], Awaitable[Decided | Declined]]

# What each decision button does: the one service call it makes.
DECISIONS: dict[Verb, Decide] = {
    rc.APPROVE: lambda service, press, moderator: service.approve(
        press.item, moderator, press.number() or -1
    ),
    rc.CONFIRM: lambda service, press, moderator: service.confirm(press.item, moderator),
    rc.REJECT: lambda service, press, moderator: service.reject(
        press.item, moderator, press.argument
    ),
    rc.DUPLICATE: lambda service, press, moderator: service.mark_duplicate(
        press.item, moderator, press.number() or -1
    ),
}


# --- sending and refreshing cards -------------------------------------------------------


async def send_card(
    context: BotContext | BotApplication,
    chat_id: int,
    card: Card,
    language: str,
    *,
    sent_before: bool = False,
) -> Message:
    """One message: the first photo (re-encoded, no metadata), the caption and the buttons;
    `sent_before` says on the card that an earlier copy may be above it."""
    runtime: Runtime = context.bot_data["runtime"]
    drawn = view(runtime, language)
    jpeg, file_id = await runtime.moderation.photo(card.report_id, 1)
    photo = file_id or jpeg
    assert photo is not None, f"report {card.reference} has no photo"
    caption = drawn.caption(card)
    if sent_before:
        caption = f"{drawn.t('card.sent_again')}\n{caption}"
    message = await context.bot.send_photo(
        chat_id,
        photo=photo,
        caption=caption,
        reply_markup=drawn.decision_buttons(card),
    )
    if file_id is None and message.photo:
        await runtime.moderation.remember_photo_upload(card.report_id, 1, message.photo[-1].file_id)
    return message


async def card_sender(app: BotApplication, wake: asyncio.Event) -> None:
    """Send every card still to send, oldest first, then wait to be woken by a submission."""
    runtime: Runtime = app.bot_data["runtime"]
    chat_id = runtime.settings.moderator_chat_id
    if chat_id is None:
        log.warning("MODERATOR_CHAT_ID is not set: review cards are not sent")
        return
    language = runtime.languages.default
    while True:
        sent_any = False
        try:
            for report_id in await runtime.moderation.cards_to_send():
                card = await runtime.moderation.card(report_id)
                if card is None:
                    continue
                # A send whose fate is unknown (the process died, the connection dropped) is
                # sent again: a report without a card would miss its 24 hours, a second copy
                # only costs a glance, and says so. Both copies' buttons decide it once.
                sent_before = await runtime.moderation.begin_card(report_id)
                try:
                    message = await send_card(app, chat_id, card, language, sent_before=sent_before)
                except TelegramError as exc:
                    if not sent_maybe(exc):
                        await runtime.moderation.card_refused(report_id)
                    if not isinstance(exc, BadRequest):
                        raise
                    # Telegram will never take this card; don't let it hold up the others.
                    # The report stays pending, in /queue and in the reminder digests.
                    log.error("card for %s refused by Telegram: %s", card.reference, exc.message)
                    await runtime.moderation.card_sent(report_id, chat_id, UNSENDABLE)
                    continue
                await runtime.moderation.card_sent(report_id, chat_id, message.message_id)
                sent_any = True
        except TelegramError as exc:
            log.warning("card not sent, retrying in %ss: %r", SENDER_RETRY_SECONDS, exc)
            await asyncio.sleep(SENDER_RETRY_SECONDS)
            continue
        except Exception:
            # Anything else (a database hiccup, a bug on one card) must not end the sender.
            log.exception("card sender failed; retrying in %ss", SENDER_RETRY_SECONDS)
            await asyncio.sleep(SENDER_RETRY_SECONDS)
            continue
        if not sent_any:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=60)
            wake.clear()


async def send_next(context: BotContext, chat_id: int, language: str, after: Card | None) -> None:
    """The next pending report's card in a moderator's private chat, or 'all done'."""
    card = await context.runtime.moderation.next_pending(after)
    if card is None:
        await context.runtime.outbox.send(
            Notice(chat_id, "moderation.queue_empty", language=language)
        )
        return
    await send_card(context, chat_id, card, language)


# --- buttons ----------------------------------------------------------------------------


@allow(Audience.MODERATORS)
async def on_decision(update: Update, context: BotContext) -> None:
    """approve / confirm / reject with a reason / duplicate of: one decision, made once."""
    query = update.callback_query
    press = parse(query.data if query else None)
    user = update.effective_user
    if query is None or press is None or user is None or press.verb not in DECISIONS:
        return
    say = Speaker(update, context)
    service = context.runtime.moderation
    pressed = query.message if isinstance(query.message, Message) else None
    outcome = await DECISIONS[press.verb](service, press, user.id)
    if isinstance(outcome, Declined):
        await say.answer(await refusal(say, outcome), popup=True)
        card = await service.card(press.item)
        if card is not None:
            await refresh_card(context, card, pressed)
        return
    await say.alert(f"moderation.done.{outcome.action}")
    await refresh_card(context, outcome.card, pressed)
    if pressed is not None and pressed.chat.type == "private":
        await send_next(context, pressed.chat.id, await say.language(), outcome.card)


@allow(Audience.MODERATORS)
async def on_menu(update: Update, context: BotContext) -> None:
    """Buttons that show more (reasons, duplicates, the ask prompt, photos, the pin)."""
    query = update.callback_query
    press = parse(query.data if query else None)
    if query is None or press is None:
        return
    say = Speaker(update, context)
    card = await context.runtime.moderation.card(press.item)
    if card is None:
        await say.alert("button.expired")
        return
    pressed = query.message if isinstance(query.message, Message) else None
    if card.status != ReportStatus.PENDING:
        refused = Declined(Problem.ALREADY_DECIDED, card.decided_by, card.status)
        await say.answer(await refusal(say, refused), popup=True)
        await refresh_card(context, card, pressed)
        return
    await say.alert()
    if pressed is None:
        return
    drawn = view(context.runtime, await say.language())
    if press.verb is rc.REJECT_MENU:
        reasons: list[tuple[str, str | int]] = [
            (drawn.t(f"reject.{reason}"), reason) for reason in REJECT_REASONS
        ]
        await _edit_markup(pressed, drawn.choice_buttons(card, rc.REJECT, reasons))
    elif press.verb is rc.DUPLICATE_MENU:
        originals: list[tuple[str, str | int]] = [
            (reference, other_id) for other_id, reference in card.nearby[:6]
        ]
        if not originals:
            await say.reply("moderation.no_duplicates", reference=card.reference)
            return
        await _edit_markup(pressed, drawn.choice_buttons(card, rc.DUPLICATE, originals))
    elif press.verb is rc.BACK:
        await _edit_markup(pressed, drawn.decision_buttons(card))
    elif press.verb is rc.ASK:
        await say.reply(
            "moderation.ask_prompt",
            reference=card.reference,
            reply_markup=ForceReply(selective=True),
        )
    elif press.verb is rc.PHOTOS:
        await send_more_photos(context, pressed.chat.id, card)
    elif press.verb is rc.PIN and card.latitude is not None and card.longitude is not None:
        await context.bot.send_location(pressed.chat.id, card.latitude, card.longitude)


async def send_more_photos(context: BotContext, chat_id: int, card: Card) -> None:
    """Photos 2..n of a report, as one album."""
    media = []
    for position in range(2, card.photo_count + 1):
        jpeg, file_id = await context.runtime.moderation.photo(card.report_id, position)
        if file_id or jpeg:
            media.append(InputMediaPhoto(file_id or jpeg or b"", caption=card.reference))
    if media:
        await context.bot.send_media_group(chat_id, media)


# --- the moderator's question -------------------------------------------------------------


@allow(Audience.MODERATORS)
async def on_question(update: Update, context: BotContext) -> None:
    """A moderator's reply to the ask prompt: the question goes to the rider."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return
    found = REFERENCE.search(message.reply_to_message.text or "")
    if not found:
        return
    say = Speaker(update, context)
    outcome = await context.runtime.moderation.ask(found.group(0), user.id, message.text or "")
    if isinstance(outcome, Declined):
        await say.send(await refusal(say, outcome))
        return
    await say.reply("moderation.done.ask")
    await refresh_card(context, outcome.card)


async def refusal(say: Speaker, refused: Declined) -> str:
    """Why an action changed nothing, in the moderator's language."""
    status = await say.text(f"status.{refused.status}") if refused.status in _STATUSES else ""
    text = await say.text(
        f"moderation.refused.{refused.problem.value}",
        moderator=refused.decided_by or "-",
        status=status,
    )
    return text


_STATUSES = frozenset(ReportStatus) - {ReportStatus.DRAFT, ReportStatus.EXPIRED}


async def _edit_markup(message: Message, markup: object) -> None:
    with contextlib.suppress(BadRequest):
        await message.edit_reply_markup(markup)  # type: ignore[arg-type]


QUESTION_FILTER = ASK_PROMPT_REPLY & filters.TEXT & ~filters.COMMAND


@allow(Audience.MODERATORS)
async def queue_command(update: Update, context: BotContext) -> None:
    """/queue (private chat): pending reports oldest first, one card at a time."""
    chat = update.effective_chat
    if chat is not None:
        await send_next(context, chat.id, await Speaker(update, context).language(), None)
