"""/ask: a rider reaches a person (services/asks.py); a moderator's reply answers them.

/ask <question>          the question goes to the moderators' chat at once
/ask                     a prompt (🙋) whose reply is the question
a reply to a 📨 message  (moderators' chat) the answer, sent to the rider
"""

from __future__ import annotations

import re

from telegram import ForceReply, Update
from telegram.ext import filters

from handlers.access import Audience, allow
from handlers.common import BotContext
from handlers.prompts import PromptReply
from handlers.speak import Speaker
from services.asks import ASKED_MARK, Asked, AskRefusal
from services.refusal import Refused

ASK_MARK = "🙋"  # every language's "write your question" prompt starts with it
ASK_REPLY = PromptReply(ASK_MARK) & filters.TEXT & ~filters.COMMAND
ASKED_REPLY = PromptReply(ASKED_MARK) & filters.TEXT & ~filters.COMMAND
_NUMBER = re.compile(r"#(\d{1,12})")


@allow(Audience.RIDERS)
async def ask_command(update: Update, context: BotContext) -> None:
    """/ask <question>, or /ask alone to be asked for it."""
    text = " ".join(context.args or [])
    if not text:
        await Speaker(update, context).reply("ask.prompt", reply_markup=ForceReply(selective=True))
        return
    await pass_on(update, context, text)


@allow(Audience.RIDERS)
async def on_ask_reply(update: Update, context: BotContext) -> None:
    """The rider's reply to the 🙋 prompt: their question."""
    message = update.effective_message
    if message is not None and message.text:
        await pass_on(update, context, message.text)


async def pass_on(update: Update, context: BotContext, text: str) -> None:
    user = update.effective_user
    if user is None:
        return
    outcome = await context.runtime.asks.ask(user.id, text)
    await tell(Speaker(update, context), outcome, "ask.sent")


@allow(Audience.MODERATORS)
async def on_answer(update: Update, context: BotContext) -> None:
    """A moderator's reply to a 📨 question: the rider gets it."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return
    found = _NUMBER.search(message.reply_to_message.text or "")
    if found is None:
        return
    outcome = await context.runtime.asks.answer(int(found.group(1)), user.id, message.text or "")
    await tell(Speaker(update, context), outcome, "ask.answer_sent")


async def tell(say: Speaker, outcome: Asked | Refused[AskRefusal], done: str) -> None:
    """`done` with the question's number, or why nothing was passed on."""
    if isinstance(outcome, Asked):
        await say.reply(done, number=outcome.number)
    else:
        await say.reply(f"ask.refused.{outcome.reason}", limit=outcome.limit or 0)
