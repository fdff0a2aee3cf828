"""The moderators' side: one card per report, one tap to decide, /queue, /mods, reminders.

Cards leave through one sender task, oldest report first, at the group's pace; a card not
yet sent (a restart, Telegram down) stays in the database until it is. Every button press
is checked by services/moderation.py: who pressed it and whether the report is still open.

Callback data: `m:<verb>:<report id>[:<argument>]`, verbs: ap (approve at fen), cf (confirm
a large approval), rj (show reasons), rr (reject with reason), dp (show duplicates),
dd (duplicate of report), ask, bk (back to the decision buttons), ph (more photos), pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import filters

from handlers.common import BotApplication, BotContext, language_of
from handlers.money import ask_payee
from handlers.speak import answer_button
from locales import Texts
from services.moderation import REJECT_REASONS, Card, Decided, Moderation, Problem, Refused
from settings import Settings

log = logging.getLogger(__name__)

CALLBACK = "m:"
ASK_MARK = "✍️"  # every language's ask prompt starts with it (see moderation.ask_prompt)


class _AskPromptReply(filters.MessageFilter):
    """A reply to the bot's "type your question" prompt; other replies go to other handlers."""

    def filter(self, message: Message) -> bool:
        prompt = message.reply_to_message
        return (
            prompt is not None
            and prompt.from_user is not None
            and prompt.from_user.is_bot
            and (prompt.text or "").startswith(ASK_MARK)
        )


ASK_PROMPT_REPLY = _AskPromptReply()
REFERENCE = re.compile(r"R-\d{8}-\d{4,}")
CAPTION_LIMIT = 1024
QUOTE_LIMIT = 200  # of a question or an answer on the card
SENDER_RETRY_SECONDS = 5.0
UNSENDABLE = 0  # card_message_id of a card Telegram refused


def moderation(context: BotContext) -> Moderation:
    return context.runtime.moderation


# --- rendering --------------------------------------------------------------------------


def caption(texts: Texts, settings: Settings, language: str, card: Card) -> str:
    """The card's text: everything needed to judge the report, then its state."""

    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    zone = settings.timezone
    category = settings.programme.category(card.category or "")
    lines = [
        ("🚨 " if category and category.urgent else "")
        + t(
            "card.title",
            reference=card.reference,
            category=category.name(language) if category else "-",
        ),
        t(
            "card.times",
            submitted=texts.when(language, card.submitted_at, zone),
            deadline=texts.when(language, card.deadline_at, zone),
        ),
    ]
    osm = ""
    if card.latitude is not None and card.longitude is not None:
        lat, lon = f"{card.latitude:.5f}", f"{card.longitude:.5f}"
        lines.append(t("card.location", latitude=lat, longitude=lon))
        lines.append(amap_link(card.reference, lat, lon))
        osm = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"
    if card.photo_distance_m is not None:
        lines.append(t("card.photo_distance", metres=round(card.photo_distance_m)))
    approved, rejected, total = card.track
    lines.append(t("card.track", approved=approved, rejected=rejected, total=total))
    flags = []
    if card.not_fresh:
        flags.append(t("card.flag.not_fresh"))
    if card.mismatch:
        flags.append(t("card.flag.mismatch"))
    if card.lookalikes:
        flags.append(t("card.flag.lookalike", references=_some(card.lookalikes)))
    if card.nearby:
        references = _some([reference for _, reference in card.nearby])
        flags.append(
            t(
                "card.flag.nearby",
                references=references,
                metres=settings.programme.duplicate_radius_m,
            )
        )
    if flags:
        lines.append("⚠️ " + " · ".join(flags))
    if card.photo_count > 1:
        lines.append(t("card.photos", count=card.photo_count))
    if card.question:
        lines.append(t("card.question", question=_short(card.question, QUOTE_LIMIT)))
    if card.answer:
        lines.append(t("card.answer", answer=_short(card.answer, QUOTE_LIMIT)))
    lines.append(state_line(texts, settings, language, card))
    description = t("card.description", description=card.description) if card.description else ""
    if osm and len("\n".join(filter(None, [*lines, osm, description]))) <= CAPTION_LIMIT:
        lines.insert(4, osm)  # after the Amap link, when the rider's words still fit whole
    head = "\n".join(lines)
    if not description:
        return _short(head, CAPTION_LIMIT)
    return _short(f"{head}\n{_short(description, CAPTION_LIMIT - len(head) - 1)}", CAPTION_LIMIT)


