"""Cases (即时办) in Telegram: case cards in the department chats, the staff's and riders'
buttons, the reply prompts, /cases, /staff, and the service-level job.

One message per case in its department's chat: the report's photo, what and where, the due
time, and the buttons its state allows (services/cases.py decides; every button carries the
state its card showed, so a stale card changes nothing). Cards leave through one sender task,
urgent first, then oldest dispatch; a card not yet sent stays in the database until it is.

Reasons and photos are asked for with a ForceReply prompt starting with PROMPT_MARK; the reply
is matched to its prompt by (chat, message) in the database:

    Fixed ──► "reply with an after-photo" ──photo reply──► fixed   (or "✅ No photo" on the card)
    Not ours / Cannot fix ──► "reply with the reason" ──text reply──► not_ours / cannot_fix
    ➡️ <department> (moderators) ──► "reply with the reason" ──► re-routed
    rider "❌ No" ──► reopened, "reply with a photo if you like" ──► photo on the case
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import filters

from handlers.access import Audience, allow
from handlers.callbacks import Verb, parse
from handlers.common import BotApplication, BotContext, Runtime
from handlers.infra import notify
from handlers.review_card import amap_link
from handlers.speak import Speaker
from handlers.widgets import download
from services import cases as service
from services.cases import Action, Case, CaseRefused, Changed, Role, State
from services.photos import PhotoRejected

log = logging.getLogger(__name__)

ACCEPT = Verb("cacc")
FIXED = Verb("cfix")
NO_PHOTO = Verb("cnophoto")
NOT_OURS = Verb("cnot")
CANNOT_FIX = Verb("ccant")
BACK = Verb("cback")
PIN = Verb("cpin")
YES = Verb(service.VERB_YES)
NO = Verb(service.VERB_NO)
ROUTE = Verb(service.VERB_ROUTE)
STAFF_VERBS = (ACCEPT, FIXED, NO_PHOTO, NOT_OURS, CANNOT_FIX, BACK, PIN)
RIDER_VERBS = (YES, NO)

PROMPT_MARK = "🔧"  # every case prompt starts with it (see case.prompt.*)
CAPTION_LIMIT = 1024
SENDER_RETRY_SECONDS = 5.0
UNSENDABLE = 0
STAFF_BUTTONS = {
    Action.ACCEPT: (ACCEPT, "case.button.accept"),
    Action.FIXED: (FIXED, "case.button.fixed"),
    Action.CANNOT_FIX: (CANNOT_FIX, "case.button.cannot_fix"),
    Action.NOT_OURS: (NOT_OURS, "case.button.not_ours"),
}
ASKS_REASON = {NOT_OURS: Action.NOT_OURS, CANNOT_FIX: Action.CANNOT_FIX}


class _PromptReply(filters.MessageFilter):
    """A reply to one of the bot's case prompts."""

    def filter(self, message: Message) -> bool:
        prompt = message.reply_to_message
        return (
            prompt is not None
            and prompt.from_user is not None
            and prompt.from_user.is_bot
            and (prompt.text or "").startswith(PROMPT_MARK)
        )


PROMPT_REPLY = _PromptReply()


def cases(context: BotContext | BotApplication) -> service.Cases:
    runtime: Runtime = context.bot_data["runtime"]
    return runtime.cases


# --- the card ---------------------------------------------------------------------------


def caption(runtime: Runtime, language: str, case: Case) -> str:
    """What the department needs: what, where, by when, and the case's state."""
    texts, settings = runtime.texts, runtime.settings

    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    category = settings.programme.category(case.category or "")
    department = settings.programme.department(case.department)
    zone = settings.timezone
    lines = [
        ("🚨 " if case.urgent else "")
        + t(
            "case.card.title",
            reference=case.reference,
            category=category.name(language) if category else "-",
        ),
        t(
            "case.card.due",
            due=texts.when(language, _dt(case.due_at), zone),
            department=department.name(language) if department else case.department,
        ),
    ]
    if case.latitude is not None and case.longitude is not None:
        lat, lon = f"{case.latitude:.5f}", f"{case.longitude:.5f}"
        lines.append(t("card.location", latitude=lat, longitude=lon))
        lines.append(amap_link(case.reference, lat, lon))
    lines.append(t(f"case.state.{case.state}"))
    if case.reopened:
        lines.append(t("case.card.reopened", count=case.reopened))
    if case.note:
        lines.append(t("case.card.note", note=case.note[:200]))
    if case.description:
        lines.append(t("card.description", description=case.description))
    text = "\n".join(lines)
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"


