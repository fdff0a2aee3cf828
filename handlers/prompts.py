"""Answers to the bot's own questions: a reply to a prompt whose text starts with a mark.

Each kind of question (a moderator's question for a rider, payout details, ...) has its own
mark, the first characters of its prompt in every language, and its own filter; a test checks
that every language's prompt starts with its mark. Only such a reply is taken as the answer,
so ordinary text can never be mistaken for one.
"""

from __future__ import annotations

from telegram import Message
from telegram.ext import filters


class PromptReply(filters.MessageFilter):
    """A reply to one of the bot's prompts that start with `mark`."""

    def __init__(self, mark: str) -> None:
        super().__init__(name=f"PromptReply({mark!r})")
        self.mark = mark

    def filter(self, message: Message) -> bool:
        prompt = message.reply_to_message
        return (
            prompt is not None
            and prompt.from_user is not None
            and prompt.from_user.is_bot
            and (prompt.text or "").startswith(self.mark)
        )
