"""Answers with no usable text, on the generateContent wire format, injected through /sandbox/faults."""

import base64
import json

import pytest
from prompts import KNOWLEDGE, MODERATOR_PROMPT, SALES_PROMPT

GENERATE = "/v1/models/gemini-2.5-pro:generateContent"
KEY = {"x-goog-api-key": "test-key"}
SALES_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "reply": {"type": "STRING"},
        "stance": {"type": "STRING", "enum": ["yes", "no", "undecided", "asking"]},
        "agreed_to_call": {"type": "BOOLEAN"},
        "proposed_call_time": {"type": "STRING", "nullable": True},
        "confirmed_call_time": {"type": "BOOLEAN"},
    },
    "required": ["reply", "stance", "agreed_to_call", "proposed_call_time", "confirmed_call_time"],
}
MODERATOR_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "isClient": {"type": "BOOLEAN", "nullable": True},
        "confidence": {"type": "NUMBER"},
        "reasoning": {"type": "STRING"},
    },
}
SALES_PROMPT_TEXT = SALES_PROMPT.format(knowledge=KNOWLEDGE, history="", message="Какие у вас цены?")
MODERATOR_PROMPT_TEXT = MODERATOR_PROMPT.format(
    contact="Иван", company="", history="[2026-06-23 10:00] Клиент: Пришлите КП"
)


