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
    ⏳ Extension ──► "reply with the new date and the reason" ──► put to the moderators,
        ✅/❌ there (one tap) ──► the deadline moves, or not
    💬 Reply on a 督办 notice ──► "reply with your answer" ──► to the admin who issued it
    rider 😞 不满意 ──► a reason in one tap, or "reply with words or a photo" ──► reopened
"""

from __future__ import annotations

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

from handlers import menus
from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotApplication, BotContext, Runtime
from handlers.infra import notify
from handlers.infra.card_sender import UNSENDABLE, CardKind, send_cards
from handlers.review_card import amap_link
from handlers.speak import Speaker
from handlers.widgets import DUPLICATE_MARKED, download, people, send_invite
from services import cases as service
from services.cases import Action, Answer, Case, CaseRefusal, Changed, Noted, Role, State
from services.invites import Role as InviteRole
from services.photos import PhotoRejected
from services.refusal import Refused

log = logging.getLogger(__name__)

ACCEPT = Verb("cacc")
FIXED = Verb("cfix")
NO_PHOTO = Verb("cnophoto")
NOT_OURS = Verb("cnot")
CANNOT_FIX = Verb("ccant")
BACK = Verb("cback")
PIN = Verb("cpin")
EXTEND_ASK = Verb("cextask")
YES = Verb(service.VERB_YES)
BASIC = Verb(service.VERB_BASIC)
NO = Verb(service.VERB_NO)
WHY = Verb("cwhy")  # 不满意: the reason, in one tap
ROUTE = Verb(service.VERB_ROUTE)
EXTENSION = Verb(service.VERB_EXTEND)
SUPERVISION = Verb(service.VERB_SUPERVISION)
STAFF_VERBS = (ACCEPT, FIXED, NO_PHOTO, NOT_OURS, CANNOT_FIX, BACK, PIN, EXTEND_ASK)
RIDER_VERBS = (YES, BASIC, NO, WHY)
LIGHTS = {"green": "🟢", "yellow": "🟡", "red": "🔴"}

PROMPT_MARK = "🔧"  # every case prompt starts with it (see case.prompt.*)
CAPTION_LIMIT = 1024
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


def caption(runtime: Runtime, language: str, case: Case, *, sent_before: bool = False) -> str:
    """What the department needs: what, where, by when, and the case's state; `sent_before`
    says first that an earlier copy of the card may be above it."""
    texts, settings = runtime.texts, runtime.settings

    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    category = settings.programme.category(case.category or "")
    department = settings.programme.department(case.department)
    zone = settings.timezone
    now = int(runtime.cases.clock().timestamp())
    light = case.light(now)
    lines = [t("case.card.sent_again")] if sent_before else []
    lines += [
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
    if case.awaiting_accept and case.accept_due_at is not None:
        lines.append(
            t("case.card.accept_due", due=texts.when(language, _dt(case.accept_due_at), zone))
        )
    if settings.programme.towns or case.town:
        lines.append(town_line(runtime, language, case.town, case.grid))
    if case.venue_name:
        lines.append(t("case.card.venue", venue=case.venue_name))
    if case.latitude is not None and case.longitude is not None:
        lat, lon = f"{case.latitude:.5f}", f"{case.longitude:.5f}"
        lines.append(t("card.location", latitude=lat, longitude=lon))
        lines.append(amap_link(case.reference, lat, lon))
    lines.append((LIGHTS[light] + " " if light else "") + t(f"case.state.{case.state}"))
    if case.followers:
        lines.append(t("case.card.followers", count=case.followers))
    if case.reopened:
        lines.append(t("case.card.reopened", count=case.reopened))
    if case.note:
        lines.append(t("case.card.note", note=case.note[:200]))
    if case.description:
        lines.append(t("card.description", description=case.description))
    if case.rider_answer:
        lines.append(t("case.card.rider_answer", answer=case.rider_answer[:300]))
    text = "\n".join(lines)
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"


def town_line(runtime: Runtime, language: str, town: str | None, grid: str | None) -> str:
    """📍 The town (乡镇/街道) and grid (网格) a report lies in, or 未分区."""
    texts = runtime.texts
    name = town or texts.get(language, "town.none")
    return texts.get(language, "case.card.town", town=name + (f" · {grid}" if grid else ""))


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
    if case.state == State.ACCEPTED:
        label = texts.get(language, "case.button.extend")
        rows.append(
            [InlineKeyboardButton(label, callback_data=EXTEND_ASK.data(case.id, case.state))]
        )
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


def card_chat(runtime: Runtime, case: Case) -> int | None:
    """The department's chat, or None when the department is not configured or works in its
    own system (its channel hands the case over: services/handoff.py)."""
    department = runtime.settings.programme.department(case.department)
    if department is None or department.send != "telegram":
        return None
    return department.chat_id


async def send_card(
    app: BotApplication | BotContext, chat_id: int, case: Case, *, sent_before: bool = False
) -> Message:
    """One message in the department's chat: the report's first photo, the caption and the
    buttons; `sent_before` says on the card that an earlier copy may be above it."""
    runtime: Runtime = app.bot_data["runtime"]
    language = runtime.languages.default
    markup = card_buttons(runtime, language, case)
    text = caption(runtime, language, case, sent_before=sent_before)
    evidence = await runtime.cases.rider_evidence(case)
    if evidence is not None:  # reopened: the rider's photo of what is still wrong
        return await app.bot.send_photo(chat_id, photo=evidence, caption=text, reply_markup=markup)
    jpeg, file_id = await runtime.moderation.photo(case.report_id, 1)
    if file_id or jpeg:
        message = await app.bot.send_photo(
            chat_id, photo=file_id or jpeg or b"", caption=text, reply_markup=markup
        )
        if file_id is None and message.photo:
            await runtime.moderation.remember_photo_upload(
                case.report_id, 1, message.photo[-1].file_id
            )
        return message
    return await app.bot.send_message(chat_id, text, reply_markup=markup)


def card_kind(app: BotApplication) -> CardKind[Case]:
    """Case cards, for the one card sender: dispatched cases without a card, urgent first."""
    runtime: Runtime = app.bot_data["runtime"]

    async def send(chat_id: int, case: Case, sent_before: bool) -> Message:
        return await send_card(app, chat_id, case, sent_before=sent_before)

    return CardKind(
        name="case card",
        due=lambda: cases(app).cards_to_send(),
        load=lambda case_id: cases(app).case(case_id),
        label=lambda case: case.reference,
        chat=lambda case: card_chat(runtime, case),
        send=send,
        begin=lambda case_id: cases(app).begin_card(case_id),
        refused=lambda case_id: cases(app).card_refused(case_id),
        sent=cases(app).card_sent,
        wake=cases(app).wake,
    )


async def card_sender(app: BotApplication) -> None:
    """Send every case card still to send (urgent first), then wait to be woken."""
    await send_cards(card_kind(app))


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
            caption(runtime, language, after, sent_before=before.card_copy),
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


async def refusal(say: Speaker, refused: Refused[CaseRefusal]) -> str:
    state = await say.text(f"case.state.{refused.state}") if refused.state else ""
    return await say.text(f"case.refused.{refused.reason}", state=state)


async def _answer(say: Speaker, outcome: Changed | Noted | Refused[CaseRefusal]) -> None:
    if isinstance(outcome, Refused):
        await say.alert(await refusal(say, outcome), popup=True)
    elif isinstance(outcome, Noted):
        await say.alert(f"case.done.{outcome.key}")
    else:
        await say.alert(f"case.done.{outcome.action}")


# --- staff ------------------------------------------------------------------------------


@allow(Audience.STAFF)
@pressed
async def on_staff_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Accept, fixed, no photo, not ours, cannot fix, back, pin: on a department card."""
    user = press.user
    say = Speaker(update, context)
    message = press.message
    service_ = cases(context)
    case = await service_.case_for(press.item, user.id)
    if case is None:
        await say.alert("case.refused.unknown", popup=True)
        return
    if press.verb is PIN:
        await say.alert()
        if message is not None and case.latitude is not None and case.longitude is not None:
            await context.bot.send_location(message.chat.id, case.latitude, case.longitude)
        return
    expected = _state(press.argument)
    if expected is None:
        await say.alert("button.expired")
        return
    if press.verb is EXTEND_ASK:
        refused = await service_.check(case.id, user.id, Action.FIXED, expected)
        if refused is not None:
            await _answer(say, refused)
            return
        await say.alert()
        if message is not None:
            await prompt(
                context, message.chat.id, user.id, case, service.PROMPT_EXTEND, "case.prompt.extend"
            )
        return
    if press.verb in (ACCEPT, NO_PHOTO):
        outcome = await service_.act(
            case.id, user.id, Action.ACCEPT if press.verb is ACCEPT else Action.FIXED, expected
        )
        await _answer(say, outcome)
        if isinstance(outcome, Changed):
            await refresh(context, outcome)
        return
    action = Action.FIXED if press.verb in (FIXED, BACK) else ASKS_REASON[press.verb]
    refused = await service_.check(case.id, user.id, action, expected)
    if refused is not None:
        await _answer(say, refused)
        return
    await say.alert()
    if message is None:
        return
    language = context.runtime.languages.default
    if press.verb is BACK:
        with contextlib.suppress(BadRequest):
            await message.edit_reply_markup(card_buttons(context.runtime, language, case))
        return
    if press.verb is FIXED:
        with contextlib.suppress(BadRequest):
            await message.edit_reply_markup(fixed_buttons(context.runtime, language, case))
    await prompt(context, message.chat.id, user.id, case, action, f"case.prompt.{action}")