def _state(argument: str) -> State | None:
    """The state a button says its card showed (None: forged)."""
    return next((state for state in State if state.value == argument), None)


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def card_buttons(runtime: Runtime, language: str, case: Case) -> InlineKeyboardMarkup:
    """The staff's actions allowed in the case's state, and the map pin."""
    texts = runtime.texts
    row = [
        InlineKeyboardButton(
            texts.get(language, label), callback_data=verb.data(case.id, case.state)
        )
        for action in service.actions_for(case.state, Role.STAFF)
        for verb, label in [STAFF_BUTTONS[action]]
    ]
    rows = [row] if row else []
    if case.latitude is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    texts.get(language, "card.button.pin"), callback_data=PIN.data(case.id)
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


def fixed_buttons(runtime: Runtime, language: str, case: Case) -> InlineKeyboardMarkup:
    """While the after-photo is awaited: fixed without a photo, or back."""
    texts = runtime.texts
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    texts.get(language, "case.button.no_photo"),
                    callback_data=NO_PHOTO.data(case.id, case.state),
                ),
                InlineKeyboardButton(
                    texts.get(language, "card.button.back"),
                    callback_data=BACK.data(case.id, case.state),
                ),
            ]
        ]
    )


async def send_card(app: BotApplication | BotContext, case: Case) -> Message | None:
    """One message in the department's chat; None when the department is not configured."""
    runtime: Runtime = app.bot_data["runtime"]
    department = runtime.settings.programme.department(case.department)
    if department is None:
        return None
    language = runtime.languages.default
    jpeg, file_id = await runtime.moderation.photo(case.report_id, 1)
    markup = card_buttons(runtime, language, case)
    text = caption(runtime, language, case)
    if file_id or jpeg:
        message = await app.bot.send_photo(
            department.chat_id, photo=file_id or jpeg or b"", caption=text, reply_markup=markup
        )
        if file_id is None and message.photo:
            await runtime.moderation.remember_photo_upload(
                case.report_id, 1, message.photo[-1].file_id
            )
        return message
    return await app.bot.send_message(department.chat_id, text, reply_markup=markup)


async def card_sender(app: BotApplication) -> None:
    """Send every case card still to send (urgent first), then wait to be woken."""
    service_ = cases(app)
    while True:
        sent_any = False
        try:
            for case_id in await service_.cards_to_send():
                case = await service_.case(case_id)
                if case is None:
                    continue
                department = app.bot_data["runtime"].settings.programme.department(case.department)
                chat_id = department.chat_id if department else 0
                try:
                    message = await send_card(app, case)
                except BadRequest as exc:
                    log.error("case card %s refused by Telegram: %s", case.reference, exc.message)
                    await service_.card_sent(case_id, chat_id, UNSENDABLE)
                    continue
                await service_.card_sent(
                    case_id, chat_id, UNSENDABLE if message is None else message.message_id
                )
                sent_any = True
        except TelegramError as exc:
            log.warning("case card not sent, retrying in %ss: %r", SENDER_RETRY_SECONDS, exc)
            await asyncio.sleep(SENDER_RETRY_SECONDS)
            continue
        except Exception:
            log.exception("case card sender failed; retrying in %ss", SENDER_RETRY_SECONDS)
            await asyncio.sleep(SENDER_RETRY_SECONDS)
            continue
        if not sent_any:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(service_.wake.wait(), timeout=60)
            service_.wake.clear()


async def refresh(context: BotContext, changed: Changed) -> None:
    """Show the change on the department card; a case sent anew leaves its old card inert."""
    runtime = context.runtime
    before, after = changed.before, changed.case
    if before.card_chat_id is None or before.card_message_id in (None, UNSENDABLE):
        return
    language = runtime.languages.default
    same_card = after.card_message_id == before.card_message_id
    markup = card_buttons(runtime, language, after) if same_card else None
    with contextlib.suppress(BadRequest):
        await _edit(
            context,
            before.card_chat_id,
            before.card_message_id,
            caption(runtime, language, after),
            markup,
        )


async def _edit(
    context: BotContext,
    chat_id: int,
    message_id: int | None,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    try:
        await context.bot.edit_message_caption(
            chat_id=chat_id, message_id=message_id, caption=text, reply_markup=markup
        )
    except BadRequest as exc:
        if "no caption" not in exc.message.lower() and "there is no" not in exc.message.lower():
            raise
        await context.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=markup
        )


async def refusal(say: Speaker, refused: CaseRefused) -> str:
    state = await say.text(f"case.state.{refused.state}") if refused.state else ""
    return await say.text(f"case.refused.{refused.problem}", state=state, by=refused.by or "-")


async def _answer(say: Speaker, outcome: Changed | CaseRefused) -> None:
    if isinstance(outcome, CaseRefused):
        await say.alert(await refusal(say, outcome), popup=True)
    else:
        await say.alert(f"case.done.{outcome.action}")


# --- staff ------------------------------------------------------------------------------


