"""The rider's report: photos, location, category, description, confirm (see services/reporting).

Each answer shows the next step, so a rider who comes back after hours (or after a restart)
sees where they are. Buttons carry the draft id, so a button from an old draft is refused.
"""

from __future__ import annotations

import asyncio
import contextlib

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, NetworkError, TelegramError

from handlers.common import BotContext, language_of
from handlers.moderation import refresh_card
from handlers.money import payee_details
from handlers.start import unknown
from locales import LANGUAGES
from services.photos import DEFAULT_MAX_BYTES, PhotoProblem, PhotoRejected
from services.reporting import Draft, Refusal, Refused, Reporting, Step, Submitted

CALLBACK_PHOTO_LOCATION = "loc:"
CALLBACK_CATEGORY = "cat:"
CALLBACK_SKIP = "skip:"  # skip the description, or keep the one already written
CALLBACK_EDIT = "edit:"  # from the summary back to the description step
CALLBACK_SUBMIT = "sub:"
CALLBACK_CANCEL = "can:"
HELD_PHOTO = "held_photo"  # a photo sent before consent, kept in memory only
ALBUM_SETTLE_SECONDS = 1.0
DOWNLOAD_ATTEMPTS = 3


def workflow(context: BotContext) -> Reporting:
    return context.runtime.reporting


def button_texts(context: BotContext, key: str) -> set[str]:
    """A reply-keyboard label in every language (riders may have switched since)."""
    return {context.runtime.texts.get(language, key) for language in LANGUAGES}


def main_keyboard(context: BotContext, language: str) -> ReplyKeyboardMarkup:
    """The persistent keyboard: start a report; places near me (handlers/places.py)."""
    label = context.runtime.texts.get(language, "keyboard.report")
    nearby = context.runtime.texts.get(language, "keyboard.nearby")
    return ReplyKeyboardMarkup([[label, nearby]], resize_keyboard=True, is_persistent=True)


def draft_keyboard(context: BotContext, language: str) -> ReplyKeyboardMarkup:
    texts = context.runtime.texts
    return ReplyKeyboardMarkup(
        [
            [KeyboardButton(texts.get(language, "keyboard.location"), request_location=True)],
            [texts.get(language, "keyboard.cancel")],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


async def send(update: Update, context: BotContext, text: str, markup: object = None) -> None:
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, text, reply_markup=markup)  # type: ignore[arg-type]


async def show_step(update: Update, context: BotContext, draft: Draft, lead: str = "") -> None:
    """Tell the rider what we have and ask for the draft's next step, with its buttons."""
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    programme = context.runtime.settings.programme

    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    lines = [lead] if lead else []
    if draft.description and draft.step in (Step.PHOTOS, Step.CATEGORY):
        lines.append(t("report.description_so_far", description=draft.description))
    markup: object
    if draft.step == Step.PHOTOS:
        lines.append(t("report.ask_location", count=draft.photo_count, max=programme.max_photos))
        markup = draft_keyboard(context, language)
        if draft.photo_gps is not None:
            await send(update, context, "\n".join(lines), markup)
            lat, lon = draft.photo_gps
            lines = [
                t("report.offer_photo_location", latitude=f"{lat:.5f}", longitude=f"{lon:.5f}")
            ]
            markup = InlineKeyboardMarkup.from_button(
                InlineKeyboardButton(
                    t("button.use_photo_location"),
                    callback_data=f"{CALLBACK_PHOTO_LOCATION}{draft.id}",
                )
            )
    elif draft.step == Step.CATEGORY:
        if workflow(context).location_mismatch(draft):
            lines.append(t("report.location_mismatch", metres=round(draft.photo_distance_m or 0)))
        lines.append(t("report.ask_category"))
        buttons = [
            InlineKeyboardButton(
                category.name(language),
                callback_data=f"{CALLBACK_CATEGORY}{draft.id}:{category.key}",
            )
            for category in programme.categories
        ]
        markup = InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])
    elif draft.step == Step.DESCRIPTION:
        max_chars = programme.description_max_chars
        if draft.description:
            lines.append(
                t("report.ask_description_kept", description=draft.description, max=max_chars)
            )
        else:
            lines.append(t("report.ask_description", max=max_chars))
        label = t("button.keep") if draft.description else t("button.skip")
        markup = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton(label, callback_data=f"{CALLBACK_SKIP}{draft.id}")
        )
    else:
        lines.append(summary(context, language, draft))
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        t("button.submit"), callback_data=f"{CALLBACK_SUBMIT}{draft.id}"
                    ),
                    InlineKeyboardButton(
                        t("button.cancel"), callback_data=f"{CALLBACK_CANCEL}{draft.id}"
                    ),
                ],
                [
                    InlineKeyboardButton(
                        t("button.edit_description"), callback_data=f"{CALLBACK_EDIT}{draft.id}"
                    )
                ],
            ]
        )
    await send(update, context, "\n".join(lines), markup)


