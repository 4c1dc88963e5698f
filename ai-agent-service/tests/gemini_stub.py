"""Gemini on respx for unit tests: canned answers per prompt kind, and every prompt kept for assertions."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import respx

from services.work_slots import slot_given_back


def gemini_answer(
    payload: dict[str, Any] | str, prompt_tokens: int = 120, output_tokens: int = 30
) -> httpx.Response:
    """A generateContent response carrying `payload` as the model's JSON text."""
    text_part = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return httpx.Response(
        200,
        json={
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text_part}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "thoughtsTokenCount": 10,
                "totalTokenCount": prompt_tokens + output_tokens + 10,
            },
            "modelVersion": "gemini-2.5-pro",
        },
    )


Responder = Callable[[str], "dict[str, Any] | str | httpx.Response"]


def default_moderator(prompt: str) -> dict[str, Any]:
    company = "Название компании: не указано" not in prompt
    return {"isClient": True if company else None, "confidence": 0.9, "reasoning": "test rule"}


def default_sales(prompt: str) -> dict[str, Any]:
    return {
        "reply": "Спасибо за вопрос! Расскажите, какая задача у вас сейчас?",
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }


def touch_text(prompt: str) -> dict:
    """A follow-up touch naming its number ("Касание 2: ..."); other prompts get the default sales answer."""
    touch = re.search(r"КАСАНИЕ #(\d+)", prompt)
    if touch is None:
        return default_sales(prompt)
    return {"message": f"Касание {touch.group(1)}: добрый день! 😊 Остались вопросы по СкладПро?"}


class GeminiStub:
    """Gemini on respx: answers by prompt kind, `latency` seconds late, and keeps every prompt it was sent."""

    def __init__(self, router: respx.MockRouter):
        self.prompts: list[str] = []
        self.moderator: Responder = default_moderator
        self.sales: Responder = default_sales
        self.latency = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.route = router.post(url__regex=r"/v1(beta)?/models/[^/:]+:generateContent$").mock(
            side_effect=self._answer
        )

    def prompts_of(self, kind: str) -> list[str]:
        return [p for p in self.prompts if _kind(p) == kind]

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        prompt = json.loads(request.content)["contents"][0]["parts"][0]["text"]
        self.prompts.append(prompt)
        answer = (self.moderator if _kind(prompt) == "moderator" else self.sales)(prompt)
        return answer if isinstance(answer, httpx.Response) else gemini_answer(answer)


def _kind(prompt: str) -> str:
    return "moderator" if "Название компании:" in prompt else "sales"


def blocked_answer(finish_reason: str = "SAFETY") -> httpx.Response:
    """A candidate stopped for SAFETY / RECITATION: no content at all, as Gemini answers it."""
    return httpx.Response(
        200,
        json={
            "candidates": [
                {
                    "finishReason": finish_reason,
                    "index": 0,
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                    ],
                }
            ],
            "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120},
            "modelVersion": "gemini-2.5-pro",
        },
    )


def no_candidates() -> httpx.Response:
    """The prompt itself blocked: no candidates, only promptFeedback."""
    return httpx.Response(
        200,
        json={
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}],
            },
            "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120},
            "modelVersion": "gemini-2.5-pro",
        },
    )


def truncated(payload: dict[str, Any]) -> httpx.Response:
    """The JSON cut off half-way at MAX_TOKENS."""
    text = json.dumps(payload, ensure_ascii=False)
    answer = gemini_answer(text[: len(text) // 2])
    body = json.loads(answer.content)
    body["candidates"][0]["finishReason"] = "MAX_TOKENS"
    return httpx.Response(200, json=body)


class SlowGemini:
    """The real client before the respx stub, answering `latency` seconds late; counts calls in flight. The
    wait is Gemini's, so the caller's work slot serves others meanwhile, as in the client's own wait."""

    def __init__(self, llm, latency: float, during_call: Callable[[], Awaitable[None]] | None = None):
        self.llm = llm
        self.latency = latency
        self.during_call = during_call  # runs once, while the first call waits
        self.in_flight = 0
        self.peak_in_flight = 0

    async def generate_json(self, prompt, schema, purpose):
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            async with slot_given_back():
                if self.during_call is not None:
                    during_call, self.during_call = self.during_call, None
                    await during_call()
                await asyncio.sleep(self.latency)
            return await self.llm.generate_json(prompt, schema, purpose)
        finally:
            self.in_flight -= 1
