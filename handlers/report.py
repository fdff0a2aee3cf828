"""The rider's report: photos, location, category, description, confirm (see services/reporting).

Each answer shows the next step, so a rider who comes back after hours (or after a restart)
sees where they are. Buttons carry the draft id, so a button from an old draft is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest

from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Pressed, Verb, pressed
from handlers.common import BotContext
from handlers.consent import ask_consent
from handlers.speak import Speaker
from handlers.widgets import (
    HELD_PHOTO,
    HELD_PHOTO_TAKERS,
    download,
    drop_buttons,
    main_keyboard,
    refresh_card,
    unknown,
)
from locales import Phrases
from services.photos import DEFAULT_MAX_BYTES, PhotoProblem, PhotoRejected
from services.refusal import Refused
from services.reporting import Draft, Reporting, ReportRefusal, Step, Submitted

# Buttons under the draft's steps; each carries the draft's id, so an old draft's is refused.
USE_PHOTO_LOCATION = Verb("loc")
CATEGORY = Verb("cat")  # argument: the category key
SKIP = Verb("skip")  # skip the description, or keep the one already written
EDIT = Verb("edit")  # from the summary back to the description step
SUBMIT = Verb("sub")
CANCEL = Verb("can")
ALBUM_SETTLE_SECONDS = 1.0


def reporting(context: BotContext) -> Reporting:
    return context.runtime.reporting


def draft_keyboard(t: Phrases) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [
            [KeyboardButton(t("keyboard.location"), request_location=True)],
            [t("keyboard.cancel")],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


async def show_step(
    update: Update,
    context: BotContext,
    draft: Draft,
    lead: str = "",
    on: Message | None = None,
) -> None:
    """Tell the rider what we have and ask for the draft's next step, with its buttons; in
    place of `on` (the message whose button was pressed) when the step has inline buttons,
    so category, description and confirm are one message that changes."""
    say = Speaker(update, context)
    t = await say.phrases()
    programme = context.runtime.settings.programme
    lines = [lead] if lead else []
    if draft.description and draft.step in (Step.PHOTOS, Step.CATEGORY):
        lines.append(t("report.description_so_far", description=draft.description))
    markup: ReplyKeyboardMarkup | InlineKeyboardMarkup
    if draft.step == Step.PHOTOS:
        lines.append(
            t("report.ask_location", count=draft.photo_count, max=programme.reports.max_photos)
        )
        markup = draft_keyboard(t)
        if draft.photo_gps is not None:
            await say.send("\n".join(lines), reply_markup=markup)
            lat, lon = draft.photo_gps
            lines = [
                t("report.offer_photo_location", latitude=f"{lat:.5f}", longitude=f"{lon:.5f}")
            ]
            markup = InlineKeyboardMarkup.from_button(
                InlineKeyboardButton(
                    t("button.use_photo_location"),
                    callback_data=USE_PHOTO_LOCATION.data(draft.id),
                )
            )
    elif draft.step == Step.CATEGORY:
        if reporting(context).location_mismatch(draft):
            lines.append(t("report.location_mismatch", metres=round(draft.photo_distance_m or 0)))
        lines.append(t("report.ask_category"))
        buttons = [
            InlineKeyboardButton(
                category.name(t.language), callback_data=CATEGORY.data(draft.id, category.key)
            )
            for category in programme.categories
        ]
        markup = InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])
    elif draft.step == Step.DESCRIPTION:
        max_chars = programme.reports.description_max_chars
        if draft.description:
            lines.append(
                t("report.ask_description_kept", description=draft.description, max=max_chars)
            )
        else:
            lines.append(t("report.ask_description", max=max_chars))
        label = t("button.keep") if draft.description else t("button.skip")
        markup = InlineKeyboardMarkup.from_button(
            InlineKeyboardButton(label, callback_data=SKIP.data(draft.id))
        )
    else:
        lines.append(summary(context, t, draft))
        markup = confirm_buttons(t, draft)
    await replace_or_send(say, on, "\n".join(lines), markup)


async def replace_or_send(
    say: Speaker, on: Message | None, text: str, markup: ReplyKeyboardMarkup | InlineKeyboardMarkup
) -> None:
    """`text` in place of the bot's message `on` when it can be (inline buttons only: a
    reply keyboard needs a new message), else as a new message."""
    if on is not None and on.text and isinstance(markup, InlineKeyboardMarkup):
        try:
            await on.edit_text(text, reply_markup=markup)
            return
        except BadRequest:  # too old to edit, or gone: a new message instead
            pass
    await say.send(text, reply_markup=markup)


def confirm_buttons(t: Phrases, draft: Draft) -> InlineKeyboardMarkup:
    """Submit / Cancel, and Change description, under the confirm screen."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t("button.submit"), callback_data=SUBMIT.data(draft.id)),
                InlineKeyboardButton(t("button.cancel"), callback_data=CANCEL.data(draft.id)),
            ],
            [InlineKeyboardButton(t("button.edit_description"), callback_data=EDIT.data(draft.id))],
        ]
    )


