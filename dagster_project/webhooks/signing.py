"""Stripe-style signatures: `X-Personas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

The timestamp is signed with the body, so a receiver that refuses signatures older than a
few minutes cannot be fed a replayed delivery.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Personas-Signature"
IDEMPOTENCY_HEADER = "X-Personas-Idempotency-Key"
EVENT_HEADER = "X-Personas-Event"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body` sent now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
           now: float | None = None) -> bool:
    """Whether `header` signs `body` with `secret` and is at most `tolerance_seconds` old (receivers' side)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _digest(secret, timestamp, body))
