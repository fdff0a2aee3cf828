"""Best-effort re-implementation of Telegram's text formatting (``parse_mode``).

Telegram turns ``parse_mode`` markup into plain text plus ``entities`` (offsets and lengths in
UTF-16 code units) and answers 400 ``can't parse entities: ...`` for malformed markup. Doing the
same here lets end-to-end tests see the text a user would actually read and catches the classic
bot bug of interpolating user input (``<``, ``.``, ``_`` ...) into formatted messages unescaped.

Supported: ``HTML`` (the full documented tag set), ``MarkdownV2`` and legacy ``Markdown``.
Error texts imitate Telegram's but are not guaranteed to be byte-identical.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .models import ApiError

Entity = dict[str, Any]

_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9-]*)(.*)\Z", re.DOTALL)
_ATTR_RE = re.compile(r"""([a-zA-Z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_CHAR_REF_RE = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,8}|lt|gt|amp|quot);")
_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "[": "TextUrl",
}
_MDV2_TYPES = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def format_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Return (plain text, entities) for ``text`` rendered with ``parse_mode``."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode:
        raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
    return text, []


class _Builder:
    """Accumulates output text and tracks the UTF-16 position for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[Entity] = []

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += utf16_len(chunk)

    def entity(self, type_: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": type_, "offset": start, "length": self.pos - start} | extra
            )

    def result(self) -> tuple[str, list[Entity]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


def parse_html(source: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    # Each open tag: (name, utf-16 start, attributes).
    stack: list[tuple[str, int, dict[str, str]]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = _CHAR_REF_RE.match(source, i)
            if match:
                out.add(html.unescape(match.group(0)))
                i = match.end()
                continue
            out.add("&")
            i += 1
            continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        end = source.find(">", i)
        if end == -1:
            raise _parse_error(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        inner = source[i + 1 : end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise _parse_error(
                    f'Unexpected end tag "{name}" at byte offset {_byte_offset(source, i)}'
                )
            open_name, start, attrs = stack.pop()
            if name != open_name:
                raise _parse_error(
                    f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            _close_html_tag(out, stack, open_name, start, attrs)
        else:
            match = _TAG_RE.match(inner.rstrip("/"))
            if not match:
                raise _parse_error(
                    f"Unexpected end of name token at byte offset {_byte_offset(source, i + 1)}"
                )
            name = match.group(1).lower()
            if name not in _HTML_TAGS:
                raise _parse_error(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}'
                )
            attrs = {
                m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                for m in _ATTR_RE.finditer(match.group(2))
            }
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise _parse_error(
                    f'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(source, i)}"
                )
            stack.append((name, out.pos, attrs))
        i = end + 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html_tag(
    out: _Builder,
    stack: list[tuple[str, int, dict[str, str]]],
    name: str,
    start: int,
    attrs: dict[str, str],
) -> None:
    type_ = _HTML_TAGS[name]
    if name == "a":
        href = attrs.get("href", "")
        if href.startswith("tg://user?id="):
            out.entity("text_mention", start, user={"id": int(href.split("=", 1)[1] or 0)})
        elif href:
            out.entity("text_link", start, url=href)
        return
    if name == "code" and stack and stack[-1][0] == "pre":
        language = attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1][2]["language"] = language.removeprefix("language-")
            return
    if name == "pre" and "language" in attrs:
        out.entity("pre", start, language=attrs["language"])
        return
    if name == "blockquote" and "expandable" in attrs:
        out.entity("expandable_blockquote", start)
        return
    if name == "tg-emoji":
        out.entity("custom_emoji", start, custom_emoji_id=attrs.get("emoji-id", ""))
        return
    out.entity(type_, start)


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[tuple[str, int, int]] = []  # (marker, utf-16 start, source index)
    i = 0
    at_line_start = True
    quote_start: int | None = None
    while i < len(source):
        char = source[i]
        if at_line_start:
            at_line_start = False
            if char == ">":
                if quote_start is None:
                    quote_start = out.pos
                i += 1
                continue
            if quote_start is not None:
                out.entity("blockquote", quote_start)
                quote_start = None
        if char == "\\":
            if i + 1 < len(source) and 0 < ord(source[i + 1]) < 127:
                out.add(source[i + 1])
                i += 2
                continue
            raise _parse_error("Character '\\' is reserved and must be escaped with itself")
        if char == "`":
            i = _markdown_v2_code(source, i, out)
            continue
        if char == "\n":
            out.add(char)
            at_line_start = True
            i += 1
            continue
        marker = source[i : i + 2] if source.startswith(("__", "||"), i) else char
        if marker in _MDV2_TYPES:
            open_markers = [entry[0] for entry in stack]
            if marker in open_markers:
                if open_markers[-1] != marker:
                    name = _MDV2_NAMES[open_markers[-1]]
                    raise _parse_error(
                        f"Can't find end of {name} entity at byte offset "
                        f"{_byte_offset(source, stack[-1][2])}"
                    )
                _, start, _ = stack.pop()
                out.entity(_MDV2_TYPES[marker], start)
            else:
                stack.append((marker, out.pos, i))
            i += len(marker)
            continue
        if char == "[":
            stack.append(("[", out.pos, i))
            i += 1
            continue
        if char == "]" and stack and stack[-1][0] == "[":
            _, start, _ = stack.pop()
            close = i + 2
            while close < len(source) and source[close] != ")":
                close += 2 if source[close] == "\\" else 1
            if not source.startswith("(", i + 1) or close >= len(source):
                raise _parse_error(
                    f"Can't find end of a URL at byte offset {_byte_offset(source, i)}"
                )
            url = re.sub(r"\\(.)", r"\1", source[i + 2 : close])
            if url.startswith("tg://user?id="):
                out.entity("text_mention", start, user={"id": int(url.split("=", 1)[1] or 0)})
            else:
                out.entity("text_link", start, url=url)
            i = close + 1
            continue
        if char in _MDV2_RESERVED:
            raise _parse_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.add(char)
        i += 1
    if stack:
        marker, _, index = stack[-1]
        raise _parse_error(
            f"Can't find end of {_MDV2_NAMES[marker]} entity at byte offset "
            f"{_byte_offset(source, index)}"
        )
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.result()


def _markdown_v2_code(source: str, i: int, out: _Builder) -> int:
    """Consume inline code or a pre block starting at ``source[i]``; return the next index."""
    fence = "```" if source.startswith("```", i) else "`"
    j = i + len(fence)
    language = ""
    if fence == "```":
        newline = source.find("\n", j)
        first_line = source[j:newline] if newline != -1 else ""
        if newline != -1 and first_line and " " not in first_line and "`" not in first_line:
            language = first_line
            j = newline + 1
    start = out.pos
    while j < len(source):
        if source[j] == "\\" and j + 1 < len(source) and source[j + 1] in "`\\":
            out.add(source[j + 1])
            j += 2
            continue
        if source.startswith(fence, j):
            if fence == "```":
                out.entity("pre", start, **({"language": language} if language else {}))
            else:
                out.entity("code", start)
            return j + len(fence)
        out.add(source[j])
        j += 1
    kind = "Pre" if fence == "```" else "Code"
    raise _parse_error(f"Can't find end of {kind} entity at byte offset {_byte_offset(source, i)}")


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Legacy ``Markdown``: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Builder()
    i = 0
    simple = {"*": "bold", "_": "italic", "`": "code"}
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and source[i + 1] in "*_`[":
            out.add(source[i + 1])
            i += 2
            continue
        if source.startswith("```", i):
            close = source.find("```", i + 3)
            if close == -1:
                raise _parse_error(
                    "Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(source, i)}"
                )
            start = out.pos
            out.add(source[i + 3 : close])
            out.entity("pre", start)
            i = close + 3
            continue
        if char in simple:
            close = source.find(char, i + 1)
            if close == -1:
                raise _parse_error(
                    "Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(source, i)}"
                )
            start = out.pos
            out.add(source[i + 1 : close])
            out.entity(simple[char], start)
            i = close + 1
            continue
        if char == "[":
            match = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(source, i)
            if match:
                start = out.pos
                out.add(match.group(1))
                out.entity("text_link", start, url=match.group(2))
                i = match.end()
                continue
        out.add(char)
        i += 1
    return out.result()
