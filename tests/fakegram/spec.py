"""Checks every Bot API call against the official specification (``spec/api.json``).

The server runs :func:`check_call` on every request before executing it, so the stand-in
refuses what real Telegram refuses, generically for every method and type the specification
knows:

* parameters the method does not have (``Bad Request: unknown parameter X``; real Telegram
  silently ignores them, the stand-in refuses them to catch typos in the bot);
* required parameters and object fields that are missing;
* values of the wrong type: ``Integer``, ``Float``, ``Boolean``, ``String``, ``InputFile``
  (an uploaded part), ``Array of X`` and objects, checked field by field and recursively
  (keyboards, buttons, ``InputMedia*``, ``BotCommand``, ``ReplyParameters`` ...), abstract
  types resolved to their subtypes by their ``type`` field, union types tried in turn;
  unknown object fields are refused as well;
* constraints the field and type descriptions state: ``must be X`` on ``type`` fields,
  ``N-M characters`` / ``N-M bytes`` on strings (texts and captions, counted "after entities
  parsing", are left to ``world.py``, which parses them), "exactly one / at most one of the
  fields ... must be used" (button kinds) and command names of ``[a-z0-9_]``.

Form and multipart values arrive as strings, so top-level numbers and booleans may be given
as their string form, like Telegram accepts; values inside JSON objects must have their JSON
type. Errors use Telegram's own descriptions where it has a specific one (``BUTTON_DATA_INVALID``,
``BOT_COMMAND_INVALID``, ``message text is empty`` ...).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("spec") / "api.json"

_ARRAY = "Array of "
_INT_RE = re.compile(r"-?\d+")
_FLOAT_RE = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_FORM_BOOLEANS = frozenset({"true", "false", "1", "0"})
_LIMIT_RE = re.compile(r"(\d+)-(\d+) (characters|bytes)(?! after entit)")
_CONST_RE = re.compile(r"(?:must be|always) [\"“]?(\w+)")
_ONE_OF_RE = re.compile(r"(Exactly|At most) one of the fields (other than )?(.+?) must be used")
# Character sets the descriptions state in words.
_CHARSETS = {
    "Can contain only lowercase English letters, digits and underscores": re.compile(r"[a-z0-9_]*"),
}
# Telegram's own descriptions for some refusals, by (method or type, field).
_TELEGRAM_ERRORS = {
    ("InlineKeyboardButton", "callback_data"): "BUTTON_DATA_INVALID",
    ("BotCommand", "command"): "BOT_COMMAND_INVALID",
    ("BotCommand", "description"): "BOT_COMMAND_DESCRIPTION_INVALID",
    ("answerCallbackQuery", "text"): "MESSAGE_TOO_LONG",
}
_MISSING = {"text": "message text is empty", "chat_id": "chat_id is empty"}
# Where the stand-in knowingly accepts more than the specification: fractional long-poll
# timeouts keep tests fast.
_EXTENSIONS = {("getUpdates", "timeout"): ("Float",)}


class SpecError(Exception):
    """A refusal; ``str()`` is the description after ``Bad Request: ``."""

    def within(self, context: str) -> SpecError:
        """This refusal, explained as happening inside ``context``."""
        detail = str(self)
        return SpecError(f"{context}{detail}" if detail.startswith("[") else f"{context} {detail}")


class TelegramCode(SpecError):
    """A refusal Telegram reports by a bare code such as BUTTON_DATA_INVALID, wherever it is."""

    def within(self, context: str) -> SpecError:
        return self


@dataclass(frozen=True)
class Field:
    """One parameter of a method or field of a type, with the constraints its text states."""

    owner: str
    name: str
    types: tuple[str, ...]
    required: bool
    const: str | None
    length: tuple[int, int, str] | None  # (min, max, "characters" | "bytes")
    charset: re.Pattern[str] | None

    @classmethod
    def parse(cls, owner: str, raw: dict[str, Any]) -> Field:
        description = str(raw.get("description", ""))
        const = _CONST_RE.search(description) if raw["name"] == "type" else None
        limit = _LIMIT_RE.search(description)
        charset = next((rx for words, rx in _CHARSETS.items() if words in description), None)
        return cls(
            owner=owner,
            name=str(raw["name"]),
            types=tuple(raw["types"]),
            required=bool(raw["required"]),
            const=const.group(1) if const else None,
            length=(int(limit.group(1)), int(limit.group(2)), limit.group(3)) if limit else None,
            charset=charset,
        )

    def refusal(self, default: str) -> SpecError:
        code = _TELEGRAM_ERRORS.get((self.owner, self.name))
        return TelegramCode(code) if code else SpecError(default)


@dataclass(frozen=True)
class TypeSpec:
    """An object type: its fields, its subtypes (abstract types) and its one-of rule."""

    name: str
    fields: dict[str, Field]
    subtypes: tuple[str, ...]
    one_of: tuple[str, frozenset[str]] | None  # ("Exactly" | "At most", field names)
    string_allowed: bool  # "String can be used instead of this object"

    @classmethod
    def parse(cls, name: str, raw: dict[str, Any]) -> TypeSpec:
        fields = {f["name"]: Field.parse(name, f) for f in raw.get("fields", [])}
        description = " ".join(raw.get("description", []))
        one_of = None
        match = _ONE_OF_RE.search(description)
        if match:
            listed = {n for n in re.split(r",\s*(?:and |or )?|\s+(?:and|or)\s+", match.group(3))}
            names = set(fields) - listed if match.group(2) else listed & set(fields)
            one_of = (match.group(1), frozenset(names))
        return cls(
            name=name,
            fields=fields,
            subtypes=tuple(raw.get("subtypes", [])),
            one_of=one_of,
            string_allowed="String can be used instead of this object" in description,
        )


@dataclass(frozen=True)
class Spec:
    """The parsed specification: methods with their parameters, and object types."""

    version: str
    methods: dict[str, dict[str, Field]]
    types: dict[str, TypeSpec]

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> Spec:
        raw = json.loads(path.read_text(encoding="utf-8"))
        for (method, name), extended in _EXTENSIONS.items():
            field = next(f for f in raw["methods"][method]["fields"] if f["name"] == name)
            field["types"] = list(extended)
        methods = {
            name: {f["name"]: Field.parse(name, f) for f in method.get("fields", [])}
            for name, method in raw["methods"].items()
        }
        types = {name: TypeSpec.parse(name, t) for name, t in raw["types"].items()}
        return cls(str(raw["version"]), methods, types)

    def concrete(self, name: str) -> list[str]:
        """``name`` itself, or the concrete subtypes of an abstract type (recursively)."""
        spec = self.types.get(name)
        if spec is None or not spec.subtypes:
            return [name]
        return [leaf for sub in spec.subtypes for leaf in self.concrete(sub)]


@functools.cache
def spec() -> Spec:
    return Spec.load()


def check_call(method: str, params: dict[str, Any], uploads: Collection[str] = ()) -> str | None:
    """Telegram's error description for the call ``method(params)``, or None if it is valid.

    ``uploads`` are the names of the multipart file parts of the request.
    """
    fields = spec().methods.get(method)
    if fields is None:
        return f"Bad Request: method {method} is not in the Bot API specification"
    try:
        _check_parameters(fields, params, uploads)
    except SpecError as error:
        return f"Bad Request: {error}"
    return None


def _check_parameters(
    fields: dict[str, Field], params: dict[str, Any], uploads: Collection[str]
) -> None:
    for name in params:
        if name not in fields:
            raise SpecError(f"unknown parameter {name}")
    for field in fields.values():
        value = params.get(field.name)
        if value is None:
            if field.name in uploads and "InputFile" in field.types:
                continue
            if field.required:
                raise SpecError(_MISSING.get(field.name, f'parameter "{field.name}" is required'))
            continue
        try:
            _check_field(field, value, form=True)
        except SpecError as error:
            raise error.within(f'parameter "{field.name}"') from None


def _check_field(field: Field, value: Any, *, form: bool) -> None:
    """Check one present value against its field's types and constraints."""
    _check_types(field.types, value, form=form)
    if field.const is not None and value != field.const:
        raise SpecError(f'must be "{field.const}"')
    if not isinstance(value, str):
        return
    if field.length is not None:
        low, high, unit = field.length
        size = len(value.encode("utf-8")) if unit == "bytes" else len(value)
        if not low <= size <= high:
            raise field.refusal(f"must be {low}-{high} {unit} long, got {size}")
    if field.charset is not None and not field.charset.fullmatch(value):
        raise field.refusal(f"has characters outside {field.charset.pattern}")