def amap_link(reference: str, latitude: str, longitude: str) -> str:
    """An Amap marker that opens the app on a phone; `coordinate=wgs84` takes GPS as-is."""
    return (
        f"https://uri.amap.com/marker?position={longitude},{latitude}"
        f"&coordinate=wgs84&name={reference}&callnative=1"
    )


def _short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _some(references: list[str] | tuple[str, ...], shown: int = 5) -> str:
    """A few references, and how many more there are."""
    more = len(references) - shown
    return ", ".join(references[:shown]) + (f" (+{more})" if more > 0 else "")


def state_line(texts: Texts, settings: Settings, language: str, card: Card) -> str:
    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    when = texts.when(language, card.decided_at, settings.timezone) if card.decided_at else ""
    if card.status == "approved":
        return t(
            "card.state.approved",
            amount=texts.money(language, card.reward_fen or 0),
            points=card.points or 0,
            moderator=card.decided_by,
            when=when,
        )
    if card.status == "rejected":
        reason = t(f"reject.{card.reject_reason}")
        return t("card.state.rejected", reason=reason, moderator=card.decided_by, when=when)
    if card.status == "duplicate":
        return t(
            "card.state.duplicate",
            original=card.duplicate_reference or "-",
            moderator=card.decided_by,
            when=when,
        )
    if card.status == "needs_info":
        return t("card.state.needs_info")
    if card.status == "pending" and card.proposed_by is not None:
        return t(
            "card.state.proposed",
            amount=texts.money(language, card.proposed_fen or 0),
            moderator=card.proposed_by,
        )
    if card.status == "pending":
        return t("card.state.pending")
    return t(f"status.{card.status}")


def decision_buttons(
    texts: Texts, settings: Settings, language: str, card: Card
) -> InlineKeyboardMarkup | None:
    """The buttons of an open card; None once it is decided."""
    if card.status != "pending":
        return None

    def button(
        key: str, verb: str, argument: object = "", **params: object
    ) -> InlineKeyboardButton:
        suffix = f":{argument}" if argument != "" else ""
        return InlineKeyboardButton(
            texts.get(language, key, **params),
            callback_data=f"{CALLBACK}{verb}:{card.report_id}{suffix}",
        )

    rows: list[list[InlineKeyboardButton]] = []
    if card.proposed_by is not None:
        amount = texts.money(language, card.proposed_fen or 0)
        rows.append([button("card.button.confirm", "cf", amount=amount)])
    else:
        category = settings.programme.category(card.category or "")
        default = category.default_reward_fen if category else None
        rows.append(
            [
                button(
                    "card.button.approve_default" if fen == default else "card.button.approve",
                    "ap",
                    fen,
                    yuan=fen // 100,
                )
                for fen in settings.programme.reward_tiers_fen
            ]
        )
    rows.append(
        [
            button("card.button.reject", "rj"),
            button("card.button.duplicate", "dp"),
            button("card.button.ask", "ask"),
        ]
    )
    extras = [button("card.button.pin", "pin")]
    if card.photo_count > 1:
        extras.insert(0, button("card.button.photos", "ph", count=card.photo_count))
    rows.append(extras)
    return InlineKeyboardMarkup(rows)


def choice_buttons(
    texts: Texts, language: str, card: Card, verb: str, choices: list[tuple[str, str]]
) -> InlineKeyboardMarkup:
    """A second-level menu (reasons, duplicates) with a way back."""
    rows = [
        [InlineKeyboardButton(label, callback_data=f"{CALLBACK}{verb}:{card.report_id}:{argument}")]
        for label, argument in choices
    ]
    rows.append(
        [
            InlineKeyboardButton(
                texts.get(language, "card.button.back"),
                callback_data=f"{CALLBACK}bk:{card.report_id}",
            )
        ]
    )
    return InlineKeyboardMarkup(rows)


# --- sending cards ----------------------------------------------------------------------


async def send_card(
    context: BotContext | BotApplication, chat_id: int, card: Card, language: str
) -> Message:
    """One message: the first photo (re-encoded, no metadata), the caption and the buttons."""
    runtime = context.bot_data["runtime"]
    texts, settings = runtime.texts, runtime.settings
    jpeg, file_id = await runtime.moderation.photo(card.report_id, 1)
    message = await context.bot.send_photo(
        chat_id,
        photo=file_id or jpeg,
        caption=caption(texts, settings, language, card),
        reply_markup=decision_buttons(texts, settings, language, card),
    )
    if file_id is None and message.photo:
        await runtime.moderation.remember_photo_upload(card.report_id, 1, message.photo[-1].file_id)
    return message