def summary(context: BotContext, language: str, draft: Draft) -> str:
    texts = context.runtime.texts
    category = context.runtime.settings.programme.category(draft.category or "")
    lat, lon = draft.location or (0.0, 0.0)
    return texts.get(
        language,
        "report.summary",
        photos=draft.photo_count,
        latitude=f"{lat:.5f}",
        longitude=f"{lon:.5f}",
        category=category.name(language) if category else "-",
        description=draft.description or texts.get(language, "report.no_description"),
    )


async def refuse(update: Update, context: BotContext, refused: Refused) -> None:
    """Explain a refusal in the rider's language, then show where their draft stands."""
    if refused.reason == Refusal.NOT_CONSENTED:
        from handlers.onboarding import ask_consent  # onboarding imports this module

        await ask_consent(update, context)
        return
    text = await refusal_text(update, context, refused)
    user = update.effective_user
    draft = await workflow(context).draft(user.id) if user else None
    if draft is not None and refused.reason not in (Refusal.STALE_BUTTON,):
        await show_step(update, context, draft, lead=text)
    else:
        await send(update, context, text)


async def refusal_text(update: Update, context: BotContext, refused: Refused) -> str:
    language = await language_of(context, update.effective_user)
    return context.runtime.texts.get(
        language,
        f"report.refused.{refused.reason.value}",
        reference=refused.reference or "",
        limit=refused.limit or 0,
    )


# --- photos -----------------------------------------------------------------------------


async def on_photo(update: Update, context: BotContext) -> None:
    """A photo (as a picture or an image file) starts a report or adds to the draft."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    if message.photo:
        file_id, unique_id, size = (
            message.photo[-1].file_id,
            message.photo[-1].file_unique_id,
            message.photo[-1].file_size,
        )
    elif message.document:
        document = message.document
        if (document.mime_type or "") in ("image/gif",) or (document.mime_type or "").startswith(
            "video/"
        ):
            await refuse_media(update, context)
            return
        file_id, unique_id, size = document.file_id, document.file_unique_id, document.file_size
    else:
        return
    if size is not None and size > DEFAULT_MAX_BYTES:
        await photo_problem(update, context, PhotoProblem.TOO_LARGE)
        return
    reporting = workflow(context)
    question = await context.runtime.moderation.open_question(user.id)
    if question is not None:
        refused = await reporting.take_photo_slot(user.id)
        if refused is not None:
            await refuse(update, context, refused)
            return
        data = await download(context, file_id)
        try:
            refused = await reporting.attach_photo(question, unique_id, data)
        except PhotoRejected as rejected:
            await photo_problem(update, context, rejected.reason)
            return
        if refused is not None:
            await refuse(update, context, refused)
            return
        await answer_question(update, context, message.caption or "📷")
        return
    refusal = await reporting.check_photo_allowed(user.id, unique_id)
    if refusal is not None and refusal.reason == Refusal.NOT_CONSENTED:
        if context.user_data is not None:
            context.user_data[HELD_PHOTO] = message
        await refuse(update, context, refusal)
        return
    if refusal is not None:
        await refuse(update, context, refusal)
        return
    await add_photo(update, context, message, file_id, unique_id)


async def add_photo(
    update: Update, context: BotContext, message: Message, file_id: str, unique_id: str
) -> None:
    """Download, check and store one photo, then show the next step."""
    user = update.effective_user
    assert user is not None
    data = await download(context, file_id)
    try:
        outcome = await workflow(context).add_photo(user.id, unique_id, data)
    except PhotoRejected as rejected:
        await photo_problem(update, context, rejected.reason)
        return
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    if message.caption:
        # The rider's words about the photo (an album carries one, on one of its messages).
        with_caption = await workflow(context).add_to_description(user.id, message.caption)
        if isinstance(with_caption, Refused):
            await send(update, context, await refusal_text(update, context, with_caption))
        else:
            outcome = with_caption
    if message.media_group_id and context.job_queue is not None:
        # An album arrives as one update per photo: answer once, when it has settled.
        name = f"album:{user.id}"
        for job in context.job_queue.get_jobs_by_name(name):
            job.schedule_removal()
        context.job_queue.run_once(
            answer_album,  # type: ignore[arg-type]  # PTB types jobs' context loosely
            ALBUM_SETTLE_SECONDS,
            data=message,
            name=name,
        )
        return
    await answer_photo(update, context, outcome)


async def download(context: BotContext, file_id: str) -> bytes:
    """The file's bytes; a failed download is tried again a few times before giving up."""
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            file = await context.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except BadRequest:
            raise
        except NetworkError:
            if attempt == DOWNLOAD_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


