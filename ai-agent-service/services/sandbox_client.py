"""The sandbox's customer side (SANDBOX_URL), for the console's "try it as a customer" on a sandbox install:
write into a chat as a client (text, or a voice note with what was said, since the fake Gemini cannot hear),
and read the chat as the client sees it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 10.0


class SandboxUnavailable(Exception):
    """The sandbox did not take the request; the message says why."""


@dataclass(frozen=True)
class Customer:
    phone: str
    name: str
    business_name: str


class SandboxClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    async def write(self, customer: Customer, text: str) -> None:
        await self._inject(customer, {"text": text})

    async def send_voice(self, customer: Customer, audio: bytes, said: str) -> None:
        fields = {"type": "ptt", "audio_base64": base64.b64encode(audio).decode("ascii"), "transcript": said}
        await self._inject(customer, fields)

    async def chat(self, phone: str) -> list[dict[str, Any]]:
        """The chat's messages, oldest first, in Wappi's shape (fromMe, body, type, time)."""
        answer = await self._call("GET", f"/sandbox/chats/{phone}")
        return list(answer.get("messages", []))

    async def _inject(self, customer: Customer, fields: dict[str, Any]) -> None:
        body = {
            "phone": customer.phone,
            "sender_name": customer.name or None,
            "business_name": customer.business_name or None,
            **fields,
        }
        await self._call("POST", "/sandbox/messages", json=body)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=TIMEOUT_S) as client:
                answer = await client.request(method, path, **kwargs)
                answer.raise_for_status()
                return answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SandboxUnavailable(f"{method} {path}: {exc}") from exc
