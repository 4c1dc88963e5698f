"""generateContent response bodies: the normal answer, and the answers with no usable text real Gemini gives.

A bad answer is still HTTP 200 and the SDK raises nothing: a caller only notices by reading finishReason
or promptFeedback, or by failing to parse the text.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

BAD_ANSWERS = ("safety", "recitation", "no_candidates", "max_tokens", "off_schema")

# Roughly 32 tokens per second of audio; a WhatsApp voice note runs about 3 KB per second.
AUDIO_BYTES_PER_TOKEN = 100
CHARS_PER_TOKEN = 4

_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
_BLOCKED_CATEGORY = "HARM_CATEGORY_HARASSMENT"


def prompt_tokens(prompt_chars: int, inline_bytes: int) -> int:
    return math.ceil(prompt_chars / CHARS_PER_TOKEN) + math.ceil(inline_bytes / AUDIO_BYTES_PER_TOKEN)


def answer_body(
    text: str, prompt_token_count: int, model: str, finish_reason: str = "STOP"
) -> dict[str, Any]:
    """One text candidate with its usage."""
    answer_tokens = math.ceil(len(text) / CHARS_PER_TOKEN)
    return _body(
        model,
        candidates=[
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        usageMetadata={
            "promptTokenCount": prompt_token_count,
            "candidatesTokenCount": answer_tokens,
            "totalTokenCount": prompt_token_count + answer_tokens,
        },
    )


def bad_answer_body(kind: str, text: str, prompt_token_count: int, model: str) -> dict[str, Any]:
    """The body for bad answer `kind`, given the text the fake would have answered."""
    if kind == "max_tokens":
        return answer_body(truncated(text), prompt_token_count, model, finish_reason="MAX_TOKENS")
    if kind == "off_schema":
        return answer_body(off_schema(text), prompt_token_count, model)
    # Nothing was generated: only the prompt is billed.
    usage = {"promptTokenCount": prompt_token_count, "totalTokenCount": prompt_token_count}
    if kind == "no_candidates":
        feedback = {"blockReason": "SAFETY", "safetyRatings": safety_ratings(blocked=True)}
        return _body(model, promptFeedback=feedback, usageMetadata=usage)
    if kind == "safety":
        candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": safety_ratings(blocked=True)}
        return _body(model, candidates=[candidate], usageMetadata=usage)
    if kind == "recitation":
        return _body(model, candidates=[{"finishReason": "RECITATION", "index": 0}], usageMetadata=usage)
    raise ValueError(f"unknown bad answer {kind!r}")


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {**fields, "modelVersion": model, "responseId": uuid.uuid4().hex[:22]}


def safety_ratings(blocked: bool) -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = []
    for category in _HARM_CATEGORIES:
        if blocked and category == _BLOCKED_CATEGORY:
            ratings.append({"category": category, "probability": "HIGH", "blocked": True})
        else:
            ratings.append({"category": category, "probability": "NEGLIGIBLE"})
    return ratings


def truncated(text: str) -> str:
    """The first half of the answer; a proper prefix of a JSON object never parses."""
    return text[: max(1, len(text) // 2)]


def off_schema(text: str) -> str:
    """Valid JSON a schema-checking caller rejects: every field of the wrong type, the last one missing.

    An answer that was not a JSON object (a bare reply, a transcript) comes back wrapped in an object.
    """
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not value:
        return json.dumps({"answer": text}, ensure_ascii=False)
    fields = list(value.items())
    kept = fields[:-1] if len(fields) > 1 else fields
    return json.dumps({name: _wrong_type(v) for name, v in kept}, ensure_ascii=False)


def _wrong_type(value: Any) -> Any:
    # Pydantic's lax mode coerces "true" to bool and "1" to a number, so use values nothing coerces.
    if isinstance(value, bool):
        return "возможно"
    if isinstance(value, int | float):
        return "высокая"
    if isinstance(value, str):
        return [value]
    if value is None:
        return {"value": None}
    return str(value)
