"""The real google-genai SDK (default httpx2 transport) against a real `python -m sandbox` server."""

from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest
from google import genai
from google.genai import errors, types
from prompts import KNOWLEDGE, MODERATOR_PROMPT, SALES_PROMPT
from pydantic import BaseModel, ValidationError

MODEL = "gemini-2.5-pro"


class Moderation(BaseModel):
    isClient: bool | None
    confidence: float
    reasoning: str


class SalesReply(BaseModel):
    reply: str
    stance: Literal["yes", "no", "undecided", "asking"]
    agreed_to_call: bool
    proposed_call_time: str | None
    confirmed_call_time: bool


@pytest.fixture(scope="module")
def genai_client(live_sandbox: str) -> genai.Client:
    # One client for the whole module: a garbage-collected client closes its HTTP transport.
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=live_sandbox))


@pytest.fixture
async def admin(live_sandbox: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_sandbox) as http:
        await http.post("/sandbox/reset")
        yield http
        await http.delete("/sandbox/faults")


def json_config(schema: type[BaseModel]) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)


async def test_sdk_gets_a_parsed_moderation_with_token_usage(genai_client, admin):
    prompt = MODERATOR_PROMPT.format(
        contact="Иван",
        company="",
        history="[2026-06-23 10:00] Клиент: Добрый день! Пришлите, пожалуйста, коммерческое предложение",
    )
    response = await genai_client.aio.models.generate_content(
        model=MODEL, contents=prompt, config=json_config(Moderation)
    )
    assert isinstance(response.parsed, Moderation)
    assert response.parsed.isClient is True and response.parsed.confidence == 0.85
    usage = response.usage_metadata
    assert usage.prompt_token_count >= len(prompt) // 4
    assert usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count


async def test_sdk_sales_answer_quotes_the_price_from_the_knowledge(genai_client, admin):
    prompt = SALES_PROMPT.format(knowledge=KNOWLEDGE, history="", message="Какие у вас цены?")
    response = await genai_client.aio.models.generate_content(
        model=MODEL,
        contents=prompt,
        config=types.GenerateContentConfig(
            system_instruction="Отвечай строго по схеме.",
            response_mime_type="application/json",
            response_schema=SalesReply,
        ),
    )
    answer = response.parsed
    assert isinstance(answer, SalesReply)
    assert answer.stance == "asking" and answer.agreed_to_call is False
    assert "Тариф «Старт»: 15 000 ₸ в месяц за 5 пользователей." in answer.reply


async def test_sdk_transcribes_a_voice_message_downloaded_from_the_sandbox(genai_client, admin):
    injected = await admin.post(
        "/sandbox/messages",
        json={"phone": "77011234567", "type": "ptt", "transcript": "Перезвоните мне завтра в 11"},
    )
    audio = (await admin.get(injected.json()["file_link"])).content

    response = await genai_client.aio.models.generate_content(
        model=MODEL,
        contents=[
            "Транскрибируй это голосовое сообщение",
            types.Part.from_bytes(data=audio, mime_type="audio/ogg"),
        ],
    )
    assert response.text == "Перезвоните мне завтра в 11"
    assert response.usage_metadata.prompt_token_count > 0


async def test_sdk_sees_an_injected_503_as_server_error(genai_client, admin):
    await admin.post("/sandbox/faults", json={"endpoint": "gemini", "status": 503, "count": 1})
    with pytest.raises(errors.ServerError) as raised:
        await genai_client.aio.models.generate_content(model=MODEL, contents="Привет")
    assert raised.value.code == 503 and raised.value.status == "UNAVAILABLE"

    recovered = await genai_client.aio.models.generate_content(model=MODEL, contents="Привет")
    assert recovered.text
    assert (await admin.get("/sandbox/stats")).json()["gemini"]["calls"] == 2


