"""The 联新卡 (/card), merchant staff (/merchants, deep links, /redeem) and /points.

rider: /card -> card image, QR = t.me/<bot>?start=c<token> (10 minutes)
staff: scans it -> /start c<token> -> "valid card, <masked name>, benefits at your shop"
rider: /points -> items they can afford nearby -> [item] -> code + QR (start=r<code>),
       [Cancel code]
staff: scans it or /redeem <code> -> [Confirm] -> redeemed once, points debited
admin: /merchants add <place> <telegram id> | remove <telegram id> | statement YYYY-MM
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers import menus
from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext
from handlers.speak import Speaker
from handlers.widgets import ask_location, send_invite
from services import membercard as cards
from services.invites import Role as InviteRole
from services.points import looks_like_code, normalise_code, statement_xlsx
from storage.points import Code

log = logging.getLogger(__name__)

ITEM = Verb("pitem")  # item: place id; argument: index in its price list
CANCEL_CODE = Verb("pcancel")  # argument: the code
CONFIRM = Verb("predeem")  # argument: the code


def _when(context: BotContext, seconds: int) -> str:
    moment = datetime.fromtimestamp(seconds, UTC).astimezone(context.runtime.settings.timezone)
    return f"{moment:%H:%M}"


def link(context: BotContext, payload: str) -> str:
    return f"https://t.me/{context.bot.username}?start={payload}"


# --- the card ---------------------------------------------------------------------------


@allow(Audience.RIDERS)
async def card_command(update: Update, context: BotContext) -> None:
    """/card: the rider's 联新卡 with a fresh QR token."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    say = Speaker(update, context)
    service = context.runtime.member_cards
    if not service.enabled:
        log.warning("/card asked, but CARD_SECRET is not set")
        await say.reply("membercard.not_configured")
        return
    drawn = service.recent(user.id) or await draw(update, context)
    if drawn is None:
        await say.reply("membercard.not_configured")
        return
    await context.bot.send_photo(
        chat.id,
        drawn.image,
        caption=await say.text("membercard.caption", name=drawn.masked_name, number=drawn.number),
    )


async def draw(update: Update, context: BotContext) -> cards.Drawn | None:
    """A fresh card for the rider, drawn off the event loop; None when none can be opened."""
    user = update.effective_user
    assert user is not None
    say = Speaker(update, context)
    service = context.runtime.member_cards
    opened = await service.open(user.id, user.first_name)
    if opened is None:
        return None
    masked, number, token, expires = opened
    font = cards.cjk_font_path()
    language = await say.language() if font else "en"  # no Chinese font: draw in English
    texts = context.runtime.texts
    face = cards.CardFace(
        programme=texts.get(language, "membercard.programme"),
        title=texts.get(language, "membercard.title"),
        name=masked,
        number=number,
        validity=texts.get(language, "membercard.validity", until=_when(context, expires)),
        link=link(context, f"c{token}"),
    )
    started = time.perf_counter()
    image = await cards.draw_apart(face, font)
    log.info("card drawn: %d bytes in %.1f ms", len(image), (time.perf_counter() - started) * 1000)
    return service.remember(user.id, image, masked, number)


@allow(Audience.MERCHANTS)
async def scan_link(update: Update, context: BotContext) -> None:
    """/start c<token> or r<code> from merchant staff: the card check or the code."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or not context.args:
        return
    payload = context.args[0]
    say = Speaker(update, context)
    if payload.startswith("r"):
        await show_code(update, context, normalise_code(payload[1:]))
        return
    scan = await context.runtime.member_cards.scan(user.id, payload[1:])
    await say.reply(
        f"membercard.scan.{scan.outcome}",
        name=scan.masked_name,
        number=scan.number,
        merchant=scan.merchant,
    )
    if scan.outcome == "valid":
        merchant = await context.runtime.places.merchant(scan.merchant)
        if merchant is not None and merchant.benefit:
            await say.reply("membercard.scan.benefit", benefit=merchant.benefit)


# --- merchants (admins) -----------------------------------------------------------------


@allow(Audience.ADMINS)
async def merchants_command(update: Update, context: BotContext) -> None:
    """/merchants add <place> <telegram id> | remove <telegram id> | statement YYYY-MM."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    say = Speaker(update, context)
    args = context.args or []
    action = args[0].lower() if args else ""
    service = context.runtime.places
    if action == "invite" and len(args) >= 2:
        reference = " ".join(args[1:])
        merchant = await service.merchant(reference)
        if merchant is None:
            await say.reply("merchants.unknown_place", place=reference, id="")
            return
        await send_invite(update, context, InviteRole.MERCHANT, merchant.name, merchant.name)
        return
    if action == "add" and len(args) >= 3 and args[-1].isdigit():
        reference = " ".join(args[1:-1])
        found = await service.add_staff(reference, int(args[-1]), user.id)
        key = "merchants.added" if found else "merchants.unknown_place"
        await say.reply(key, place=found.name if found else reference, id=args[-1])
        if found:
            await menus.refresh(context.bot, context.runtime, int(args[-1]))
    elif action == "remove" and len(args) == 2 and args[1].isdigit():
        removed = await service.remove_staff(int(args[1]))
        await say.reply("merchants.removed" if removed else "merchants.not_staff", id=args[1])
        if removed:
            await menus.refresh(context.bot, context.runtime, int(args[1]))
    elif action == "statement" and len(args) == 2:
        await send_statements(update, context, args[1])
    else:
        await say.reply("merchants.usage")


