"""Near me (🏠 附近驿站, /nearby), place problems, and the admins' /places.

    rider: 🏠 or /nearby --(location shared today)--> 3 nearest open places + a venue card each
                         --(none)--> "share your location" keyboard + towns to pick from
    location shared after that ask, no report draft in progress --> the same list (any other
    location goes on to the report)
    list: [More] next 3, [Merchants too] toggles; venue: [Closed / broken here] -> admins

Admins send the places file (XLSX or CSV) as a document; `/places template|undo|problems|
fixed <id>|photo <id>`.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import filters

from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext
from handlers.prompts import PromptReply
from handlers.speak import Speaker
from handlers.widgets import ask_location, drop_buttons
from services.places import (
    PROBLEM_KINDS,
    TOO_MANY_PROBLEMS,
    Found,
    ImportRefused,
    Place,
    Places,
)
from services.places_file import (
    AMENITY_ICONS,
    accepted_amenities,
    format_hours,
    riding_minutes,
    walking_minutes,
)

MORE = Verb("nmore")  # item: offset of the next page; argument: "m" with merchants
MERCHANTS = Verb("nmerch")  # item: 1 to show merchants too, 0 for stations only
PROBLEM = Verb("pprob")  # item: place id
PROBLEM_WHAT = Verb("pwhat")  # item: place id; argument: what is wrong (PROBLEM_KINDS)
PAGE = 3
MAX_REFUSALS_SHOWN = 30
PROBLEM_MARK = "📷"  # every language's "send a photo of the problem" prompt starts with it


# A photo replying to the bot's "send a photo of the problem" prompt.
PROBLEM_PHOTO_REPLY = PromptReply(PROBLEM_MARK) & filters.PHOTO
PLACES_FILE = filters.Document.FileExtension("xlsx") | filters.Document.FileExtension("csv")


def places(context: BotContext) -> Places:
    return context.runtime.places


# The 🏠 keyboard label in every language (riders may have switched since), from the catalogues.


# --- rider: near me ---------------------------------------------------------------------


@allow(Audience.RIDERS)
async def nearby_command(update: Update, context: BotContext) -> None:
    """/nearby or 🏠: the nearest open places to where the rider is now: a location shared
    in the last few minutes (said so), else asked for with the location button."""
    user = update.effective_user
    if user is None:
        return
    found = await places(context).recent_location(user.id)
    if found is None:
        await ask_location(update, context)
        return
    lat, lon, age = found
    await places(context).ask_location(user.id)  # a fresher location sent next answers it too
    await show_nearby(update, context, lat, lon, merchants=False, offset=0, age=age)


async def show_nearby(
    update: Update,
    context: BotContext,
    lat: float,
    lon: float,
    *,
    merchants: bool,
    offset: int,
    age: int | None = None,
) -> None:
    """One page: a list message with [More] / [Merchants too], then a venue card each. The
    header says which location it is from: `age` seconds ago (0: just sent; None: earlier
    today, for the list's next page)."""
    say = Speaker(update, context)
    page = await places(context).nearest(lat, lon, merchants=merchants, offset=offset, limit=PAGE)
    if not page.found:
        key = "nearby.none_open_more" if offset else "nearby.none_open"
        await say.reply(key, reply_markup=_list_buttons(await say.language(), context, merchants))
        return
    if age is None:
        where = await say.text("nearby.where.earlier")
    elif age < 60:
        where = await say.text("nearby.where.now")
    else:
        where = await say.text("nearby.where.recent", minutes=age // 60)
    header = "nearby.header_merchants" if merchants else "nearby.header"
    lines = [await say.text(header, where=where)]
    for number, found in enumerate(page.found, start=offset + 1):
        lines.append(await describe(say, context, number, found))
    flag = "m" if merchants else ""
    buttons = []
    if page.more:
        buttons.append(
            InlineKeyboardButton(
                await say.text("nearby.more"), callback_data=MORE.data(offset + PAGE, flag)
            )
        )
    buttons.append(
        InlineKeyboardButton(
            await say.text("nearby.stations_only" if merchants else "nearby.merchants_too"),
            callback_data=MERCHANTS.data(0 if merchants else 1),
        )
    )
    await say.send("\n\n".join(lines), reply_markup=InlineKeyboardMarkup([buttons]))
    await send_venues(update, context, page.found)


def _list_buttons(language: str, context: BotContext, merchants: bool) -> InlineKeyboardMarkup:
    key = "nearby.stations_only" if merchants else "nearby.merchants_too"
    label = context.runtime.texts.get(language, key)
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=MERCHANTS.data(0 if merchants else 1))]]
    )