async def test_sdk_sees_quota_and_unknown_model_as_client_errors(genai_client, admin):
    await admin.post("/sandbox/faults", json={"endpoint": "gemini", "status": 429, "count": 1})
    with pytest.raises(errors.ClientError) as quota:
        await genai_client.aio.models.generate_content(model=MODEL, contents="Привет")
    assert quota.value.code == 429 and quota.value.status == "RESOURCE_EXHAUSTED"

    with pytest.raises(errors.ClientError) as missing:
        await genai_client.aio.models.generate_content(model="gemini-missing", contents="Привет")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"


def sales_prompt(message: str = "Какие у вас цены?", history: str = "") -> str:
    return SALES_PROMPT.format(knowledge=KNOWLEDGE, history=history, message=message)


async def ask_sales(genai_client, prompt: str | None = None) -> types.GenerateContentResponse:
    return await genai_client.aio.models.generate_content(
        model=MODEL, contents=prompt or sales_prompt(), config=json_config(SalesReply)
    )


async def test_sdk_sees_a_safety_block_as_no_text_and_finish_reason_safety(genai_client, admin):
    await admin.post("/sandbox/faults", json={"answer": "safety", "job": "sales", "count": 1})
    response = await ask_sales(genai_client)

    assert response.text is None and response.parsed is None
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY
    assert [r.category for r in candidate.safety_ratings if r.blocked] == [
        types.HarmCategory.HARM_CATEGORY_HARASSMENT
    ]
    assert response.prompt_feedback is None
    assert response.usage_metadata.candidates_token_count is None
    assert response.usage_metadata.total_token_count == response.usage_metadata.prompt_token_count

    retry = await ask_sales(genai_client)
    assert isinstance(retry.parsed, SalesReply)
    assert retry.candidates[0].finish_reason == types.FinishReason.STOP


async def test_sdk_sees_recitation_as_no_text(genai_client, admin):
    await admin.post("/sandbox/faults", json={"answer": "recitation", "count": 1})
    response = await ask_sales(genai_client)
    assert response.text is None and response.parsed is None
    assert response.candidates[0].finish_reason == types.FinishReason.RECITATION
    assert response.prompt_feedback is None


async def test_sdk_sees_a_blocked_prompt_as_no_candidates_and_a_block_reason(genai_client, admin):
    await admin.post("/sandbox/faults", json={"answer": "no_candidates", "job": "sales", "count": 1})
    response = await ask_sales(genai_client)

    assert response.candidates is None
    assert response.text is None and response.parsed is None
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert any(r.blocked for r in response.prompt_feedback.safety_ratings)
    assert response.usage_metadata.prompt_token_count > 0
    assert response.usage_metadata.candidates_token_count is None


async def test_sdk_gets_cut_off_json_with_finish_reason_max_tokens_and_nothing_parsed(genai_client, admin):
    await admin.post("/sandbox/faults", json={"answer": "max_tokens", "job": "sales", "count": 1})
    response = await ask_sales(genai_client)

    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text.startswith('{"reply": ') and not response.text.endswith("}")
    assert response.parsed is None


async def test_sdk_gets_off_schema_json_with_finish_reason_stop_and_nothing_parsed(genai_client, admin):
    await admin.post("/sandbox/faults", json={"answer": "off_schema", "job": "sales", "count": 1})
    response = await ask_sales(genai_client)

    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.parsed is None
    with pytest.raises(ValidationError):
        SalesReply.model_validate_json(response.text)


async def test_sdk_parses_a_scripted_sales_answer(genai_client, admin):
    invented = {
        "reply": "Тариф Старт стоит 4 500 тенге",
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }
    script = {"job": "sales", "when": "тариф Старт", "answer": invented}
    assert (await admin.post("/sandbox/gemini/scripts", json=script)).status_code == 200

    response = await ask_sales(genai_client, sales_prompt("Сколько стоит тариф Старт?"))
    assert response.parsed == SalesReply(**invented)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.candidates_token_count > 0