async def send_statements(update: Update, context: BotContext, month: str) -> None:
    """One XLSX per merchant with the month's redemptions, for the county to settle."""
    chat = update.effective_chat
    say = Speaker(update, context)
    used = await context.runtime.points.statement(month)
    if chat is None:
        return
    if used is None:
        await say.reply("merchants.usage")
        return
    if not used:
        await say.reply("merchants.statement_none", month=month)
        return
    by_merchant: dict[str, list[Code]] = {}
    for code in used:
        by_merchant.setdefault(code.merchant_name, []).append(code)
    for merchant, codes in by_merchant.items():
        data = statement_xlsx(merchant, month, codes, context.runtime.settings.timezone)
        await context.bot.send_document(
            chat.id,
            data,
            filename=f"statement-{month}-{merchant}.xlsx",
            caption=await say.text(
                "merchants.statement_caption",
                merchant=merchant,
                month=month,
                count=len(codes),
                points=sum(c.points for c in codes),
            ),
        )


# --- points (riders) --------------------------------------------------------------------


@allow(Audience.RIDERS)
async def points_command(update: Update, context: BotContext) -> None:
    """/points: spendable points and what they buy at the nearest merchants."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    found = await context.runtime.points.spendable(user.id)
    if found is None:
        return
    spendable, held = found
    await say.reply("points.balance", points=spendable, held=held)
    location = await context.runtime.places.last_location(user.id)
    if location is None:
        await ask_location(update, context)
        return
    page = await context.runtime.places.nearest(
        *location, merchants=True, only_merchants=True, limit=3
    )
    rows = []
    for item in page.found:
        for index, price in enumerate(item.place.prices):
            if price.points <= spendable:
                label = await say.text(
                    "points.offer", merchant=item.place.name, item=price.name, points=price.points
                )
                rows.append(
                    [InlineKeyboardButton(label, callback_data=ITEM.data(item.place.id, index))]
                )
    if not rows:
        await say.reply("points.nothing_affordable")
        return
    await say.reply("points.choose", reply_markup=InlineKeyboardMarkup(rows[:12]))


@allow(Audience.RIDERS)
@pressed
async def on_item(update: Update, context: BotContext, press: ButtonPress) -> None:
    """An item chosen: a one-time code and its QR, valid for 15 minutes."""
    user = press.user
    chat = update.effective_chat
    say = Speaker(update, context)
    place = await context.runtime.places.place(press.item)
    index = press.number()
    if chat is None or place is None or index is None:
        await say.alert("button.expired")
        return
    if not 0 <= index < len(place.prices) or place.kind != "merchant":
        await say.alert("button.expired")
        return
    price = place.prices[index]
    issued = await context.runtime.points.issue(
        user.id,
        place.name,
        price.name,
        price.points,
        press=update.callback_query.id if update.callback_query else None,
    )
    if isinstance(issued, str):
        await say.alert(f"points.refused.{issued}", popup=True)
        return
    await say.alert()
    await context.bot.send_photo(
        chat.id,
        await cards.qr_apart(link(context, f"r{issued.code}")),
        caption=await say.text(
            "points.code",
            code=issued.code,
            item=issued.item,
            merchant=issued.merchant,
            points=issued.points,
            until=_when(context, issued.expires_at),
        ),
        reply_markup=InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        await say.text("points.cancel_button"),
                        callback_data=CANCEL_CODE.data(0, issued.code),
                    )
                ]
            ]
        ),
    )


@allow(Audience.RIDERS)
@pressed
async def on_cancel_code(update: Update, context: BotContext, press: ButtonPress) -> None:
    say = Speaker(update, context)
    cancelled = await context.runtime.points.cancel(press.user.id, press.argument)
    await say.alert("points.cancelled" if cancelled else "points.cancel_refused", popup=True)


# --- redeeming (merchant staff) ---------------------------------------------------------


@allow(Audience.MERCHANTS)
async def redeem_command(update: Update, context: BotContext) -> None:
    """/redeem <code>: show the code's item and a [Confirm] button."""
    args = context.args or []
    code = normalise_code(args[0]) if args else ""
    if not looks_like_code(code):
        await Speaker(update, context).reply("points.redeem_usage")
        return
    await show_code(update, context, code)


async def show_code(update: Update, context: BotContext, code: str) -> None:
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    found = await context.runtime.points.look(user.id, code)
    if isinstance(found, str):
        await say.reply(f"points.redeem.{found}", code=code)
        return
    button = InlineKeyboardButton(
        await say.text("points.confirm_button"), callback_data=CONFIRM.data(0, code)
    )
    await say.reply(
        "points.redeem.check",
        code=code,
        item=found.item,
        points=found.points,
        card=cards.card_number(found.rider_id),
        reply_markup=InlineKeyboardMarkup([[button]]),
    )


@allow(Audience.MERCHANTS)
@pressed
async def on_confirm(update: Update, context: BotContext, press: ButtonPress) -> None:
    """[Confirm]: spend the code; exactly one of several presses wins."""
    say = Speaker(update, context)
    outcome = await context.runtime.points.redeem(press.user.id, press.argument)
    if isinstance(outcome, str):
        await say.alert()
        await say.reply(f"points.redeem.{outcome}", code=press.argument)
        return
    await say.alert()
    await say.reply(
        "points.redeem.done",
        code=outcome.code.code,
        item=outcome.code.item,
        points=outcome.code.points,
    )