def summary(context: BotContext, t: Phrases, draft: Draft) -> str:
    programme = context.runtime.settings.programme
    category = programme.category(draft.category or "")
    text = t(
        "report.summary",
        photos=draft.photo_count,
        place=place_name(context, t, draft),
        category=category.name(t.language) if category else "-",
        description=draft.description or t("report.no_description"),
    )
    if draft.voices:
        text += "\n" + t(
            "report.summary_voices", count=len(draft.voices), seconds=sum(draft.voices)
        )
    return text


def place_name(context: BotContext, t: Phrases, draft: Draft) -> str:
    """Where the report is, as a rider would say it: the venue they shared, else the town
    its location falls in, else the coordinates."""
    lat, lon = draft.location or (0.0, 0.0)
    town = context.runtime.settings.programme.towns.locate(lat, lon).town
    if draft.venue:
        return f"{draft.venue}（{town}）" if town and t.language == "zh" else draft.venue
    if town:
        return t("report.place_in_town", town=town)
    return f"{lat:.5f}, {lon:.5f}"


async def refuse(update: Update, context: BotContext, refused: Refused[ReportRefusal]) -> None:
    """Explain a refusal in the rider's language, then show where their draft stands."""
    if refused.reason == ReportRefusal.NOT_CONSENTED:
        await ask_consent(update, context)
        return
    text = await refusal_text(update, context, refused)
    user = update.effective_user
    draft = await reporting(context).draft(user.id) if user else None
    if draft is not None and refused.reason not in (ReportRefusal.STALE_BUTTON,):
        await show_step(update, context, draft, lead=text)
    else:
        await Speaker(update, context).send(text)


async def refusal_text(update: Update, context: BotContext, refused: Refused[ReportRefusal]) -> str:
    say = Speaker(update, context)
    area = context.runtime.settings.programme.service_area.name(await say.language())
    return await say.text(
        f"report.refused.{refused.reason.value}",
        reference=refused.reference or "",
        limit=refused.limit or 0,
        area=area or await say.text("area.unnamed"),
    )


# --- photos -----------------------------------------------------------------------------


@allow(Audience.ANYONE)
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
    service = reporting(context)
    moderation = context.runtime.moderation
    question = await moderation.open_question(user.id)
    follow_up = False
    if question is None:  # a photo just after a text answer goes with the answer
        question = await moderation.answered_lately(user.id)
        follow_up = question is not None
    if question is not None:
        refused = await service.take_photo_slot(user.id)
        if refused is not None:
            await refuse(update, context, refused)
            return
        data = await download(context, file_id)
        try:
            refused = await service.attach_photo(question, unique_id, data)
        except PhotoRejected as rejected:
            await photo_problem(update, context, rejected.reason)
            return
        if refused is not None:
            await refuse(update, context, refused)
            return
        if follow_up:
            await photo_followed(update, context, question)
        else:
            await answer_question(update, context, message.caption or "📷")
        return
    refusal = await service.check_photo_allowed(user.id, unique_id)
    if refusal is not None and refusal.reason == ReportRefusal.NOT_CONSENTED:
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
        outcome = await reporting(context).add_photo(user.id, unique_id, data)
    except PhotoRejected as rejected:
        await photo_problem(update, context, rejected.reason)
        return
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    if message.caption:
        # The rider's words about the photo (an album carries one, on one of its messages).
        with_caption = await reporting(context).add_to_description(user.id, message.caption)
        if isinstance(with_caption, Refused):
            await Speaker(update, context).send(await refusal_text(update, context, with_caption))
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