async def ask(client, prompt: str = SALES_PROMPT_TEXT, schema: dict | None = SALES_SCHEMA) -> dict:
    config = {"responseMimeType": "application/json", "responseSchema": schema} if schema else {}
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}
    answer = await client.post(GENERATE, headers=KEY, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def set_fault(client, **fault) -> dict:
    answer = await client.post("/sandbox/faults", json=fault)
    assert answer.status_code == 200, answer.text
    return answer.json()["fault"]


def text_of(payload: dict) -> str:
    return payload["candidates"][0]["content"]["parts"][0]["text"]


async def test_safety_block_is_a_candidate_without_content_and_one_blocked_rating(client):
    await set_fault(client, answer="safety")
    payload = await ask(client)

    (candidate,) = payload["candidates"]
    assert candidate["finishReason"] == "SAFETY" and "content" not in candidate
    blocked = [r for r in candidate["safetyRatings"] if r.get("blocked")]
    assert blocked == [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
    assert {r["probability"] for r in candidate["safetyRatings"] if not r.get("blocked")} == {"NEGLIGIBLE"}
    usage = payload["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] > 0
    assert "candidatesTokenCount" not in usage


async def test_recitation_is_a_candidate_without_text(client):
    await set_fault(client, answer="recitation")
    payload = await ask(client)
    assert payload["candidates"] == [{"finishReason": "RECITATION", "index": 0}]


async def test_blocked_prompt_has_no_candidates_only_prompt_feedback_and_prompt_tokens(client):
    await set_fault(client, answer="no_candidates")
    payload = await ask(client)

    assert "candidates" not in payload
    feedback = payload["promptFeedback"]
    assert feedback["blockReason"] == "SAFETY"
    assert any(r.get("blocked") for r in feedback["safetyRatings"])
    assert set(payload["usageMetadata"]) == {"promptTokenCount", "totalTokenCount"}
    assert payload["modelVersion"] == "gemini-2.5-pro"


async def test_max_tokens_cuts_the_json_it_would_have_given_mid_way(client):
    full = text_of(await ask(client))
    await set_fault(client, answer="max_tokens")
    payload = await ask(client)

    candidate = payload["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS"
    cut = text_of(payload)
    assert full.startswith(cut) and 0 < len(cut) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    usage = payload["usageMetadata"]
    assert usage["candidatesTokenCount"] > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


async def test_off_schema_answer_is_valid_json_with_wrong_types_and_a_required_field_missing(client):
    await set_fault(client, answer="off_schema")
    payload = await ask(client)

    assert payload["candidates"][0]["finishReason"] == "STOP"
    answer = json.loads(text_of(payload))
    assert set(SALES_SCHEMA["required"]) - set(answer)
    assert not isinstance(answer["reply"], str)
    assert not isinstance(answer["agreed_to_call"], bool)


async def test_a_bad_answer_for_one_job_leaves_the_other_jobs_alone(client):
    await set_fault(client, answer="safety", job="moderator")

    sales = await ask(client)
    assert sales["candidates"][0]["finishReason"] == "STOP"
    moderation = await ask(client, MODERATOR_PROMPT_TEXT, MODERATOR_SCHEMA)
    assert moderation["candidates"][0]["finishReason"] == "SAFETY"


async def test_the_job_is_told_by_the_prompt_when_there_is_no_schema(client):
    await set_fault(client, answer="recitation", job="sales")
    sales = await ask(client, SALES_PROMPT_TEXT, schema=None)
    assert sales["candidates"][0]["finishReason"] == "RECITATION"
    follow_up = await ask(client, "Это КАСАНИЕ #2 из 5.", schema=None)
    assert follow_up["candidates"][0]["finishReason"] == "STOP"


async def test_a_counted_bad_answer_is_used_up_so_the_retry_gets_a_normal_answer(client):
    await set_fault(client, answer="max_tokens", job="sales", count=1)
    assert (await ask(client))["candidates"][0]["finishReason"] == "MAX_TOKENS"

    retry = await ask(client)
    assert retry["candidates"][0]["finishReason"] == "STOP"
    assert json.loads(text_of(retry))["stance"] == "asking"
    assert (await client.get("/sandbox/faults")).json() == {"faults": []}


async def test_rate_decides_how_often_a_bad_answer_comes(client):
    await set_fault(client, answer="safety", rate=0.0)
    assert {(await ask(client))["candidates"][0]["finishReason"] for _ in range(3)} == {"STOP"}
    await set_fault(client, answer="safety", rate=1.0)
    assert {(await ask(client))["candidates"][0]["finishReason"] for _ in range(3)} == {"SAFETY"}


async def test_a_job_fault_and_an_any_job_fault_and_a_transport_fault_coexist(client):
    await set_fault(client, endpoint="gemini", status=503, count=1)
    await set_fault(client, answer="safety", job="sales")
    await set_fault(client, answer="no_candidates")

    faults = (await client.get("/sandbox/faults")).json()["faults"]
    assert [(f["endpoint"], f["status"], f["answer"], f["job"]) for f in faults] == [
        ("gemini", 503, None, None),
        ("gemini", None, "safety", "sales"),
        ("gemini", None, "no_candidates", None),
    ]
    body = {"contents": [{"parts": [{"text": SALES_PROMPT_TEXT}]}]}
    assert (await client.post(GENERATE, headers=KEY, json=body)).status_code == 503
    assert (await ask(client))["candidates"][0]["finishReason"] == "SAFETY"
    assert "promptFeedback" in await ask(client, MODERATOR_PROMPT_TEXT, MODERATOR_SCHEMA)

    await client.delete("/sandbox/faults", params={"endpoint": "gemini"})
    assert (await client.get("/sandbox/faults")).json() == {"faults": []}


async def test_a_voice_note_can_get_a_bad_answer_as_the_transcription_job(client):
    await set_fault(client, answer="safety", job="transcription", count=1)
    voice = base64.b64encode("OggS SANDBOX-TRANSCRIPT:Да".encode()).decode()
    audio = {"inlineData": {"mimeType": "audio/ogg", "data": voice}}
    body = {"contents": [{"parts": [{"text": "Транскрибируй"}, audio]}]}
    answer = (await client.post(GENERATE, headers=KEY, json=body)).json()
    assert answer["candidates"][0]["finishReason"] == "SAFETY"
    assert text_of((await client.post(GENERATE, headers=KEY, json=body)).json()) == "Да"


@pytest.mark.parametrize(
    "fault",
    [
        {"answer": "safety", "status": 500},
        {"answer": "safety", "body": "<html></html>"},
        {"answer": "safety", "endpoint": "message/send"},
        {"answer": "hallucination"},
        {"answer": "safety", "job": "accountant"},
        {"endpoint": "gemini", "job": "sales", "status": 503},
        {"status": 503},
    ],
)
async def test_contradictory_or_unknown_bad_answer_faults_are_rejected(client, fault):
    assert (await client.post("/sandbox/faults", json=fault)).status_code == 422