async def prompt(
    context: BotContext,
    chat_id: int,
    user_id: int,
    case: Case,
    action: Action | str,
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
    if isinstance(outcome, Refused):
        await say.send(await refusal(say, outcome))
        return
    if isinstance(outcome, Noted):
        await say.reply(f"case.done.{outcome.key}")
        return
    await say.reply(f"case.done.{outcome.action}")
    await refresh(context, outcome)


# --- riders -----------------------------------------------------------------------------


@allow(Audience.RIDERS)
@pressed
async def on_rider_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """回访, "is it fixed?": 满意 or 基本满意 confirms it; 不满意 asks what is wrong (a reason in
    one tap, or words or a photo in a reply) and then reopens it. Someone who reported the
    same hazard (a follower) is heard the same way, without changing the case."""
    user = press.user
    say = Speaker(update, context)
    service_ = cases(context)
    message = press.message
    if press.verb is WHY:
        if press.argument not in service.UNSATISFIED_REASONS:
            await say.alert("button.expired")
            return
        runtime = context.runtime
        note = runtime.texts.get(runtime.languages.default, f"case.unsatisfied.{press.argument}")
        outcome = await service_.answer(press.item, user.id, Answer.UNSATISFIED, note=note)
    else:
        if _state(press.argument) is None:
            await say.alert("button.expired")
            return
        answer = service.ANSWER_VERBS[press.verb.name]
        if answer == Answer.UNSATISFIED:
            await _ask_what_is_wrong(context, say, press)
            return
        outcome = await service_.answer(press.item, user.id, answer)
    await _answer(say, outcome)
    if message is not None and not isinstance(outcome, Refused):
        with contextlib.suppress(TelegramError):
            await message.edit_reply_markup(None)
    if isinstance(outcome, Changed):
        await refresh(context, outcome)


async def _ask_what_is_wrong(context: BotContext, say: Speaker, press: ButtonPress) -> None:
    """不满意 pressed: the reasons as buttons under the same message, and a prompt for words
    or a photo; nothing changes until one of them is given."""
    user, message = press.user, press.message
    service_ = cases(context)
    refused = await service_.can_answer(press.item, user.id)
    case = await service_.case_for(press.item, user.id)
    if refused is not None or case is None:
        await _answer(say, refused or Refused(CaseRefusal.UNKNOWN))
        return
    await say.alert()
    if message is None:
        return
    language = await say.language()
    texts = context.runtime.texts
    reasons = [
        [
            InlineKeyboardButton(
                texts.get(language, f"case.unsatisfied.{reason}"),
                callback_data=WHY.data(case.id, reason),
            )
        ]
        for reason in service.UNSATISFIED_REASONS
    ]
    with contextlib.suppress(TelegramError):
        await message.edit_reply_markup(InlineKeyboardMarkup(reasons))
    await prompt(context, message.chat.id, user.id, case, Action.REOPEN, "case.prompt.reopen")


async def rider_photo(runtime: Runtime, photo_id: int) -> bytes | str | None:
    """The outbox's loader of case photos (`case:<photo id>`)."""
    return await runtime.cases.photo(photo_id)


notify.PHOTO_LOADERS["case"] = rider_photo


# --- moderators -------------------------------------------------------------------------


@allow(Audience.MODERATORS)
@pressed
async def on_route_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """A department chosen for a returned case: ask the moderator for the reason."""
    user = press.user
    say = Speaker(update, context)
    service_ = cases(context)
    case = await service_.case_for(press.item, user.id)
    if case is None:
        await say.alert("case.refused.unknown", popup=True)
        return
    # The "returned" notice's buttons stand for a case sent back: once it moved on (another
    # moderator re-routed it, a department accepted it), a stale press changes nothing.
    refused = await service_.check(case.id, user.id, Action.REROUTE, State.NOT_OURS)
    if refused is not None:
        await _answer(say, refused)
        return
    await say.alert()
    message = press.message
    chat_id = message.chat.id if message is not None else user.id
    await prompt(
        context, chat_id, user.id, case, Action.REROUTE, "case.prompt.reroute", press.argument
    )


@allow(Audience.MODERATORS)
@pressed
async def on_extension_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """✅ / ❌ on a department's request for more time: one tap decides it, once."""
    say = Speaker(update, context)
    if press.argument not in ("yes", "no"):
        await say.alert("button.expired")
        return
    outcome = await cases(context).decide_extension(
        press.item, press.user.id, press.argument == "yes"
    )
    await _answer(say, outcome)
    if press.message is not None and isinstance(outcome, Noted):
        with contextlib.suppress(TelegramError):
            await press.message.edit_reply_markup(None)
        await _redraw(context, outcome.case)


@allow(Audience.STAFF)
@pressed
async def on_supervision_button(update: Update, context: BotContext, press: ButtonPress) -> None:
    """💬 under a 督办 notice: ask the department's staff member for the reply."""
    say = Speaker(update, context)
    case, refused = await cases(context).may_reply_supervision(press.item, press.user.id)
    if refused is not None or case is None:
        await _answer(say, refused or Refused(CaseRefusal.UNKNOWN))
        return
    await say.alert()
    if press.message is not None:
        await prompt(
            context,
            press.message.chat.id,
            press.user.id,
            case,
            service.PROMPT_SUPERVISION,
            "case.prompt.supervision",
        )


@allow(Audience.ADMINS)
async def supervise_command(update: Update, context: BotContext) -> None:
    """/supervise <reference> <text>: a 督办 on an open case, to its department."""
    say = Speaker(update, context)
    user = update.effective_user
    args = context.args or []
    if user is None or len(args) < 2:
        await say.reply("case.supervise.usage")
        return
    outcome = await cases(context).supervise(args[0], user.id, " ".join(args[1:]))
    if isinstance(outcome, Refused):
        await say.send(await refusal(say, outcome))
        return
    await say.reply("case.done.supervise", reference=outcome.case.reference)


async def follower_joined(context: BotContext, report_id: int) -> None:
    """A report was marked a duplicate of `report_id`: its case card counts one more rider."""
    case = await cases(context).case_of_report(report_id)
    if case is not None:
        await _redraw(context, case)


DUPLICATE_MARKED.append(follower_joined)


async def _redraw(context: BotContext, case: Case) -> None:
    """Show a case's new deadline on its card (the state stayed as it was)."""
    await refresh(context, Changed(Action.ACCEPT, case, case))


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
    undelivered = await runtime.handoff.undelivered()
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
                overdue=LIGHTS[light] + " " if (light := case.light(now)) else "",
                reference=case.reference,
                state=await say.text(f"case.state.{case.state}"),
                due=runtime.texts.when(language, _dt(case.due_at), runtime.settings.timezone),
            )
        )
        if case.id in undelivered:
            attempts = undelivered[case.id]
            lines.append(await say.text("case.list.undelivered", attempts=attempts))
    await say.send("\n".join(lines))


@allow(Audience.ADMINS)
async def staff_command(update: Update, context: BotContext) -> None:
    """/staff, /staff add <department> <id>, /staff remove <department> <id> (admins)."""
    say = Speaker(update, context)
    user = update.effective_user
    args = context.args or []
    service_ = cases(context)
    if len(args) == 2 and args[0] == "invite":
        found = context.runtime.settings.programme.department(args[1])
        if found is None:
            await say.reply("staff.unknown_department", department=args[1])
            return
        name = found.name(await say.language())
        await send_invite(update, context, InviteRole.STAFF, found.key, name)
        return
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
        if changed:
            await menus.refresh(context.bot, context.runtime, target)
        return
    if args:
        await say.reply("staff.usage")
        return
    listed = await service_.staff()
    if not listed:
        await say.reply("staff.no_departments")
        return
    lines = [
        await say.text("staff.line", department=key, ids=await people(context, ids))
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