async def answer_album(context: BotContext) -> None:
    """The one answer to an album, as if to its last photo."""
    assert context.job is not None
    message = context.job.data
    assert isinstance(message, Message)
    assert message.from_user is not None
    draft = await reporting(context).draft(message.from_user.id)
    if draft is not None:
        await answer_photo(Update(0, message=message), context, draft)


async def answer_photo(update: Update, context: BotContext, draft: Draft) -> None:
    """After a photo: the count, and the step the draft is at."""
    if draft.step == Step.PHOTOS:
        await show_step(update, context, draft)
        return
    lead = await Speaker(update, context).text(
        "report.photo_received",
        count=draft.photo_count,
        max=context.runtime.settings.programme.reports.max_photos,
    )
    await show_step(update, context, draft, lead=lead)


async def photo_problem(update: Update, context: BotContext, problem: PhotoProblem) -> None:
    say = Speaker(update, context)
    text = await say.text(f"photo.{problem.value}")
    user = update.effective_user
    draft = await reporting(context).draft(user.id) if user else None
    if draft is not None:
        await show_step(update, context, draft, lead=text)
    else:
        await say.send(text)


async def refuse_media(update: Update, context: BotContext) -> None:
    """GIFs, videos, stickers, voice: say what we need instead."""
    await Speaker(update, context).reply("photo.unsupported_media")


# --- location, category, description ----------------------------------------------------


@allow(Audience.RIDERS)
async def on_location(update: Update, context: BotContext) -> None:
    """A shared location, venue or live location sets where the hazard is."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.location is None:
        return
    source = "venue" if message.venue else ("live" if message.location.live_period else "shared")
    venue = message.venue.title if message.venue else None
    outcome = await reporting(context).set_location(
        user.id, message.location.latitude, message.location.longitude, source, venue
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome)


DraftChange = Callable[[Reporting, int, Pressed], Awaitable[Draft | Refused[ReportRefusal]]]

# The buttons that move a draft along: the one service call each makes.
DRAFT_BUTTONS: dict[Verb, DraftChange] = {
    USE_PHOTO_LOCATION: lambda service, rider, press: service.use_photo_location(rider, press.item),
    CATEGORY: lambda service, rider, press: service.set_category(rider, press.item, press.argument),
    SKIP: lambda service, rider, press: service.set_description(rider, press.item, None),
    EDIT: lambda service, rider, press: service.edit_description(rider, press.item),
}


@allow(Audience.RIDERS)
@pressed
async def on_draft_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Use the photo's location, a category, skip/keep the description, change it."""
    user = press.user
    if press.verb not in DRAFT_BUTTONS:
        return
    await Speaker(update, context).alert()
    outcome = await DRAFT_BUTTONS[press.verb](reporting(context), user.id, press)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    lead = ""
    if press.verb is CATEGORY and context.runtime.cases.is_urgent(press.argument):
        # Urgent (fire, live wire, injuries): the emergency numbers come before anything else.
        lead = await Speaker(update, context).text("case.emergency")
    await show_step(update, context, outcome, lead=lead, on=press.message)


@allow(Audience.ANYONE)
async def on_rider_text(update: Update, context: BotContext) -> None:
    """A rider's own words: the answer to a moderator's open question, else their draft's
    description (typed at any step before Submit), else a pointer to /help."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.text is None:
        return
    text = message.text
    if await answer_question(update, context, text):
        return
    draft = await reporting(context).draft(user.id)
    if draft is None:
        await unknown(update, context)
        return
    if draft.step == Step.DESCRIPTION:
        outcome = await reporting(context).set_description(user.id, draft.id, text)
        lead = ""
    else:
        # Riders type what they saw before we ask: keep it as (part of) the description.
        outcome = await reporting(context).add_to_description(user.id, text)
        lead = await Speaker(update, context).text("report.description_noted")
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
    else:
        await show_step(update, context, outcome, lead=lead)


# --- submit, cancel, commands -----------------------------------------------------------


async def answer_question(update: Update, context: BotContext, text: str) -> bool:
    """If a moderator asked this rider something, `text` is the answer: attach it."""
    user = update.effective_user
    if user is None:
        return False
    answered = await context.runtime.moderation.answer(user.id, text)
    if answered is None:
        return False
    await Speaker(update, context).reply("rider.answered", reference=answered.card.reference)
    await refresh_card(context, answered.card)
    return True


async def photo_followed(update: Update, context: BotContext, report_id: int) -> None:
    """A photo sent just after the rider answered a question: it joined that report."""
    card = await context.runtime.moderation.photo_followed(report_id)
    if card is None:
        return
    await Speaker(update, context).reply("rider.photo_followed", reference=card.reference)
    await refresh_card(context, card)


@allow(Audience.RIDERS)
@pressed
async def on_submit(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Submit: the reference comes back at once."""
    query, user = press.query, press.user
    await Speaker(update, context).alert()
    outcome = await reporting(context).submit(user.id, press.item)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await drop_buttons(query.message)
    context.runtime.card_wake.set()
    await context.runtime.cases.urgent_submitted(outcome.reference)
    await announce_submitted(update, context, outcome)


