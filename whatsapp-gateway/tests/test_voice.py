"""Voice notes: transcribed by (fake) Gemini and forwarded; unreadable audio is forwarded all the same."""

import httpx
import pytest
import respx
from sqlalchemy import select

from models.message_log import MessageLog
from services.transcriber import Transcriber, TranscriptionError
from tests.conftest import CONTRACTS, collect, inject, running_gateway, wait_first_poll, without_amqp

CUSTOMER = "77011234567"


@pytest.mark.usefixtures("clean")
async def test_a_voice_note_arrives_on_incoming_as_its_transcript(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        sent = await inject(
            sandbox,
            phone=CUSTOMER,
            type="ptt",
            transcript="Хочу узнать цену на ваш продукт",
            sender_name="Ivan",
        )
        found = await collect(broker, queues.incoming, expect=1, wait_s=10, settle=0.5)
    assert len(found) == 1
    body = without_amqp(found[0])
    assert CONTRACTS["incoming_messages"].errors(body) == []
    assert body["message_text"] == "[ТРАНСКРИБАЦИЯ] Хочу узнать цену на ваш продукт"
    assert body["is_voice"] is True and body["message_type"] == "voice"
    assert body["message_id"] == sent["id"] and body["phone_number"] == CUSTOMER
    assert body["original_voice_url"].endswith(f"/files/{sent['file_name']}")
    assert body["timestamp"] == sent["timestamp"]
    async with sessions() as session:
        row = await session.scalar(select(MessageLog).where(MessageLog.message_id == sent["id"]))
    assert row.is_voice and row.transcribed_at is not None and row.queue_status == "published"


@pytest.mark.usefixtures("clean")
async def test_a_kazakh_voice_note_arrives_in_kazakh_as_spoken(settings, sessions, broker, queues, sandbox):
    spoken = "Сәлеметсіз бе, Алматыдан Астанаға жеткізу қанша тұрады?"
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, type="ptt", transcript=spoken)
        [body] = await collect(broker, queues.incoming, expect=1, wait_s=10, settle=0.5)
    assert body["message_text"] == f"[ТРАНСКРИБАЦИЯ] {spoken}"
    # What Gemini was asked: the language spoken, Kazakh included, and no translation.
    asked = (await sandbox.get("/sandbox/gemini/prompts", params={"job": "transcription"})).json()
    asked = asked["prompts"][-1]["prompt"]
    assert "на казахском" in asked and "Ничего не переводи" in asked


@pytest.mark.usefixtures("clean")
async def test_undecodable_audio_still_arrives_saying_it_could_not_be_transcribed(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        await inject(sandbox, phone=CUSTOMER, type="ptt", corrupt_audio=True)
        found = await collect(broker, queues.incoming, expect=1, wait_s=10)
    assert found[0]["message_text"] == "[ТРАНСКРИБАЦИЯ] (не удалось распознать голосовое сообщение)"
    assert found[0]["is_voice"] is True


@pytest.mark.usefixtures("clean")
async def test_a_redelivered_voice_note_is_not_transcribed_twice(
    settings, sessions, broker, queues, sandbox, publish
):
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        sent = await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="один раз")
        assert len(await collect(broker, queues.incoming, expect=1, wait_s=10)) == 1
        calls = (await sandbox.get("/sandbox/stats")).json()["gemini"]["calls"]
        async with sessions() as session:
            row = await session.scalar(select(MessageLog).where(MessageLog.message_id == sent["id"]))
        voice_body = {
            k: v
            for k, v in row.payload.items()
            if k in ("message_id", "chat_id", "phone_number", "timestamp", "sender_name", "contact_info")
        }
        await publish(queues.voice, {**voice_body, "voice_url": None}, message_id=sent["id"])
        again = await collect(broker, queues.incoming, expect=1, wait_s=2)
        assert (await sandbox.get("/sandbox/stats")).json()["gemini"]["calls"] == calls
    assert again == []


@pytest.mark.usefixtures("clean")
async def test_a_voice_note_longer_than_the_limit_is_not_transcribed_and_asks_the_agent_to_ask_for_text(
    settings, sessions, broker, queues, sandbox
):
    async with running_gateway(settings.model_copy(update={"MAX_VOICE_SECONDS": 120})):
        await wait_first_poll(sessions)
        files_before = (await sandbox.get("/sandbox/stats")).json()["calls"].get("files", 0)
        await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="длинный рассказ", length_seconds=121)
        await inject(sandbox, phone="77017654321", type="ptt", transcript="коротко", length_seconds=120)
        found = {b["phone_number"]: b for b in await collect(broker, queues.incoming, expect=2, wait_s=10)}
        stats = (await sandbox.get("/sandbox/stats")).json()
    long_note = without_amqp(found[CUSTOMER])
    assert CONTRACTS["incoming_messages"].errors(long_note) == []
    assert long_note["voice_too_long"] is True and long_note["is_voice"] is True
    assert (
        long_note["message_text"] == "[ТРАНСКРИБАЦИЯ] (голосовое сообщение слишком длинное, не расшифровано)"
    )
    assert found["77017654321"]["message_text"] == "[ТРАНСКРИБАЦИЯ] коротко"
    assert "voice_too_long" not in found["77017654321"]
    # Only the short note was downloaded and heard.
    assert stats["calls"].get("files", 0) - files_before == 1 and stats["gemini"]["calls"] == 1


GEMINI = "https://gemini.test"
URL = f"{GEMINI}/v1/models/gemini-2.5-pro:generateContent"


def _answer(text: str) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}


@respx.mock
async def test_the_transcriber_retries_429_and_5xx():
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429, json={"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
            ),
            httpx.Response(
                503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
            ),
            httpx.Response(200, json=_answer(" Добрый день ")),
        ]
    )
    transcriber = Transcriber(
        api_key="k-123", model="gemini-2.5-pro", base_url=GEMINI, backoff_initial=0.01, backoff_max=0.02
    )
    try:
        assert await transcriber.transcribe(b"OggS", "audio/ogg; codecs=opus") == "Добрый день"
    finally:
        await transcriber.close()
    assert route.call_count == 3
    assert route.calls.last.request.headers["x-goog-api-key"] == "k-123"


@respx.mock
async def test_an_unknown_model_is_a_clear_permanent_error_naming_the_setting():
    respx.post(URL).respond(
        404, json={"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}
    )
    transcriber = Transcriber(api_key="k", model="gemini-2.5-pro", base_url=GEMINI)
    try:
        with pytest.raises(TranscriptionError, match="GEMINI_MODEL") as caught:
            await transcriber.transcribe(b"OggS", None)
    finally:
        await transcriber.close()
    assert not caught.value.transient