def _check_types(types: Iterable[str], value: Any, *, form: bool) -> None:
    """Accept ``value`` if it matches one of ``types``; otherwise raise the most telling error."""
    types = list(types)
    items = [t.removeprefix(_ARRAY) for t in types if t.startswith(_ARRAY)]
    if items and isinstance(value, list):
        _check_array(items, value)
        return
    declared = [t for t in types if not t.startswith(_ARRAY) and not _is_primitive(t)]
    if any(_primitive_matches(t, value, form=form) for t in types if _is_primitive(t)):
        return
    objects = [leaf for name in declared for leaf in spec().concrete(name)]
    if isinstance(value, str) and any(_string_allowed(name) for name in objects):
        return
    if objects and isinstance(value, dict):
        _check_union(" or ".join(declared), objects, value)
        return
    raise SpecError(f"must be of type {' or '.join(types)}")


def _check_array(item_types: list[str], items: list[Any]) -> None:
    for index, item in enumerate(items):
        try:
            _check_types(item_types, item, form=False)
        except SpecError as error:
            raise error.within(f"[{index}]") from None


def _is_primitive(type_name: str) -> bool:
    return type_name in ("Integer", "Float", "Boolean", "True", "String", "InputFile")


def _primitive_matches(type_name: str, value: Any, *, form: bool) -> bool:
    if type_name == "InputFile":
        return False  # only ever an uploaded part, never a value
    if type_name == "String":
        return isinstance(value, str)
    if form and isinstance(value, str):
        if type_name == "Integer":
            return _INT_RE.fullmatch(value) is not None
        if type_name == "Float":
            return _FLOAT_RE.fullmatch(value) is not None
        return value.lower() in _FORM_BOOLEANS
    if isinstance(value, bool):
        return type_name in ("Boolean", "True")
    if type_name == "Integer":
        return isinstance(value, int)
    if type_name == "Float":
        return isinstance(value, int | float)
    return False


