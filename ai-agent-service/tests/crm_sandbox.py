"""Reading the sandbox's CRMs from tests: what its signed-event receiver got, what its Bitrix24 portal holds,
and Gemini on respx beside it (the sandbox answers for itself on loopback)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import respx

from tests.gemini_stub import GeminiStub

SECRET = "whsec-test-0123456789"


@contextmanager
def gemini_beside_sandbox() -> Iterator[GeminiStub]:
    with respx.mock(assert_all_called=False) as router:
        stub = GeminiStub(router)
        router.route(host="127.0.0.1").pass_through()
        yield stub


async def received(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """What the receiver got, oldest first: headers (lower-case names), the raw body and the parsed one."""
    events = (await sandbox.get("/sandbox/crm/events")).json()["events"]
    return [{"headers": e["headers"], "raw": e["body"], "body": json.loads(e["body"])} for e in events]


async def portal(sandbox: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """The Bitrix24 portal's leads and activities."""
    return (await sandbox.get("/sandbox/bitrix24")).json()


def signed_correctly(event: dict[str, Any]) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), event["raw"].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(event["headers"]["x-signature"], expected)
