"""Updates PTB cannot parse: logged by id only, and skipped so that polling moves past them.

PTB logs such an update whole (what a user sent included). In long polling it also never
confirms it, so the next getUpdates returns it again: the bot would spin on it for ever,
logging it each time. The request class below hands PTB the update's bare id instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)
_UPDATE_ID = re.compile(r"""['"]update_id['"]\s*:\s*(-?\d+)""")


class UnparsedUpdates(logging.Filter):
    """PTB logs an update it cannot parse whole; keep only its id, never what a user sent.

    Matches PTB's "Received data was ..." records (getUpdates and the webhook server) and
    its debug line "Webhook received data: ...".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram") or "eceived data" not in str(record.msg):
            return True
        ids = ", ".join(_UPDATE_ID.findall(str(record.args))) or "unknown"
        if record.levelno < logging.WARNING:
            record.msg, record.args = "webhook received update %s", (ids,)
            return True
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "could not parse update %s from Telegram (%s); its contents are not logged"
        record.args = (ids, type(error).__name__ if error else "unknown error")
        record.exc_info = record.exc_text = None
        return True


class SkipUnparsedUpdates(HTTPXRequest):
    """The getUpdates request: an update that cannot be parsed becomes `{"update_id": N}`.
    Each batch, as received, also goes to `on_received` (the update inbox keeps it)."""

    def __init__(
        self, *args: Any, on_received: Callable[[list[Any]], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_received = on_received

    # PTB calls it on the instance (`self.parse_json_payload`): an instance method may override it.
    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:  # type: ignore[override]
        data = HTTPXRequest.parse_json_payload(payload)
        if isinstance(data.get("result"), list):
            data["result"] = [_parsable(update) for update in data["result"]]
            if self._on_received is not None:
                self._on_received(data["result"])
        return data


def _parsable(update: Any) -> Any:
    try:
        Update.de_json(update, None)
    except Exception as exc:
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int):
            return update  # not even an id: PTB's own handling (logged by id above)
        log.warning(
            "could not parse update %s from Telegram (%s); skipped, its contents are not logged",
            update_id,
            type(exc).__name__,
        )
        return {"update_id": update_id}
    return update
