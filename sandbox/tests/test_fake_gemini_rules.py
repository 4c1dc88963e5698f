import base64
import json

import pytest
from prompts import KNOWLEDGE, MODERATOR_PROMPT, SALES_PROMPT

from sandbox.fake_llm import call_summary

GENERATE = "/v1/models/gemini-2.5-pro:generateContent"
KEY = {"x-goog-api-key": "test-key"}

MODERATOR_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "isClient": {"type": "BOOLEAN", "nullable": True},
        "confidence": {"type": "NUMBER"},
        "reasoning": {"type": "STRING"},
    },
    "property_ordering": ["isClient", "confidence", "reasoning"],
}
SALES_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        name: {"type": "STRING"}
        for name in ("reply", "stance", "agreed_to_call", "proposed_call_time", "confirmed_call_time")
    },
}
FOLLOW_UP_SCHEMA = {"type": "OBJECT", "properties": {"message": {"type": "STRING"}}}


async def generate(client, prompt: str, schema: dict | None = None, *, snake_case: bool = False) -> str:
    config = {"responseMimeType": "application/json", "responseSchema": schema} if schema else {}
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}
    if snake_case:
        body = {
            "contents": body["contents"],
            "generation_config": {"response_mime_type": "application/json", "response_schema": schema},
        }
    answer = await client.post(GENERATE, headers=KEY, json=body)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    candidate = payload["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    usage = payload["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert usage["promptTokenCount"] >= len(prompt) // 4
    return candidate["content"]["parts"][0]["text"]


async def moderate(client, history: str, company: str = "", contact: str = "Иван", **kw) -> dict:
    prompt = MODERATOR_PROMPT.format(history=history, company=company, contact=contact)
    return json.loads(await generate(client, prompt, MODERATOR_SCHEMA, **kw))


async def sell(client, message: str, history: str = "", knowledge: str = KNOWLEDGE) -> dict:
    prompt = SALES_PROMPT.format(message=message, history=history, knowledge=knowledge)
    answer = json.loads(await generate(client, prompt, SALES_SCHEMA))
    assert set(answer) == {"reply", "stance", "agreed_to_call", "proposed_call_time", "confirmed_call_time"}
    assert "скидк" not in answer["reply"].lower()
    return answer


@pytest.mark.parametrize(
    ("history", "company", "verdict"),
    [
        ("[2026-06-23 10:00] Клиент: Заработок в интернете! Подпишись на канал", "", (False, 0.9)),
        ("[2026-06-23 10:00] Клиент: Привет! Как дела? 😂😂🔥", "", (False, 0.8)),
        (
            "[2026-06-23 10:00] Клиент: Здравствуйте, сколько стоит подключение для 10 сотрудников?",
            "",
            (True, 0.85),
        ),
        ("[2026-06-23 10:00] Клиент: Добрый день, есть вопрос", "ТОО Стройком", (True, 0.7)),
        ("[2026-06-23 10:00] Клиент: Здравствуйте", "", (None, 0.3)),
    ],
)
async def test_moderator_classifies_the_conversation_not_the_criteria(client, history, company, verdict):
    answer = await moderate(client, history, company)
    assert (answer["isClient"], answer["confidence"]) == verdict
    assert isinstance(answer["reasoning"], str) and answer["reasoning"]


async def test_moderator_ignores_what_the_bot_said(client):
    history = "[2026-06-23 10:00] Клиент: Здравствуйте\n[2026-06-23 10:01] Бот: Наши цены и тарифы — в прайсе"
    assert (await moderate(client, history))["isClient"] is None


async def test_moderator_accepts_snake_case_requests(client):
    answer = await moderate(client, "[2026-06-23 10:00] Клиент: Пришлите КП", snake_case=True)
    assert answer["isClient"] is True


@pytest.mark.parametrize(
    ("message", "slot"),
    [
        ("Давайте завтра в 11", "2026-06-24T11:00"),
        ("Можно сегодня в 16:30?", "2026-06-23T16:30"),
        ("Позвоните в 20:00", "2026-06-23T20:00"),
        ("Давайте в 11", "2026-06-24T11:00"),
        ("Удобно в понедельник в 15.30", "2026-06-29T15:30"),
        ("Послезавтра в 10:00 подойдет", "2026-06-25T10:00"),
        ("Давайте в субботу в 3 часа дня", "2026-06-27T15:00"),
        ("Во вторник в 12:00", "2026-06-30T12:00"),
    ],
)
async def test_sales_agent_reads_the_call_time_the_client_names(client, message, slot):
    answer = await sell(client, message)
    assert answer["proposed_call_time"] == slot
    assert answer["stance"] == "yes" and answer["agreed_to_call"] and answer["confirmed_call_time"]
    day, clock = slot.split("T")
    year, month, date = day.split("-")
    assert f"{date}.{month}.{year} в {clock}" in answer["reply"]


async def test_sales_agent_confirms_the_slot_the_bot_offered_when_the_client_agrees(client):
    history = (
        "[2026-06-23 14:50] Клиент: Хочу созвониться\n"
        "[2026-06-23 14:51] Бот: Могу предложить 24.06.2026 в 10:00. Подходит?"
    )
    answer = await sell(client, "Да, подходит", history)
    assert answer["proposed_call_time"] == "2026-06-24T10:00"
    assert answer["confirmed_call_time"] and answer["agreed_to_call"] and answer["stance"] == "yes"


async def test_sales_agent_asks_for_a_time_when_the_client_wants_a_call(client):
    answer = await sell(client, "Давайте созвонимся")
    assert answer["stance"] == "yes" and answer["agreed_to_call"] is True
    assert answer["proposed_call_time"] is None and answer["confirmed_call_time"] is False
    assert "10:00" in answer["reply"] and "18:00" in answer["reply"] and "Астаны" in answer["reply"]


@pytest.mark.parametrize(
    ("message", "stance"),
    [
        ("Нет, спасибо", "no"),
        ("Нам не интересно", "no"),
        ("Я подумаю", "undecided"),
        ("Посмотрю позже", "undecided"),
    ],
)
async def test_sales_agent_recognises_refusals_and_vague_answers(client, message, stance):
    answer = await sell(client, message)
    assert answer["stance"] == stance
    assert answer["agreed_to_call"] is False and answer["proposed_call_time"] is None


async def test_sales_agent_quotes_the_first_price_line_of_the_knowledge(client):
    answer = await sell(client, "Сколько стоит ваша CRM?")
    assert answer["stance"] == "asking"
    assert "Тариф «Старт»: 15 000 ₸ в месяц за 5 пользователей." in answer["reply"]


async def test_sales_agent_without_prices_promises_the_price_list(client):
    answer = await sell(client, "Какая цена?", knowledge="CRM для отделов продаж.")
    assert answer["stance"] == "asking" and "прайс" in answer["reply"]
    assert not any(ch.isdigit() for ch in answer["reply"])


async def test_sales_agent_asks_a_spin_question_about_the_product(client):
    answer = await sell(client, "Расскажите подробнее")
    assert answer["stance"] == "asking"
    assert "CRM «Простые продажи»" in answer["reply"] and "?" in answer["reply"]


async def test_sales_prompt_without_a_schema_gets_the_bare_reply(client):
    prompt = SALES_PROMPT.format(message="Я подумаю", history="", knowledge=KNOWLEDGE)
    text = await generate(client, prompt)
    assert not text.startswith("{") and "торопитесь" in text


async def test_each_follow_up_touch_gets_its_own_message_without_discounts(client):
    messages = []
    for touch in range(1, 6):
        prompt = f"Клиент не ответил.\n\nЭто КАСАНИЕ #{touch} из 5 в рамках follow-up стратегии."
        messages.append(json.loads(await generate(client, prompt, FOLLOW_UP_SCHEMA))["message"])
    assert len(set(messages)) == 5
    assert not any("%" in m or "скидк" in m.lower() or any(c.isdigit() for c in m) for m in messages)


def audio_request(data: bytes, urlsafe: bool) -> dict:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Транскрибируй голосовое сообщение"},
                    {"inlineData": {"mimeType": "audio/ogg", "data": encoded}},
                ],
            }
        ]
    }