def _string_allowed(type_name: str) -> bool:
    type_spec = spec().types.get(type_name)
    return type_spec is not None and type_spec.string_allowed


def _check_union(declared: str, candidates: list[str], value: dict[str, Any]) -> None:
    """``value`` must be one of the object types ``candidates``; errors name the likeliest."""
    fitting = [name for name in candidates if _fits(spec().types[name], value)]
    if not fitting:
        if len(candidates) == 1:
            fitting = candidates
        else:
            kinds = ", ".join(candidates)
            raise SpecError(f"can't parse {declared}: it is none of {kinds}")
    first_error: SpecError | None = None
    for name in fitting:
        try:
            _check_object(spec().types[name], value)
        except SpecError as error:
            first_error = first_error or error
        else:
            return
    assert first_error is not None
    raise first_error


def _fits(type_spec: TypeSpec, value: dict[str, Any]) -> bool:
    """Whether ``value`` looks like ``type_spec``: its ``type`` tag and required fields match."""
    for field in type_spec.fields.values():
        if field.const is not None and value.get(field.name) != field.const:
            return False
        if field.required and field.name not in value:
            return False
    return True


def _check_object(type_spec: TypeSpec, value: dict[str, Any]) -> None:
    try:
        _check_fields(type_spec, value)
    except SpecError as error:
        raise error.within(f"can't parse {type_spec.name}:") from None


def _check_fields(type_spec: TypeSpec, value: dict[str, Any]) -> None:
    for name in value:
        if name not in type_spec.fields:
            raise SpecError(f'unknown field "{name}"')
    for field in type_spec.fields.values():
        item = value.get(field.name)
        if item is None:
            if field.required:
                raise SpecError(f'field "{field.name}" is required')
            continue
        try:
            _check_field(field, item, form=False)
        except SpecError as error:
            raise error.within(f'field "{field.name}"') from None
    if type_spec.one_of is not None:
        rule, names = type_spec.one_of
        used = sorted(names & {k for k, v in value.items() if v is not None})
        if len(used) > 1 or (rule == "Exactly" and not used):
            wanted = "exactly one" if rule == "Exactly" else "at most one"
            raise SpecError(f"{wanted} of {', '.join(sorted(names))} must be used, got {used}")
