"""Reply-keyboard labels as filters, built from the catalogues in every language (a rider
may have switched language since their keyboard was drawn)."""

from __future__ import annotations

from telegram import Message
from telegram.ext import filters

from locales import LANGUAGES, Texts


class KeyboardLabel(filters.MessageFilter):
    """A message whose text is exactly one of the labels of `keys`, in any language."""

    def __init__(self, texts: Texts, *keys: str) -> None:
        super().__init__(name=f"KeyboardLabel{keys}")
        self.labels = frozenset(texts.get(language, key) for key in keys for language in LANGUAGES)

    def filter(self, message: Message) -> bool:
        return message.text in self.labels