async def answer_album(context: BotContext) -> None:
    """The one answer to an album, as if to its last photo."""
    assert context.job is not None
    message = context.job.data
    assert isinstance(message, Message)
    assert message.from_user is not None
    draft = await workflow(context).draft(message.from_user.id)
    if draft is not None:
        await answer_photo(Update(0, message=message), context, draft)


async def answer_photo(update: Update, context: BotContext, draft: Draft) -> None:
    """After a photo: the count, and the step the draft is at."""
    if draft.step == Step.PHOTOS:
        await show_step(update, context, draft)
        return
    language = await language_of(context, update.effective_user)
    lead = context.runtime.texts.get(
        language,
        "report.photo_received",
        count=draft.photo_count,
        max=context.runtime.settings.programme.max_photos,
    )
    await show_step(update, context, draft, lead=lead)


async def photo_problem(update: Update, context: BotContext, problem: PhotoProblem) -> None:
    language = await language_of(context, update.effective_user)
    text = context.runtime.texts.get(language, f"photo.{problem.value}")
    user = update.effective_user
    draft = await workflow(context).draft(user.id) if user else None
    if draft is not None:
        await show_step(update, context, draft, lead=text)
    else:
        await send(update, context, text)


async def refuse_media(update: Update, context: BotContext) -> None:
    """GIFs, videos, stickers, voice: say what we need instead."""
    language = await language_of(context, update.effective_user)
    await send(update, context, context.runtime.texts.get(language, "photo.unsupported_media"))


# --- location, category, description ----------------------------------------------------


async def on_location(update: Update, context: BotContext) -> None:
    """A shared location, venue or live location sets where the hazard is."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.location is None:
        return
    source = "venue" if message.venue else ("live" if message.location.live_period else "shared")
    outcome = await workflow(context).set_location(
        user.id, message.location.latitude, message.location.longitude, source
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome)


async def on_photo_location(update: Update, context: BotContext) -> None:
    """The one-tap button that uses the position in the photo's EXIF."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    draft_id = _draft_id(query.data, CALLBACK_PHOTO_LOCATION)
    outcome = await workflow(context).use_photo_location(user.id, draft_id)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome)


async def on_category(update: Update, context: BotContext) -> None:
    """A category button."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    draft_part, _, key = (query.data or "").removeprefix(CALLBACK_CATEGORY).partition(":")
    outcome = await workflow(context).set_category(
        user.id, int(draft_part) if draft_part.isdigit() else -1, key
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome)


async def on_skip(update: Update, context: BotContext) -> None:
    """Skip the optional description, or keep the one already written."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    outcome = await workflow(context).set_description(
        user.id, _draft_id(query.data, CALLBACK_SKIP), None
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome)


async def on_edit(update: Update, context: BotContext) -> None:
    """The summary's "change description" button: back to the description step."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    outcome = await workflow(context).edit_description(
        user.id, _draft_id(query.data, CALLBACK_EDIT)
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await drop_buttons(query.message)
        await show_step(update, context, outcome)


async def on_text(update: Update, context: BotContext) -> None:
    """Text in a private chat: a keyboard button, or the rider's words for the description."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    text = message.text
    if text in button_texts(context, "keyboard.cancel"):
        await cancel(update, context)
        return
    if await answer_question(update, context, text):
        return
    if await payee_details(update, context, text):
        return
    draft = await workflow(context).draft(user.id)
    if text in button_texts(context, "keyboard.report") or text in button_texts(
        context, "keyboard.location"
    ):
        await report_command(update, context)
        return
    if draft is None:
        await unknown(update, context)
    elif draft.step == Step.DESCRIPTION:
        outcome = await workflow(context).set_description(user.id, draft.id, text)
        if isinstance(outcome, Refused):
            await refuse(update, context, outcome)
        else:
            await show_step(update, context, outcome)
    else:
        # Riders type what they saw before we ask: keep it as (part of) the description.
        outcome = await workflow(context).add_to_description(user.id, text)
        if isinstance(outcome, Refused):
            await refuse(update, context, outcome)
            return
        language = await language_of(context, user)
        noted = context.runtime.texts.get(language, "report.description_noted")
        await show_step(update, context, outcome, lead=noted)