async def send_venues(update: Update, context: BotContext, found: list[Found]) -> None:
    """A location card per place (the map app navigates there) with the problem button."""
    chat = update.effective_chat
    if chat is None:
        return
    say = Speaker(update, context)
    label = await say.text("nearby.problem_button")
    for item in found:
        place = item.place
        await context.bot.send_venue(
            chat.id,
            latitude=place.lat,
            longitude=place.lon,
            title=place.name[:64],
            address=place.address[:128],
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton(label, callback_data=PROBLEM.data(place.id))]]
            ),
        )


async def describe(say: Speaker, context: BotContext, number: int, found: Found) -> str:
    """One place for the list: name, distance and minutes, amenities, hours, phone, check."""
    place = found.place
    icon = "🏠" if place.kind == "station" else "🏪"
    lines = [f"{number}. {icon} {place.name}"]
    if not math.isnan(found.distance_m):
        lines.append(
            await say.text(
                "nearby.distance",
                distance=_distance(found.distance_m),
                walk=walking_minutes(found.distance_m),
                ride=riding_minutes(found.distance_m),
            )
        )
    else:
        key = "nearby.open_now" if places(context).is_open(place) else "nearby.closed_now"
        lines.append(await say.text(key))
    lines.append(f"📍 {place.address}")
    if place.amenities:
        names = [f"{AMENITY_ICONS[a]}{await say.text(f'amenity.{a}')}" for a in place.amenities]
        lines.append(" ".join(names))
    lines.append(f"⏰ {await hours_text(say, place)}")
    if place.benefit:
        lines.append(f"🎁 {place.benefit}")
    if place.prices:
        items = ", ".join(
            [
                await say.text("points.item", item=item.name, points=item.points)
                for item in place.prices
            ]
        )
        lines.append(f"⭐ {items}")
    if place.phone:
        lines.append(f"☎️ {place.phone}")
    if found.checked_at is not None:
        day = datetime.fromtimestamp(found.checked_at, UTC).astimezone(
            context.runtime.settings.timezone
        )
        lines.append(await say.text("nearby.checked", date=f"{day:%Y-%m-%d}"))
    return "\n".join(lines)


async def hours_text(say: Speaker, place: Place) -> str:
    days = (await say.text("nearby.day_names")).split(",")
    return format_hours(place.hours, days, await say.text("nearby.always_open"))


def _distance(metres: float) -> str:
    return f"{round(metres / 10) * 10:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


@allow(Audience.RIDERS)
@pressed
async def on_page(update: Update, context: BotContext, press: ButtonPress) -> None:
    """[More] and [Merchants too / Stations only] under a list."""
    user = press.user
    say = Speaker(update, context)
    await say.alert()
    location = await places(context).last_location(user.id)
    if location is None:
        await ask_location(update, context)
        return
    if press.verb is MORE:
        merchants, offset = press.argument == "m", max(press.item, 0)
    else:
        merchants, offset = press.item == 1, 0
    await show_nearby(update, context, *location, merchants=merchants, offset=offset)


@allow(Audience.RIDERS)
@pressed
async def on_town(update: Update, context: BotContext, press: ButtonPress) -> None:
    """A town picked from the list: its places, open ones marked."""
    say = Speaker(update, context)
    current = await places(context).current_set()
    if current is None or press.item != current.id:
        await say.alert("button.expired")
        return
    merchants = press.argument.endswith("m")
    index = press.argument.removesuffix("m")
    towns = await places(context).towns()
    if not index.isdigit() or int(index) >= len(towns):
        await say.alert("button.expired")
        return
    await say.alert()
    found = await places(context).in_town(towns[int(index)][0], merchants=merchants)
    lines = [await describe(say, context, n, item) for n, item in enumerate(found[:10], 1)]
    await say.send("\n\n".join(lines) or await say.text("nearby.no_places"))
    await send_venues(update, context, found[:PAGE])


@allow(Audience.RIDERS)
@pressed
async def on_problem(update: Update, context: BotContext, press: ButtonPress) -> None:
    """[⚠️ Something wrong here]: the place's card asks what, in its own buttons; nobody is
    alerted until the rider says."""
    say = Speaker(update, context)
    await say.alert()
    buttons = [
        InlineKeyboardButton(
            await say.text(f"places.problem.what.{what}"),
            callback_data=PROBLEM_WHAT.data(press.item, what),
        )
        for what in PROBLEM_KINDS
    ]
    if press.message is not None:
        with contextlib.suppress(TelegramError):
            await press.message.edit_reply_markup(InlineKeyboardMarkup([buttons[:2], buttons[2:]]))