async def card_sender(app: BotApplication, wake: asyncio.Event) -> None:
    """Send every card still to send, oldest first, then wait to be woken by a submission."""
    runtime = app.bot_data["runtime"]
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
                try:
                    message = await send_card(app, chat_id, card, language)
                except BadRequest as exc:
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


async def refresh_card(context: BotContext, card: Card, pressed: Message | None) -> None:
    """Show a card's new state wherever it is: the moderator chat, and where it was pressed."""
    runtime = context.runtime
    texts, settings = runtime.texts, runtime.settings
    places = set()
    if card.card_chat_id is not None and card.card_message_id not in (None, UNSENDABLE):
        places.add((card.card_chat_id, card.card_message_id))
    if pressed is not None:
        places.add((pressed.chat.id, pressed.message_id))
    for chat_id, message_id in places:
        language = runtime.languages.default
        with contextlib.suppress(BadRequest):  # unchanged, or the message is gone
            await context.bot.edit_message_caption(
                chat_id=chat_id,
                message_id=message_id,
                caption=caption(texts, settings, language, card),
                reply_markup=decision_buttons(texts, settings, language, card),
            )


# --- after a decision ------------------------------------------------------------------


async def after_decision(context: BotContext, decided: Decided) -> None:
    """The rider's notice is already queued with the decision; a first reward also needs
    payout details."""
    card = decided.card
    if card.status == "approved" and card.rider_telegram_id is not None:
        runtime = context.runtime
        if await runtime.money.needs_payee(card.rider_telegram_id):
            await ask_payee(context, card.rider_telegram_id)


# --- buttons ----------------------------------------------------------------------------


async def on_button(update: Update, context: BotContext) -> None:
    """Every moderator button: check who pressed it, then decide or open a menu."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    parts = (query.data or "").split(":")
    verb = parts[1] if len(parts) > 2 else ""
    report_id = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else -1
    argument = parts[3] if len(parts) > 3 else ""
    texts = context.runtime.texts
    language = await language_of(context, user)
    service = moderation(context)
    if not await service.is_moderator(user.id):
        await answer_button(
            query, texts.get(language, "moderation.refused.not_moderator"), show_alert=True
        )
        return
    card = await service.card(report_id)
    if card is None:
        await answer_button(query, texts.get(language, "button.expired"))
        return
    pressed = query.message if isinstance(query.message, Message) else None
    settings = context.runtime.settings
    if verb in ("ap", "cf", "rr", "dd"):
        outcome: Decided | Refused
        if verb == "ap":
            outcome = await service.approve(report_id, user.id, _number(argument))
        elif verb == "cf":
            outcome = await service.confirm(report_id, user.id)
        elif verb == "rr":
            outcome = await service.reject(report_id, user.id, argument)
        else:
            outcome = await service.mark_duplicate(report_id, user.id, _number(argument))
        if isinstance(outcome, Refused):
            await answer_button(query, refusal_text(texts, language, outcome), show_alert=True)
            await refresh_card(context, await service.card(report_id) or card, pressed)
            return
        await answer_button(query, texts.get(language, f"moderation.done.{outcome.action}"))
        await after_decision(context, outcome)
        await refresh_card(context, outcome.card, pressed)
        if pressed is not None and pressed.chat.type == "private":
            await send_next(context, pressed.chat.id, language, outcome.card)
        return
    if card.status != "pending":
        refused = Refused(Problem.ALREADY_DECIDED, card.decided_by, card.status)
        await answer_button(query, refusal_text(texts, language, refused), show_alert=True)
        await refresh_card(context, card, pressed)
        return
    await answer_button(query)
    if pressed is None:
        return
    if verb == "rj":
        choices = [(texts.get(language, f"reject.{reason}"), reason) for reason in REJECT_REASONS]
        await _edit_markup(pressed, choice_buttons(texts, language, card, "rr", choices))
    elif verb == "dp":
        choices = [(reference, str(other_id)) for other_id, reference in card.nearby[:6]]
        if not choices:
            await context.bot.send_message(
                pressed.chat.id,
                texts.get(language, "moderation.no_duplicates", reference=card.reference),
            )
            return
        await _edit_markup(pressed, choice_buttons(texts, language, card, "dd", choices))
    elif verb == "bk":
        await _edit_markup(pressed, decision_buttons(texts, settings, language, card))
    elif verb == "ask":
        await context.bot.send_message(
            pressed.chat.id,
            texts.get(language, "moderation.ask_prompt", reference=card.reference),
            reply_markup=ForceReply(selective=True),
        )
    elif verb == "ph":
        await send_more_photos(context, pressed.chat.id, card)
    elif verb == "pin" and card.latitude is not None and card.longitude is not None:
        await context.bot.send_location(pressed.chat.id, card.latitude, card.longitude)


async def send_more_photos(context: BotContext, chat_id: int, card: Card) -> None:
    """Photos 2..n of a report, as one album."""
    media = []
    for position in range(2, card.photo_count + 1):
        jpeg, file_id = await moderation(context).photo(card.report_id, position)
        if file_id or jpeg:
            media.append(InputMediaPhoto(file_id or jpeg or b"", caption=card.reference))
    if media:
        await context.bot.send_media_group(chat_id, media)


async def on_question(update: Update, context: BotContext) -> None:
    """A moderator's reply to the ask prompt: the question goes to the rider."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return
    prompt = message.reply_to_message
    found = REFERENCE.search(prompt.text or "")
    if not found or prompt.from_user is None or prompt.from_user.id != context.bot.id:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    outcome = await moderation(context).ask(found.group(0), user.id, message.text or "")
    if isinstance(outcome, Refused):
        await message.reply_text(refusal_text(texts, language, outcome))
        return
    await message.reply_text(texts.get(language, "moderation.done.ask"))
    await refresh_card(context, outcome.card, None)