@pytest.mark.parametrize("urlsafe", [True, False])
async def test_audio_is_transcribed_from_its_marker(client, urlsafe):
    # "?>" bytes make the URL-safe and standard alphabets differ.
    audio = b"OggS\xfb\xff?>" + "SANDBOX-TRANSCRIPT:Хочу узнать цену".encode()
    answer = await client.post(GENERATE, headers=KEY, json=audio_request(audio, urlsafe))
    assert answer.status_code == 200
    payload = answer.json()
    assert payload["candidates"][0]["content"]["parts"][0]["text"] == "Хочу узнать цену"
    assert payload["usageMetadata"]["promptTokenCount"] > len("Транскрибируй голосовое сообщение") // 4


async def test_unreadable_audio_is_invalid_argument(client):
    answer = await client.post(GENERATE, headers=KEY, json=audio_request(b"\x00\x01garbage", urlsafe=True))
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "Unable to process input audio" in answer.json()["error"]["message"]


async def test_request_without_api_key_is_refused_in_gemini_shape(client):
    answer = await client.post(GENERATE, json={"contents": [{"parts": [{"text": "Привет"}]}]})
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("model", ["gemini-missing-model", "gpt-4o"])
async def test_unknown_model_is_not_found(client, model):
    answer = await client.post(
        f"/v1beta/models/{model}:generateContent",
        headers=KEY,
        json={"contents": [{"parts": [{"text": "x"}]}]},
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["status"] == "NOT_FOUND" and model in answer.json()["error"]["message"]


async def test_plain_prompt_gets_a_plain_short_answer(client):
    text = await generate(client, "Скажи что-нибудь")
    assert text and not text.startswith("{")


FULL_SALES_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        name: {"type": "BOOLEAN"} for name in ("opt_out", "cannot_make_it", "knowledge_gap", "agreed_to_call")
    }
    | {"reply": {"type": "STRING"}, "stance": {"type": "STRING"}},
}


