"""Catalogues: every key in both languages with the same placeholders; Babel formatting."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from locales import LANGUAGES, Texts, language_for


def catalog(language: str) -> dict[str, list[str]]:
    path = resources.files("locales").joinpath(language, "LC_MESSAGES", "bot.po")
    with path.open("rb") as source:
        parsed = read_po(source)
    return {
        str(m.id if isinstance(m.id, str) else m.id[0]): (
            [m.string] if isinstance(m.string, str) else list(m.string or ())
        )
        for m in parsed
        if m.id
    }


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
QUOTED = re.compile(r"“[^”]*”|「[^」]*」")  # examples of what to type keep their spaces


def stray_space(text: str) -> bool:
    """A space between Chinese and a number or a {placeholder}, either way round (not after
    a Latin word that ends in a digit, such as UTF-8 or Open311)."""
    text = re.sub(r"\{[a-z_]+\}", "0", QUOTED.sub("", text))
    if re.search(rf"{CJK} +[0-9]", text):
        return True
    return any(
        not re.search("[A-Za-z]", found.group(1))
        for found in re.finditer(rf"(\S*[0-9]) +{CJK}", text)
    )


def test_chinese_has_no_stray_spaces_and_one_register() -> None:
    """第3步, 审核员{name}: no space between Chinese and a number or a name; 你 throughout,
    and a report is a 线索 (clue) everywhere a rider or moderator reads it."""
    zh = [(key, text) for key, texts in catalog("zh").items() for text in texts]
    assert [key for key, text in zh if stray_space(text)] == []
    assert [key for key, text in zh if "您" in text or "报告" in text] == []


def test_both_languages_have_the_same_keys() -> None:
    zh, en = catalog("zh"), catalog("en")
    assert sorted(set(zh) - set(en)) == [], "missing in en"
    assert sorted(set(en) - set(zh)) == [], "missing in zh"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_key_is_given_twice(language: str) -> None:
    """Babel keeps one of two entries with the same key, silently: the other text is lost."""
    path = resources.files("locales").joinpath(language, "LC_MESSAGES", "bot.po")
    keys = [line for line in path.read_text("utf-8").splitlines() if line.startswith("msgid ")]
    assert sorted({key for key in keys if keys.count(key) > 1}) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_message_is_empty(language: str) -> None:
    empty = [key for key, forms in catalog(language).items() if not all(forms)]
    assert empty == []


def test_placeholders_match_between_languages() -> None:
    zh, en = catalog("zh"), catalog("en")
    mismatched = {
        key: (set().union(*map(placeholders, zh[key])), set().union(*map(placeholders, en[key])))
        for key in zh
        if key in en
        and set().union(*map(placeholders, zh[key])) != set().union(*map(placeholders, en[key]))
    }
    assert mismatched == {}


@pytest.mark.parametrize(
    ("code", "chosen", "expected"),
    [
        ("zh-hans", None, "zh"),
        ("zh-TW", None, "zh"),
        ("ZH", None, "zh"),
        ("en", None, "en"),
        ("ru", None, "en"),
        (None, None, "zh"),
        ("", None, "zh"),
        ("zh-hans", "en", "en"),
        ("en", "zh", "zh"),
        ("en", "fr", "en"),
    ],
)
def test_language_for(code: str | None, chosen: str | None, expected: str) -> None:
    assert language_for(code, chosen) == expected


def test_money_and_dates_are_formatted_by_locale() -> None:
    texts = Texts()
    assert texts.money("zh", 10000) == "100.00元"
    assert texts.money("en", 123456789) == "1,234,567.89 yuan"
    assert texts.money("zh", 5) == "0.05元"
    moment = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    assert texts.when("zh", moment, ZoneInfo("Asia/Shanghai")) == "2026-11-27 10:30"
    assert texts.when("en", moment, ZoneInfo("Asia/Shanghai")) == "2026-11-27 10:30"  # the same


def test_placeholders_are_filled_and_values_are_not_interpreted() -> None:
    texts = Texts()
    greeting = texts.get("en", "start.greeting", name="<b>{evil}</b>")
    assert "<b>{evil}</b>" in greeting
