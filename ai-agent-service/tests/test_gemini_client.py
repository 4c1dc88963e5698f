"""GeminiClient against a respx-faked Gemini: JSON answers, bounded retries, clear errors, token counts."""

import json

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select

from models import LlmUsage
from services.gemini_client import GeminiBadOutput, GeminiModelNotFound, GeminiUnavailable
from tests.conftest import GEMINI_KEY
from tests.gemini_stub import gemini_answer


class Verdict(BaseModel):
    isClient: bool | None
    confidence: float
    reasoning: str


VERDICT = {"isClient": True, "confidence": 0.8, "reasoning": "asks for prices"}


async def test_answer_is_parsed_and_tokens_are_recorded(gemini, llm, db):
    gemini.sales = lambda prompt: VERDICT

    result = await llm.generate_json("Сколько стоит?", Verdict, purpose="sales_agent")

    assert result == Verdict(**VERDICT)
    request = gemini.route.calls.last.request
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    body = json.loads(request.content)
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert set(body["generationConfig"]["responseSchema"]["properties"]) == {
        "isClient",
        "confidence",
        "reasoning",
    }
    async with db() as session:
        usage = (await session.scalars(select(LlmUsage))).one()
    # Output counts the thinking tokens too: 30 candidates + 10 thoughts.
    assert (usage.purpose, usage.prompt_tokens, usage.output_tokens) == ("sales_agent", 120, 40)
    assert llm.status.state == "ok"


async def test_rate_limit_is_retried_then_succeeds(gemini, llm):
    answers = iter(
        [
            httpx.Response(
                429, json={"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
            ),
            httpx.Response(503, text="<html>Service Unavailable</html>"),
            gemini_answer(VERDICT),
        ]
    )
    gemini.sales = lambda prompt: next(answers)

    assert (await llm.generate_json("q", Verdict, purpose="sales_agent")).isClient is True
    assert gemini.route.call_count == 3


async def test_persistent_outage_gives_up_with_a_clear_error(gemini, llm):
    gemini.sales = lambda prompt: httpx.Response(
        500, json={"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}
    )

    with pytest.raises(GeminiUnavailable, match="after 3 attempts"):
        await llm.generate_json("q", Verdict, purpose="sales_agent")
    assert gemini.route.call_count == 3
    assert llm.status.state == "unavailable"


async def test_timeouts_are_retried_then_reported_unavailable(gemini, llm):
    def time_out(prompt):
        raise httpx.ReadTimeout("read timed out")

    gemini.sales = time_out
    with pytest.raises(GeminiUnavailable, match="ReadTimeout"):
        await llm.generate_json("q", Verdict, purpose="sales_agent")
    assert gemini.route.call_count == 3


async def test_unknown_model_names_the_setting_and_is_not_retried(gemini, llm):
    gemini.sales = lambda prompt: httpx.Response(
        404,
        json={"error": {"code": 404, "message": "models/gemini-2.5-pro is not found", "status": "NOT_FOUND"}},
    )
    with pytest.raises(GeminiModelNotFound, match="GEMINI_MODEL"):
        await llm.generate_json("q", Verdict, purpose="sales_agent")
    assert gemini.route.call_count == 1
    assert llm.status.state == "model_not_found"


async def test_an_answer_that_is_not_the_schema_is_a_bad_output(gemini, llm):
    gemini.sales = lambda prompt: "Конечно! Вот ответ: isClient=да"

    with pytest.raises(GeminiBadOutput):
        await llm.generate_json("q", Verdict, purpose="sales_agent")