async def announce_submitted(update: Update, context: BotContext, submitted: Submitted) -> None:
    say = Speaker(update, context)
    key = "report.already_submitted" if submitted.already else "report.submitted"
    await say.reply(
        key,
        reference=submitted.reference,
        hours=context.runtime.settings.programme.review.deadline_hours,
        reply_markup=main_keyboard(await say.phrases()),
    )


@allow(Audience.RIDERS)
async def on_cancel_button(update: Update, context: BotContext) -> None:
    """The Cancel button under the summary."""
    query = update.callback_query
    if query is None:
        return
    await Speaker(update, context).alert()
    await drop_buttons(query.message)
    await cancel(update, context)


@allow(Audience.RIDERS)
async def cancel(update: Update, context: BotContext) -> None:
    """/cancel: discard the draft."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    discarded = await reporting(context).cancel(user.id)
    key = "report.cancelled" if discarded else "report.nothing_to_cancel"
    await say.reply(key, reply_markup=main_keyboard(await say.phrases()))


@allow(Audience.RIDERS)
async def report_command(update: Update, context: BotContext) -> None:
    """/report or the 📷 button: continue the draft, or ask for the first photo."""
    user = update.effective_user
    if user is None:
        return
    service = reporting(context)
    if not await service.has_consented(user.id):
        await refuse(update, context, Refused(ReportRefusal.NOT_CONSENTED))
        return
    draft = await service.draft(user.id)
    if draft is not None:
        await show_step(update, context, draft)
        return
    say = Speaker(update, context)
    await say.reply(
        "report.ask_photo",
        max=context.runtime.settings.programme.reports.max_photos,
        reply_markup=main_keyboard(await say.phrases()),
    )


@allow(Audience.RIDERS)
async def my_reports(update: Update, context: BotContext) -> None:
    """/my: the latest reports with their status."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    rows = await reporting(context).my_reports(user.id)
    if not rows:
        await say.reply("my.none")
        return
    t = await say.phrases()
    programme = context.runtime.settings.programme
    handling = await context.runtime.cases.state_by_reference([r["reference"] for r in rows])
    lines = [t("my.header")]
    for row in rows:
        category = programme.category(row["category"] or "")
        line = t(
            "my.line",
            reference=row["reference"],
            category=category.name(t.language) if category else "-",
            status=t(f"status.{row['status']}"),
        )
        case = handling.get(row["reference"])
        town = f" · {row['town']}" if row["town"] else ""
        lines.append(line + town + (t(f"case.my.{case}") if case else ""))
    await say.send("\n".join(lines))


@allow(Audience.RIDERS)
async def on_voice(update: Update, context: BotContext) -> None:
    """A voice note: part of the draft, or of the answer to a moderator's question; the
    moderators play it from the card."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.voice is None:
        return
    voice = message.voice
    seconds = voice.duration
    seconds = int(seconds.total_seconds()) if isinstance(seconds, timedelta) else int(seconds)
    question = await context.runtime.moderation.open_question(user.id)
    refused = await reporting(context).add_voice(
        user.id, question, voice.file_id, voice.file_unique_id, seconds, voice.file_size or 0
    )
    if refused is not None:
        await refuse(update, context, refused)
        return
    if question is not None:
        await answer_question(update, context, "🎙")
        return
    draft = await reporting(context).draft(user.id)
    if draft is not None:
        lead = await Speaker(update, context).text("report.voice_noted", seconds=seconds)
        await show_step(update, context, draft, lead=lead)


@allow(Audience.ANYONE)
async def on_unsupported_media(update: Update, context: BotContext) -> None:
    """Video, GIF, sticker, round video notes and the like."""
    await refuse_media(update, context)


HELD_PHOTO_TAKERS.append(on_photo)  # a photo held until consent comes here once agreed