@allow(Audience.RIDERS)
@pressed
async def on_problem_what(update: Update, context: BotContext, press: ButtonPress) -> None:
    """[Closed] [Broken] [Gone] [Other]: the admins hear of it; a photo may follow."""
    user = press.user
    say = Speaker(update, context)
    problem_id = await places(context).flag_problem(user.id, press.item, press.argument)
    if problem_id is None:
        await say.alert("button.expired")
        return
    if problem_id == TOO_MANY_PROBLEMS:
        await say.alert("places.problem.too_many", popup=True)
        return
    await say.alert("places.problem.thanks", popup=False)
    await drop_buttons(press.message)
    await say.reply("places.problem.photo_prompt", reply_markup=ForceReply(selective=True))


@allow(Audience.RIDERS)
async def on_problem_photo(update: Update, context: BotContext) -> None:
    """A photo replying to the problem prompt goes with the problem to the admins."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or not message.photo:
        return
    attached = await places(context).add_problem_photo(user.id, message.photo[-1].file_id)
    await Speaker(update, context).reply(
        "places.problem.photo_added_rider" if attached else "places.problem.photo_too_late"
    )


# --- admins: the places file ------------------------------------------------------------


@allow(Audience.ADMINS)
async def on_places_file(update: Update, context: BotContext) -> None:
    """An admin sends the places file: check every row, replace the set if all are good."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.document is None:
        return
    say = Speaker(update, context)
    document = message.document
    if (document.file_size or 0) > 10 * 1024 * 1024:
        await say.reply("places.file.too_big")
        return
    data = bytes(await (await context.bot.get_file(document.file_id)).download_as_bytearray())
    outcome = await places(context).import_file(data, document.file_name or "", user.id)
    if not isinstance(outcome, ImportRefused):
        await say.reply(
            "places.imported",
            count=outcome.count,
            stations=outcome.stations,
            merchants=outcome.merchants,
        )
        return
    if outcome.file_problem is not None:
        await say.reply(f"places.file.{outcome.file_problem}", detail=outcome.detail)
        return
    lines = [await say.text("places.refused", count=len(outcome.refusals))]
    for refusal in outcome.refusals[:MAX_REFUSALS_SHOWN]:
        lines.append(
            await say.text(
                "places.refused_row" if refusal.quoted else "places.refused_row_blank",
                row=refusal.row,
                column=refusal.column,
                problem=await say.text(
                    f"places.problem_kind.{refusal.reason}",
                    accepted=accepted_amenities(),
                    value=refusal.value,
                ),
                value=refusal.value,
            )
        )
    if len(outcome.refusals) > MAX_REFUSALS_SHOWN:
        lines.append(await say.text("places.refused_more", count=len(outcome.refusals)))
    await say.send("\n".join(lines))


@allow(Audience.ADMINS)
async def places_command(update: Update, context: BotContext) -> None:
    """/places [template | undo | problems | fixed <id> | photo <id>]."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None:
        return
    say = Speaker(update, context)
    args = context.args or []
    action = args[0].lower() if args else ""
    service = places(context)
    if action == "template":
        await context.bot.send_document(
            chat.id,
            service.template(),
            filename="places-template.xlsx",
            caption=await say.text("places.template_caption"),
        )
    elif action == "undo":
        restored = await service.undo()
        if restored is None:
            await say.reply("places.undo_nothing")
        else:
            await say.reply("places.undone", count=restored.place_count)
    elif action == "problems":
        problems = await service.open_problems()
        if not problems:
            await say.reply("places.problems_none")
            return
        lines = [
            await say.text(
                "places.problems_line",
                id=problem.id,
                name=problem.name,
                what=await say.text(f"places.problem.what.{problem.what}"),
                photo="📷" if problem.photo else "",
            )
            for problem in problems
        ]
        await say.send("\n".join(lines))
    elif action == "fixed" and len(args) == 2 and args[1].isdigit():
        done = await service.fix_problem(int(args[1]), user.id)
        await say.reply("places.fixed" if done else "places.fixed_unknown", id=args[1])
    elif action == "photo" and len(args) == 2 and args[1].isdigit():
        file_id = await service.problem_photo(int(args[1]))
        if file_id is None:
            await say.reply("places.no_photo", id=args[1])
        else:
            await context.bot.send_photo(chat.id, file_id)
    else:
        current = await service.current_set()
        await say.reply("places.usage", count=0 if current is None else current.place_count)
