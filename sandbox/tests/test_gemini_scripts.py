"""Scripted model answers: POST /sandbox/gemini/scripts makes the fake model say whatever a test needs."""

import json

import pytest
from prompts import KNOWLEDGE, MODERATOR_PROMPT, SALES_PROMPT

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
KEY = {"x-goog-api-key": "test-key"}
SALES_SCHEMA = {"type": "OBJECT", "properties": {"reply": {"type": "STRING"}}}
INVENTED_PRICE = {
    "reply": "Тариф Старт стоит 4 500 тенге",
    "stance": "asking",
    "agreed_to_call": False,
    "proposed_call_time": None,
    "confirmed_call_time": False,
}


async def add_script(client, **script) -> dict:
    answer = await client.post("/sandbox/gemini/scripts", json=script)
    assert answer.status_code == 200, answer.text
    return answer.json()["script"]


async def generate(client, prompt: str, schema: dict | None = SALES_SCHEMA) -> tuple[str, dict]:
    config = {"responseMimeType": "application/json", "responseSchema": schema} if schema else {}
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}
    answer = await client.post(GENERATE, headers=KEY, json=body)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    return payload["candidates"][0]["content"]["parts"][0]["text"], payload


def sales_prompt(message: str, history: str = "") -> str:
    return SALES_PROMPT.format(knowledge=KNOWLEDGE, history=history, message=message)


async def test_a_sales_message_containing_when_gets_the_scripted_answer(client):
    await add_script(client, job="sales", when="тариф Старт", answer=INVENTED_PRICE, count=1)

    text, payload = await generate(client, sales_prompt("А сколько стоит тариф Старт?"))
    assert json.loads(text) == INVENTED_PRICE
    assert payload["candidates"][0]["finishReason"] == "STOP"
    usage = payload["usageMetadata"]
    assert usage["candidatesTokenCount"] > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


async def test_a_counted_script_is_used_up_and_the_rules_answer_again(client):
    await add_script(client, job="sales", when="тариф Старт", answer=INVENTED_PRICE, count=1)
    await generate(client, sales_prompt("А сколько стоит тариф Старт?"))

    text, _ = await generate(client, sales_prompt("А сколько стоит тариф Старт?"))
    assert "4 500" not in text and "15 000 ₸" in text
    assert (await client.get("/sandbox/gemini/scripts")).json() == {"scripts": []}


async def test_only_the_new_client_message_is_searched_for_a_sales_script(client):
    await add_script(client, job="sales", when="тариф Старт", answer=INVENTED_PRICE)
    history = "[2026-06-23 14:50] Клиент: Интересует тариф Старт"

    text, _ = await generate(client, sales_prompt("Я подумаю", history))
    assert json.loads(text)["reply"] != INVENTED_PRICE["reply"]


async def test_a_script_without_count_answers_until_deleted(client):
    script = await add_script(client, job="sales", when="тариф Старт", answer=INVENTED_PRICE)
    assert script == {"job": "sales", "when": "тариф Старт", "answer": INVENTED_PRICE, "count": None}
    for _ in range(3):
        text, _ = await generate(client, sales_prompt("Что входит в тариф Старт?"))
        assert json.loads(text) == INVENTED_PRICE
    assert (await client.get("/sandbox/gemini/scripts")).json() == {"scripts": [script]}

    assert (await client.delete("/sandbox/gemini/scripts")).json() == {"status": "ok"}
    text, _ = await generate(client, sales_prompt("Что входит в тариф Старт?"))
    assert json.loads(text) != INVENTED_PRICE


async def test_reset_forgets_the_scripts(client):
    await add_script(client, job="sales", when="тариф", answer=INVENTED_PRICE)
    await client.post("/sandbox/reset")
    assert (await client.get("/sandbox/gemini/scripts")).json() == {"scripts": []}


async def test_a_script_answers_only_its_own_job_and_other_jobs_search_the_whole_prompt(client):
    verdict = {"isClient": False, "confidence": 0.99, "reasoning": "Конкурент"}
    await add_script(client, job="moderator", when="ТОО Конкурент", answer=verdict)
    moderator_prompt = MODERATOR_PROMPT.format(
        contact="Иван", company="ТОО Конкурент", history="[2026-06-23 10:00] Клиент: Пришлите КП"
    )

    text, _ = await generate(client, moderator_prompt, schema=None)
    assert json.loads(text) == verdict
    sales_text, _ = await generate(client, sales_prompt("Мы из ТОО Конкурент, пришлите цены"))
    assert json.loads(sales_text) != verdict


async def test_the_oldest_matching_script_answers_first(client):
    await add_script(client, job="follow_up", when="КАСАНИЕ", answer={"message": "первый"}, count=1)
    await add_script(client, job="follow_up", when="КАСАНИЕ", answer={"message": "второй"}, count=1)
    prompt = "Клиент молчит.\n\nЭто КАСАНИЕ #3 из 5."

    answers = [json.loads((await generate(client, prompt, schema=None))[0]) for _ in range(2)]
    assert answers == [{"message": "первый"}, {"message": "второй"}]


async def test_a_bad_answer_does_not_use_up_the_script_so_the_retry_gets_it(client):
    await add_script(client, job="sales", when="тариф Старт", answer=INVENTED_PRICE, count=1)
    await client.post("/sandbox/faults", json={"answer": "max_tokens", "job": "sales", "count": 1})
    prompt = sales_prompt("Сколько стоит тариф Старт?")

    cut, payload = await generate(client, prompt)
    assert payload["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert json.dumps(INVENTED_PRICE, ensure_ascii=False).startswith(cut)
    retry, _ = await generate(client, prompt)
    assert json.loads(retry) == INVENTED_PRICE


@pytest.mark.parametrize(
    "script",
    [
        {"job": "sales", "when": "тариф", "answer": "Тариф стоит 4 500"},
        {"job": "sales", "when": "тариф", "answer": [1, 2]},
        {"job": "lawyer", "when": "тариф", "answer": {}},
        {"job": "sales", "when": "", "answer": {}},
        {"job": "sales", "when": "тариф", "answer": {}, "count": 0},
    ],
)
async def test_malformed_scripts_are_rejected(client, script):
    assert (await client.post("/sandbox/gemini/scripts", json=script)).status_code == 422


async def test_the_prompts_the_model_was_sent_can_be_read_back(client):
    body = {
        "contents": [{"role": "user", "parts": [{"text": "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:\nСколько стоит?"}]}],
        "generationConfig": {"responseMimeType": "application/json"},
    }
    await client.post("/v1/models/gemini-2.5-pro:generateContent", headers={"x-goog-api-key": "k"}, json=body)

    [sent] = (await client.get("/sandbox/gemini/prompts", params={"job": "sales"})).json()["prompts"]
    assert "Сколько стоит?" in sent["prompt"]
    assert (await client.get("/sandbox/gemini/prompts", params={"job": "moderator"})).json()["prompts"] == []
