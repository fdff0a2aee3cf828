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
from telegram.error import BadRequest
from telegram.ext import filters

from handlers import review_card as rc
from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Pressed, Verb, pressed
from handlers.common import BotApplication, BotContext, Runtime
from handlers.infra.card_sender import CardKind, send_cards
from handlers.prompts import PromptReply
from handlers.review_card import view
from handlers.speak import Speaker
from handlers.widgets import DUPLICATE_MARKED, marked, refresh_card
from services.moderation import REJECT_REASONS, Card, Decided, DecisionRefusal, Moderation
from services.outbox import Notice
from services.refusal import Refused
from services.reporting import ReportStatus

log = logging.getLogger(__name__)

ASK_MARK = "✍️"  # every language's ask prompt starts with it (see moderation.ask_prompt)
ASK_PROMPT_REPLY = PromptReply(ASK_MARK)
REFERENCE = re.compile(r"R-\d{8}-\d{4,}")

Decide = Callable[[Moderation, Pressed, int], Awaitable[Decided | Refused[DecisionRefusal]]]

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
    caption = marked(drawn, card, sent_before)
    message = await context.bot.send_photo(
        chat_id,
        photo=photo,
        caption=caption,
        reply_markup=drawn.decision_buttons(card),
    )
    if file_id is None and message.photo:
        await runtime.moderation.remember_photo_upload(card.report_id, 1, message.photo[-1].file_id)
    return message


def card_kind(app: BotApplication, chat_id: int, wake: asyncio.Event) -> CardKind[Card]:
    """Review cards, for the one card sender: pending reports without a card, oldest first."""
    runtime: Runtime = app.bot_data["runtime"]
    language = runtime.languages.default

    async def send(chat: int, card: Card, sent_before: bool) -> Message:
        return await send_card(app, chat, card, language, sent_before=sent_before)

    return CardKind(
        name="review card",
        due=lambda: runtime.moderation.cards_to_send(),
        load=lambda report_id: runtime.moderation.card(report_id),
        label=lambda card: card.reference,
        chat=lambda card: chat_id,
        send=send,
        begin=lambda report_id: runtime.moderation.begin_card(report_id),
        refused=lambda report_id: runtime.moderation.card_refused(report_id),
        sent=runtime.moderation.card_sent,
        wake=wake,
    )


async def card_sender(app: BotApplication, wake: asyncio.Event) -> None:
    """Send every card still to send, oldest first, then wait to be woken by a submission.
    A card Telegram refused stays pending, in /queue and in the reminder digests."""
    runtime: Runtime = app.bot_data["runtime"]
    chat_id = runtime.settings.moderator_chat_id
    if chat_id is None:
        log.warning("MODERATOR_CHAT_ID is not set: review cards are not sent")
        return
    await send_cards(card_kind(app, chat_id, wake))


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
@pressed
async def on_decision(update: Update, context: BotContext, press: ButtonPress) -> None:
    """approve / confirm / reject with a reason / duplicate of: one decision, made once."""
    user = press.user
    if press.verb not in DECISIONS:
        return
    say = Speaker(update, context)
    service = context.runtime.moderation
    message = press.message
    outcome = await DECISIONS[press.verb](service, press, user.id)
    if isinstance(outcome, Refused):
        await say.answer(await refusal(say, outcome), popup=True)
        card = await service.card(press.item)
        if card is not None:
            await refresh_card(context, card, message)
        return
    await say.alert(f"moderation.done.{outcome.action}")
    private = message if message is not None and message.chat.type == "private" else None
    if private is not None and outcome.card.status == ReportStatus.PENDING:  # a proposal
        await service.keep_in_view(press.item, private.chat.id, private.message_id)
    await refresh_card(context, outcome.card, message)
    if press.verb is rc.DUPLICATE and press.argument.isdigit():
        for hook in DUPLICATE_MARKED:
            await hook(context, int(press.argument))
    if private is not None:
        await send_next(context, private.chat.id, await say.language(), outcome.card)


@allow(Audience.MODERATORS)
@pressed
async def on_menu(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Buttons that show more (reasons, duplicates, the ask prompt, photos, the pin)."""
    say = Speaker(update, context)
    card = await context.runtime.moderation.card(press.item)
    if card is None:
        await say.alert("button.expired")
        return
    message = press.message
    if card.status != ReportStatus.PENDING:
        refused = Refused(
            DecisionRefusal.ALREADY_DECIDED, state=card.status, decided_by=card.decided_by
        )
        await say.answer(await refusal(say, refused), popup=True)
        await refresh_card(context, card, message)
        return
    await say.alert()
    if message is None:
        return
    drawn = view(context.runtime, await say.language())
    if press.verb is rc.REJECT_MENU:
        reasons: list[tuple[str, str | int]] = [
            (drawn.t(f"reject.{reason}"), reason) for reason in REJECT_REASONS
        ]
        await _edit_markup(message, drawn.choice_buttons(card, rc.REJECT, reasons))
    elif press.verb is rc.DUPLICATE_MENU:
        originals: list[tuple[str, str | int]] = [
            (reference, other_id) for other_id, reference in card.nearby[:6]
        ]
        if not originals:
            await say.reply("moderation.no_duplicates", reference=card.reference)
            return
        await _edit_markup(message, drawn.choice_buttons(card, rc.DUPLICATE, originals))
    elif press.verb is rc.BACK:
        await _edit_markup(message, drawn.decision_buttons(card))
    elif press.verb is rc.ASK:
        await say.reply(
            "moderation.ask_prompt",
            reference=card.reference,
            reply_markup=ForceReply(selective=True),
        )
    elif press.verb is rc.PHOTOS:
        await send_more_photos(context, message.chat.id, card)
    elif press.verb is rc.VOICES:
        for file_id, _ in card.voices:
            if file_id:
                await context.bot.send_voice(message.chat.id, file_id, caption=card.reference)
    elif press.verb is rc.PIN and card.latitude is not None and card.longitude is not None:
        await context.bot.send_location(message.chat.id, card.latitude, card.longitude)


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
    if isinstance(outcome, Refused):
        await say.send(await refusal(say, outcome))
        return
    await say.reply("moderation.done.ask")
    await refresh_card(context, outcome.card)


async def refusal(say: Speaker, refused: Refused[DecisionRefusal]) -> str:
    """Why an action changed nothing, in the moderator's language."""
    status = await say.text(f"status.{refused.state}") if refused.state in _STATUSES else ""
    decided_by = refused.decided_by
    names = await say.context.runtime.names.of([decided_by] if decided_by else [])
    text = await say.text(
        f"moderation.refused.{refused.reason.value}",
        moderator=names[decided_by].short() if decided_by in names else decided_by or "-",
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
