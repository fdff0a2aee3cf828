"""Logging an operator can use, with secrets kept out of every line.

Plain text by default, one JSON object per line with `LOG_FORMAT=json`. Each handled
update is one line carrying its update id, the handler and the outcome. Message texts,
names, phone numbers and payout accounts are never logged; the secrets (token, webhook
secret, proxy password) are redacted wherever they might appear (exception texts included).
Start-up's lines can be held back until the bot runs, so that a failed start says one line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable

# Attributes of a record that are part of every record, not extras a caller added.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class Redact(logging.Filter):
    """Replace each secret wherever it appears in a record's final text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = message
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "[redacted]")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "[redacted]")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    secrets: Iterable[str],
    log_format: str = "text",
    level: int = logging.INFO,
    filters: Iterable[logging.Filter] = (),
) -> None:
    """Lines on stderr; HTTP client chatter (which carries the token in URLs) muted.

    `filters` rewrite records before the secrets are redacted from them.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for extra in filters:
        handler.addFilter(extra)
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class StartupHold(logging.Handler):
    """Holds every record from now until `end()`: kept if start-up succeeded, else dropped.

    A start-up that fails on the network then says one line (the caller's), not the retries
    and the traceback that led to it.
    """

    def __init__(self) -> None:
        super().__init__()
        root = logging.getLogger()
        self._targets = root.handlers[:]
        self._records: list[logging.LogRecord] = []
        root.handlers[:] = [self]

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)

    def end(self, keep: bool = True) -> None:
        """Give the log back to its handlers, with the held records if `keep`."""
        root = logging.getLogger()
        if root.handlers == [self]:
            root.handlers[:] = self._targets
        records, self._records = self._records, []
        for record in records if keep else ():
            for handler in self._targets:
                if record.levelno >= handler.level:
                    handler.handle(record)


def release_held_logs() -> None:
    """End a `StartupHold`, if one holds the log, keeping what it held."""
    for handler in logging.getLogger().handlers[:]:
        if isinstance(handler, StartupHold):
            handler.end()