def refusal_text(texts: Texts, language: str, refused: Refused) -> str:
    status = texts.get(language, f"status.{refused.status}") if refused.status in _STATUSES else ""
    return texts.get(
        language,
        f"moderation.refused.{refused.problem.value}",
        moderator=refused.decided_by or "-",
        status=status,
    )


_STATUSES = ("approved", "rejected", "duplicate", "needs_info", "reversed", "withdrawn", "pending")


def _number(text: str) -> int:
    return int(text) if text.isdigit() else -1


async def _edit_markup(message: Message, markup: InlineKeyboardMarkup | None) -> None:
    with contextlib.suppress(BadRequest):
        await message.edit_reply_markup(markup)


# --- commands ---------------------------------------------------------------------------


async def queue_command(update: Update, context: BotContext) -> None:
    """/queue (moderators, private chat): pending reports oldest first, one card at a time."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    service = moderation(context)
    if not await service.is_moderator(user.id):
        await context.bot.send_message(
            chat.id, texts.get(language, "moderation.refused.not_moderator")
        )
        return
    await send_next(context, chat.id, language, None)


async def send_next(context: BotContext, chat_id: int, language: str, after: Card | None) -> None:
    """The next pending report's card in a moderator's private chat, or 'all done'."""
    card = await moderation(context).next_pending(after)
    if card is None:
        texts = context.runtime.texts
        await context.bot.send_message(chat_id, texts.get(language, "moderation.queue_empty"))
        return
    await send_card(context, chat_id, card, language)


async def mods_command(update: Update, context: BotContext) -> None:
    """/mods, /mods add <id>, /mods remove <id> (admins)."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    service = moderation(context)
    if not service.is_admin(user.id):
        await context.bot.send_message(chat.id, texts.get(language, "admin.only"))
        return
    args = context.args or []
    if len(args) == 2 and args[0] in ("add", "remove") and args[1].isdigit():
        target = int(args[1])
        if args[0] == "add":
            changed = await service.add_moderator(target, user.id)
        else:
            changed, voided = await service.remove_moderator(target)
            for report_id in voided:  # their proposals no longer count: show the tiers again
                card = await service.card(report_id)
                if card is not None:
                    await refresh_card(context, card, None)
        key = f"mods.{args[0]}.{'done' if changed else 'unchanged'}"
        await context.bot.send_message(chat.id, texts.get(language, key, id=target))
        return
    if args:
        await context.bot.send_message(chat.id, texts.get(language, "mods.usage"))
        return
    configured, added = await service.moderators()
    await context.bot.send_message(
        chat.id,
        texts.get(
            language,
            "mods.list",
            configured=", ".join(map(str, sorted(configured))) or "-",
            added=", ".join(map(str, added)) or "-",
        ),
    )


async def promise_job(context: BotContext) -> None:
    """Keep the 24-hour promise: digests, escalations, riders' notices, expired questions."""
    runtime = context.runtime
    check = await runtime.moderation.promise_check()
    for report_id in check.returned:  # back to pending: the card shows its buttons again
        card = await runtime.moderation.card(report_id)
        if card is not None:
            await refresh_card(context, card, None)
    if check.digest or check.escalated or check.breached or check.reminded or check.returned:
        log.info(
            "promise: digest %d, escalated %d, breached %d, questions reminded %d, expired %d",
            check.digest,
            check.escalated,
            check.breached,
            check.reminded,
            len(check.returned),
        )