@allow(Audience.STAFF)
async def on_staff_button(update: Update, context: BotContext) -> None:
    """Accept, fixed, no photo, not ours, cannot fix, back, pin: on a department card."""
    query = update.callback_query
    user = update.effective_user
    pressed = parse(query.data if query else None)
    say = Speaker(update, context)
    if query is None or user is None or pressed is None:
        await say.alert("button.expired")
        return
    message = query.message if isinstance(query.message, Message) else None
    service_ = cases(context)
    case = await service_.case(pressed.item)
    if case is None:
        await say.alert("button.expired")
        return
    if pressed.verb is PIN:
        await say.alert()
        if message is not None and case.latitude is not None and case.longitude is not None:
            await context.bot.send_location(message.chat.id, case.latitude, case.longitude)
        return
    expected = _state(pressed.argument)
    if expected is None:
        await say.alert("button.expired")
        return
    if pressed.verb in (ACCEPT, NO_PHOTO):
        outcome = await service_.act(
            case.id, user.id, Action.ACCEPT if pressed.verb is ACCEPT else Action.FIXED, expected
        )
        await _answer(say, outcome)
        if isinstance(outcome, Changed):
            await refresh(context, outcome)
        return
    action = Action.FIXED if pressed.verb in (FIXED, BACK) else ASKS_REASON[pressed.verb]
    refused = await service_.check(case.id, user.id, action, expected)
    if refused is not None:
        await _answer(say, refused)
        return
    await say.alert()
    if message is None:
        return
    language = context.runtime.languages.default
    if pressed.verb is BACK:
        with contextlib.suppress(BadRequest):
            await message.edit_reply_markup(card_buttons(context.runtime, language, case))
        return
    if pressed.verb is FIXED:
        with contextlib.suppress(BadRequest):
            await message.edit_reply_markup(fixed_buttons(context.runtime, language, case))
    await prompt(context, message.chat.id, user.id, case, action, f"case.prompt.{action}")


async def prompt(
    context: BotContext,
    chat_id: int,
    user_id: int,
    case: Case,
    action: Action,
    key: str,
    department: str | None = None,
) -> None:
    """A ForceReply prompt whose reply carries a reason or a photo for `action`."""
    runtime = context.runtime
    language = await runtime.languages.of(user_id, None)
    name = ""
    if department is not None:
        found = runtime.settings.programme.department(department)
        name = found.name(language) if found else department
    text = runtime.texts.get(language, key, reference=case.reference, department=name)
    sent = await context.bot.send_message(chat_id, text, reply_markup=ForceReply(selective=True))
    await cases(context).remember_prompt(
        chat_id, sent.message_id, case, action, user_id, department
    )


@allow(Audience.ANYONE)
async def on_prompt_reply(update: Update, context: BotContext) -> None:
    """A reply to a case prompt: the reason or the photo, and the change it completes."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return
    say = Speaker(update, context)
    photo = None
    if message.photo:
        try:
            photo = await download(context, message.photo[-1].file_id)
        except TelegramError:
            await say.reply("case.photo_failed")
            return
    try:
        outcome = await cases(context).answer_prompt(
            message.chat.id,
            message.reply_to_message.message_id,
            user.id,
            message.text or message.caption or "",
            photo,
        )
    except PhotoRejected as rejected:
        await say.reply(f"photo.{rejected.reason.value}")
        return
    if outcome is None:
        await say.reply("case.prompt_used")
        return
    if isinstance(outcome, CaseRefused):
        await say.send(await refusal(say, outcome))
        return
    await say.reply(f"case.done.{outcome.action}")
    await refresh(context, outcome)


# --- riders -----------------------------------------------------------------------------


@allow(Audience.RIDERS)
async def on_rider_button(update: Update, context: BotContext) -> None:
    """'Is it fixed?' Yes confirms; No reopens it and offers to add a photo."""
    query = update.callback_query
    user = update.effective_user
    pressed = parse(query.data if query else None)
    say = Speaker(update, context)
    expected = _state(pressed.argument if pressed else "")
    if query is None or user is None or pressed is None or expected is None:
        await say.alert("button.expired")
        return
    action = Action.CONFIRM if pressed.verb is YES else Action.REOPEN
    outcome = await cases(context).act(pressed.item, user.id, action, expected)
    await _answer(say, outcome)
    message = query.message if isinstance(query.message, Message) else None
    if message is not None:
        with contextlib.suppress(TelegramError):
            await message.edit_reply_markup(None)
    if isinstance(outcome, Changed):
        await refresh(context, outcome)
        if action == Action.REOPEN and message is not None:
            await prompt(
                context, message.chat.id, user.id, outcome.case, action, "case.prompt.reopen"
            )


async def rider_photo(runtime: Runtime, photo_id: int) -> bytes | str | None:
    """The outbox's loader of case photos (`case:<photo id>`)."""
    return await runtime.cases.photo(photo_id)


