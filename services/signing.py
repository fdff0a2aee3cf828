"""Signatures the bot gives and checks outside Telegram.

Webhook bodies, both ways, are signed as Stripe signs its events: the header
`X-Suishoupai-Signature: t=<unix seconds>,v1=<hex>` where hex is HMAC-SHA256 over
`<t>.<body>` with the department's secret; a signature older than `TOLERANCE_SECONDS` (or as
far in the future) is refused, so a captured request cannot be replayed later.

Links the bot hands out (an e-mail's update page, a case photo) carry a sealed token: a few
numbers, their expiry and a truncated HMAC, in URL-safe base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

SIGNATURE_HEADER = "X-Suishoupai-Signature"
TOLERANCE_SECONDS = 300
_MAC_BYTES = 12


def signature(secret: str, body: bytes, now: int) -> str:
    """The header value that signs `body` at `now`."""
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={now},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: int) -> bool:
    """Whether `header` signs `body` with `secret`, recently enough."""
    parts = dict(item.partition("=")[::2] for item in header.split(",") if "=" in item)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, body, int(stamp)).partition(",v1=")[2]
    return hmac.compare_digest(expected, given)


def seal(key: bytes, purpose: str, values: tuple[int, ...], expires_at: int) -> str:
    """A token carrying `values` for `purpose` until `expires_at`."""
    payload = struct.pack(f">{len(values) + 1}q", *values, expires_at)
    return base64.urlsafe_b64encode(payload + _mac(key, purpose, payload)).decode().rstrip("=")


def unseal(key: bytes, purpose: str, token: str, count: int, now: int) -> tuple[int, ...] | None:
    """The `count` values sealed in `token` for `purpose`; None if forged, for another purpose
    or expired."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    size = 8 * (count + 1)
    if len(raw) != size + _MAC_BYTES:
        return None
    payload, mac = raw[:size], raw[size:]
    if not hmac.compare_digest(mac, _mac(key, purpose, payload)):
        return None
    *values, expires_at = struct.unpack(f">{count + 1}q", payload)
    return tuple(values) if expires_at > now else None


def _mac(key: bytes, purpose: str, payload: bytes) -> bytes:
    return hmac.new(key, purpose.encode() + b"\0" + payload, hashlib.sha256).digest()[:_MAC_BYTES]
