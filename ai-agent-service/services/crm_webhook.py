"""The door to the business's own CRM endpoint (CRM_WEBHOOK_URL): an event POSTed as JSON, signed with
CRM_WEBHOOK_SECRET so the receiver can tell it came from us, with its id for the receiver's idempotency.

Only a 2xx answer means the receiver has the event. Anything else, a timeout included, is worth another try:
the receiver's owner decides when it is back, and nothing is lost meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from service_kit.errors import TransientError

TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-Signature"
EVENT_ID_HEADER = "X-Event-Id"


class WebhookNotTaken(TransientError):
    """The receiver did not answer 2xx (or did not answer at all); the event is sent again later."""


def signature(secret: str, raw_body: bytes) -> str:
    """The X-Signature value: `sha256=` and the hex HMAC-SHA256 of the exact bytes sent."""
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


class CrmWebhookClient:
    def __init__(self, url: str, secret: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self._url = url
        self._secret = secret
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def send(self, body: dict[str, Any]) -> None:
        """POSTs one event; returns when the receiver answered 2xx, raises WebhookNotTaken otherwise."""
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: body["event_id"],
            SIGNATURE_HEADER: signature(self._secret, raw),
        }
        try:
            response = await self._http.post(self._url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookNotTaken(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise WebhookNotTaken(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self._http.aclose()