async def sell_all_fields(client, message: str, history: str = "", knowledge: str = KNOWLEDGE) -> dict:
    prompt = SALES_PROMPT.format(message=message, history=history, knowledge=knowledge)
    return json.loads(await generate(client, prompt, FULL_SALES_SCHEMA))


async def test_sales_agent_says_when_the_knowledge_base_has_no_answer(client):
    gap = await sell_all_fields(
        client, "Продаёте ли вы франшизу?", knowledge="(нет подходящих сведений в базе знаний)"
    )
    known = await sell_all_fields(client, "Сколько длится внедрение?")

    assert gap["knowledge_gap"] is True and not known["knowledge_gap"]


async def test_sales_agent_says_when_the_client_cannot_make_their_call(client):
    history = "[2026-06-23 14:51] Бот: Отлично! Записал вас на 24.06.2026 в 10:00 (время Астаны)."

    answer = await sell_all_fields(client, "Извините, завтра не смогу", history)

    assert answer["cannot_make_it"] is True and answer["agreed_to_call"] is False


async def test_a_call_summary_is_written_from_the_clients_lines():
    prompt = (
        "ПЕРЕПИСКА:\n[2026-06-23 10:00] Клиент: Нужен учёт на 3 склада и 12 пользователей\n"
        "[2026-06-23 10:01] Бот: Отлично!\n[2026-06-23 10:02] Клиент: Но у конкурентов дешевле"
    )

    assert call_summary(prompt) == {
        "wants": "Нужен учёт на 3 склада и 12 пользователей",
        "size": "3 склада, 12 пользователей",
        "objections": "Но у конкурентов дешевле",
    }