notify.PHOTO_LOADERS["case"] = rider_photo


# --- moderators -------------------------------------------------------------------------


@allow(Audience.MODERATORS)
async def on_route_button(update: Update, context: BotContext) -> None:
    """A department chosen for a returned case: ask the moderator for the reason."""
    query = update.callback_query
    user = update.effective_user
    pressed = parse(query.data if query else None)
    say = Speaker(update, context)
    if query is None or user is None or pressed is None:
        await say.alert("button.expired")
        return
    service_ = cases(context)
    case = await service_.case(pressed.item)
    if case is None:
        await say.alert("button.expired")
        return
    refused = await service_.check(case.id, user.id, Action.REROUTE, case.state)
    if refused is not None:
        await _answer(say, refused)
        return
    await say.alert()
    message = query.message if isinstance(query.message, Message) else None
    chat_id = message.chat.id if message is not None else user.id
    await prompt(
        context, chat_id, user.id, case, Action.REROUTE, "case.prompt.reroute", pressed.argument
    )


@allow(Audience.STAFF)
async def cases_command(update: Update, context: BotContext) -> None:
    """/cases: open cases by department, overdue first (moderators all, staff theirs)."""
    user = update.effective_user
    if user is None:
        return
    runtime = context.runtime
    say = Speaker(update, context)
    moderator = await runtime.moderation.is_moderator(user.id)
    found = await cases(context).open_cases(user.id, moderator=moderator)
    if not found:
        await say.reply("case.list.none")
        return
    language = await say.language()
    now = int(runtime.cases.clock().timestamp())
    lines = [await say.text("case.list.header", count=len(found))]
    department = None
    for case in found:
        if case.department != department:
            department = case.department
            found_department = runtime.settings.programme.department(department)
            name = found_department.name(language) if found_department else department
            lines.append(f"\n{name}")
        lines.append(
            await say.text(
                "case.list.line",
                overdue="⏰ " if case.overdue(now) else "",
                reference=case.reference,
                state=await say.text(f"case.state.{case.state}"),
                due=runtime.texts.when(language, _dt(case.due_at), runtime.settings.timezone),
            )
        )
    await say.send("\n".join(lines))


@allow(Audience.ADMINS)
async def staff_command(update: Update, context: BotContext) -> None:
    """/staff, /staff add <department> <id>, /staff remove <department> <id> (admins)."""
    say = Speaker(update, context)
    user = update.effective_user
    args = context.args or []
    service_ = cases(context)
    if len(args) == 3 and args[0] in ("add", "remove") and args[2].isdigit() and user:
        department, target = args[1], int(args[2])
        if context.runtime.settings.programme.department(department) is None:
            await say.reply("staff.unknown_department", department=department)
            return
        if args[0] == "add":
            changed = await service_.add_staff(department, target, user.id)
        else:
            changed = await service_.remove_staff(department, target)
        key = f"staff.{args[0]}.{'done' if changed else 'unchanged'}"
        await say.reply(key, id=target, department=department)
        return
    if args:
        await say.reply("staff.usage")
        return
    listed = await service_.staff()
    if not listed:
        await say.reply("staff.no_departments")
        return
    lines = [
        await say.text("staff.line", department=key, ids=", ".join(map(str, ids)) or "-")
        for key, ids in listed.items()
    ]
    await say.send("\n".join(lines))


# --- urgent reports ---------------------------------------------------------------------


async def emergency_lead(update: Update, context: BotContext, category: str) -> str:
    """For an urgent category, the emergency numbers that head the next question (Telegram
    makes numbers in a text tappable; tel: links are not allowed in inline buttons)."""
    if not cases(context).is_urgent(category):
        return ""
    return await Speaker(update, context).text("case.emergency")


async def urgent_submitted(context: BotContext, reference: str) -> None:
    """An urgent report is in: every moderator is told privately at once."""
    await cases(context).urgent_submitted(reference)


# --- jobs -------------------------------------------------------------------------------


async def service_job(context: BotContext) -> None:
    """Reminders at 75%, breaches, and "is it fixed?" left unanswered: confirmed by the clock."""
    check = await cases(context).service_check()
    for changed in check.confirmed:
        await refresh(context, changed)
    if check.reminded or check.breached or check.confirmed:
        log.info(
            "cases: reminded %d, breached %d, confirmed by the clock %d",
            len(check.reminded),
            len(check.breached),
            len(check.confirmed),
        )


async def overdue_job(context: BotContext) -> None:
    """The admins' daily list of overdue cases."""
    count = await cases(context).overdue_digest()
    if count:
        log.info("cases: %d overdue listed for the admins", count)