# --- submit, cancel, commands -----------------------------------------------------------


async def answer_question(update: Update, context: BotContext, text: str) -> bool:
    """If a moderator asked this rider something, `text` is the answer: attach it."""
    user = update.effective_user
    if user is None:
        return False
    answered = await context.runtime.moderation.answer(user.id, text)
    if answered is None:
        return False
    language = await language_of(context, user)
    reference = answered.card.reference
    await send(
        update, context, context.runtime.texts.get(language, "rider.answered", reference=reference)
    )
    await refresh_card(context, answered.card, None)
    return True


async def on_submit(update: Update, context: BotContext) -> None:
    """Submit: the reference comes back at once."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    outcome = await workflow(context).submit(user.id, _draft_id(query.data, CALLBACK_SUBMIT))
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await drop_buttons(query.message)
    context.runtime.card_wake.set()
    await announce_submitted(update, context, outcome)


async def announce_submitted(update: Update, context: BotContext, submitted: Submitted) -> None:
    language = await language_of(context, update.effective_user)
    texts = context.runtime.texts
    key = "report.already_submitted" if submitted.already else "report.submitted"
    hours = context.runtime.settings.programme.review_deadline_hours
    await send(
        update,
        context,
        texts.get(language, key, reference=submitted.reference, hours=hours),
        main_keyboard(context, language),
    )


async def on_cancel_button(update: Update, context: BotContext) -> None:
    """The Cancel button under the summary."""
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    await drop_buttons(query.message)
    await cancel(update, context)


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel: discard the draft."""
    user = update.effective_user
    if user is None:
        return
    language = await language_of(context, user)
    discarded = await workflow(context).cancel(user.id)
    key = "report.cancelled" if discarded else "report.nothing_to_cancel"
    await send(
        update, context, context.runtime.texts.get(language, key), main_keyboard(context, language)
    )


async def report_command(update: Update, context: BotContext) -> None:
    """/report or the 📷 button: continue the draft, or ask for the first photo."""
    user = update.effective_user
    if user is None:
        return
    reporting = workflow(context)
    if not await reporting.has_consented(user.id):
        await refuse(update, context, Refused(Refusal.NOT_CONSENTED))
        return
    draft = await reporting.draft(user.id)
    if draft is not None:
        await show_step(update, context, draft)
        return
    language = await language_of(context, user)
    await send(
        update,
        context,
        context.runtime.texts.get(
            language, "report.ask_photo", max=context.runtime.settings.programme.max_photos
        ),
        main_keyboard(context, language),
    )


async def my_reports(update: Update, context: BotContext) -> None:
    """/my: the latest reports with their status."""
    user = update.effective_user
    if user is None:
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    rows = await workflow(context).my_reports(user.id)
    if not rows:
        await send(update, context, texts.get(language, "my.none"))
        return
    programme = context.runtime.settings.programme
    lines = [texts.get(language, "my.header")]
    for row in rows:
        category = programme.category(row["category"] or "")
        lines.append(
            texts.get(
                language,
                "my.line",
                reference=row["reference"],
                category=category.name(language) if category else "-",
                status=texts.get(language, f"status.{row['status']}"),
            )
        )
    await send(update, context, "\n".join(lines))


async def on_unsupported_media(update: Update, context: BotContext) -> None:
    """Video, GIF, sticker, voice and the like."""
    await refuse_media(update, context)


def _draft_id(data: str | None, prefix: str) -> int:
    value = (data or "").removeprefix(prefix)
    return int(value) if value.isdigit() else -1


async def drop_buttons(message: object) -> None:
    """Remove the buttons of a message that has done its job (best effort)."""
    if isinstance(message, Message):
        with contextlib.suppress(TelegramError):
            await message.edit_reply_markup(None)
