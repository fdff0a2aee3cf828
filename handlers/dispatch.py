"""Where a location and a /start payload go, when more than one feature could take them.

Only bot.py imports this module: it is the one place that knows several features at once.

    location --(no report draft, "near me" asked for one)--> places: the nearest places
             --(otherwise)--> report: the draft's place
    text     --(a payout details step open)--> money: the name, then the account
             --(otherwise)--> report: a question's answer, the draft's description
    /start c<token> | r<code> --(merchant staff)--> membercard: the card check, the code
                              --(anyone else)--> onboarding: the ordinary start
    /start i<token>           --> invites: join as the admin's link says
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import filters

from handlers import invites, membercard, money, onboarding, places, report
from handlers.access import Audience, admitted, allow
from handlers.common import BotContext
from services.invites import LINK_PREFIX

DEEP_LINK = filters.Regex(r"^/start [cri][A-Za-z0-9_-]{4,60}$")


@allow(Audience.ANYONE)
async def on_location(update: Update, context: BotContext) -> None:
    """A shared location: the answer to "near me" if it asked for one (and no report draft
    is in progress), else the report's (handlers/report.py)."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.location is None:
        return
    lat, lon = message.location.latitude, message.location.longitude
    drafting = await context.runtime.reporting.draft(user.id) is not None
    if not drafting and await context.runtime.places.answers_ask(user.id, lat, lon):
        await places.show_nearby(update, context, lat, lon, merchants=False, offset=0, age=0)
        return
    await report.on_location(update, context)


@allow(Audience.ANYONE)
async def on_text(update: Update, context: BotContext) -> None:
    """A rider's words: the open payout details step's answer (and only while it is open),
    else what handlers/report.py makes of them."""
    if await money.in_payee_step(update, context):
        await money.on_payee_text(update, context)
        return
    await report.on_rider_text(update, context)


@allow(Audience.ANYONE)
async def start_link(update: Update, context: BotContext) -> None:
    """/start c<token> or r<code>: for merchant staff, the card check or the code; for anyone
    else, the ordinary start (nothing about the card)."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or not context.args:
        return
    if context.args[0].startswith(LINK_PREFIX):
        await invites.accept_link(update, context)
        return
    if not await admitted(Audience.MERCHANTS, update, context):
        await onboarding.start(update, context)
        return
    await membercard.scan_link(update, context)
