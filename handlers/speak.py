"""One way to speak: answer the person who acted, in their language; tell anyone else
through the outbox.

    say = Speaker(update, context)
    await say.reply("report.submitted", reference=reference)      # a message in this chat
    await say.alert("admin.only", popup=True)                     # a button press's answer
    text = await say.text("my.line", reference=reference)         # for composing
    await say.tell(Notice(rider, "rider.approved", {...}))        # someone else, via outbox

Answers to the current person are sent at once (they are waiting for them); messages to
anyone else go through the outbox, which delivers them once even across a crash. A button
answer that fails ("query is too old" after a restart) stops nothing.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Message, Update
from telegram._utils.types import ReplyMarkup
from telegram.error import TelegramError

from handlers.common import BotContext, language_of
from handlers.infra.notify import split_message
from locales import Phrases
from services.outbox import Notice

log = logging.getLogger(__name__)


class Speaker:
    """Speaks for the bot to the user of one update."""

    def __init__(self, update: Update, context: BotContext) -> None:
        self.update = update
        self.context = context
        self._language: str | None = None

    async def language(self) -> str:
        if self._language is None:
            self._language = await language_of(self.context, self.update.effective_user)
        return self._language

    async def text(self, key: str, /, **params: object) -> str:
        """The message `key` in this user's language."""
        return self.context.runtime.texts.get(await self.language(), key, **params)

    async def phrases(self) -> Phrases:
        """This user's catalogue, for composing longer messages: `t = await say.phrases()`."""
        runtime = self.context.runtime
        return Phrases(runtime.texts, await self.language(), runtime.settings.timezone)

    async def money(self, fen: int) -> str:
        return self.context.runtime.texts.money(await self.language(), fen)

    async def reply(
        self, key: str, /, *, reply_markup: ReplyMarkup | None = None, **params: object
    ) -> Message | None:
        """Send the message `key` to this update's chat."""
        return await self.send(await self.text(key, **params), reply_markup=reply_markup)

    async def send(self, text: str, *, reply_markup: ReplyMarkup | None = None) -> Message | None:
        """Send `text` (already in the user's language) to this chat, split if it is long."""
        chat = self.update.effective_chat
        if chat is None:
            return None
        pieces = split_message(text)
        sent = None
        for number, piece in enumerate(pieces, start=1):
            markup = reply_markup if number == len(pieces) else None
            sent = await self.context.bot.send_message(chat.id, piece, reply_markup=markup)
        return sent

    async def alert(
        self, key: str | None = None, /, *, popup: bool = False, **params: object
    ) -> None:
        """Answer this update's button press with the message `key` (or silently)."""
        await self.answer(None if key is None else await self.text(key, **params), popup=popup)

    async def answer(self, text: str | None, *, popup: bool = False) -> None:
        """Answer this update's button press with `text`, already in the user's language."""
        query = self.update.callback_query
        if query is not None:
            await answer_button(query, text, show_alert=popup)

    async def tell(self, *notices: Notice) -> None:
        """Tell other people something, through the outbox."""
        await self.context.runtime.outbox.send(*notices)


async def answer_button(
    query: CallbackQuery, text: str | None = None, *, show_alert: bool = False
) -> None:
    """Answer a button press; a failure ("query is too old" after a restart) stops nothing."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError as exc:
        log.info("button answer not delivered: %s", exc.message)
