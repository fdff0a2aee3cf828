"""Message catalogues: every user-facing string, in Chinese (default) and English.

The catalogues are gettext `.po` files under `locales/<lang>/LC_MESSAGES/bot.po`, keyed by
message id (`start.greeting`), with `str.format` placeholders (`{name}`). They are parsed and
compiled with Babel once at start-up; plurals come from each catalogue's Plural-Forms header
and dates and amounts are formatted by Babel for the user's locale.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from importlib import resources

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_BABEL_LOCALES = {"zh": Locale.parse("zh_Hans_CN"), "en": Locale.parse("en")}


def display_width(text: str) -> int:
    """Columns `text` takes in a fixed-width cell or a line of a chart: a Chinese (or other
    full-width) character takes two, anything else one."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def language_for(telegram_code: str | None, chosen: str | None = None) -> str:
    """The language to answer in: the user's choice, else any `zh*` is Chinese, else English.

    With no language code at all (Telegram omits it for some clients) we use the default.
    """
    if chosen in LANGUAGES:
        return chosen
    if not telegram_code:
        return DEFAULT_LANGUAGE
    return "zh" if telegram_code.lower().startswith("zh") else "en"


def read_catalog(language: str) -> Translations:
    """Parse one `.po` file and compile it in memory into gettext translations."""
    po = resources.files("locales").joinpath(language, "LC_MESSAGES", "bot.po")
    with po.open("rb") as source:
        catalog = read_po(source, locale=_BABEL_LOCALES[language], domain="bot")
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain="bot")


class Texts:
    """Looks up and formats messages for a language; loaded once and shared."""

    default_language = DEFAULT_LANGUAGE

    def __init__(self) -> None:
        self._catalogs = {language: read_catalog(language) for language in LANGUAGES}

    def get(self, language: str, key: str, /, **params: object) -> str:
        """The message `key` in `language`, with `{placeholders}` filled from `params`."""
        text = self._catalogs[language].gettext(key)
        return text.format(**params) if params else text

    def plural(self, language: str, key: str, count: int, /, **params: object) -> str:
        """A message whose wording depends on `count` (available as `{count}`)."""
        text = self._catalogs[language].ngettext(key, key, count)
        return text.format(count=count, **params)

    def money(self, language: str, fen: int) -> str:
        """An amount of money in fen, written the way the user reads yuan (`100.00 元`)."""
        amount = format_decimal(
            Decimal(fen).scaleb(-2), format="#,##0.00", locale=_BABEL_LOCALES[language]
        )
        return self.get(language, "money.yuan", amount=amount)

    def when(self, language: str, moment: datetime, zone: tzinfo) -> str:
        """A date and time in the programme's time zone, written the same in every language
        (2026-12-03 16:05): nothing to misread between 12/3 and 3/12, and sorted as it reads."""
        return moment.astimezone(zone).strftime(WHEN_FORMAT)


WHEN_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Phrases:
    """The catalogue in one language and time zone: `t("key", name=...)`, amounts, times."""

    texts: Texts
    language: str
    zone: tzinfo

    def __call__(self, key: str, /, **params: object) -> str:
        return self.texts.get(self.language, key, **params)

    def money(self, fen: int) -> str:
        return self.texts.money(self.language, fen)

    def when(self, moment: datetime) -> str:
        return self.texts.when(self.language, moment, self.zone)
