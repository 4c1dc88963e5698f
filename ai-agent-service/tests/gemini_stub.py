"""Gemini on respx for unit tests: canned answers per prompt kind, and every prompt kept for assertions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import respx


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


class GeminiStub:
    """Gemini on respx: answers by prompt kind and keeps every prompt it was sent."""

    def __init__(self, router: respx.MockRouter):
        self.prompts: list[str] = []
        self.moderator: Responder = default_moderator
        self.sales: Responder = default_sales
        self.route = router.post(url__regex=r"/v1(beta)?/models/[^/:]+:generateContent$").mock(
            side_effect=self._answer
        )

    def prompts_of(self, kind: str) -> list[str]:
        return [p for p in self.prompts if _kind(p) == kind]

    def _answer(self, request: httpx.Request) -> httpx.Response:
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
