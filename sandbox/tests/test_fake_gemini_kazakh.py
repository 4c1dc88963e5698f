"""The fake model answers a Kazakh-speaking client in Kazakh when the prompt asks for Kazakh, by the same
rules as in Russian; a Kazakh voice note is transcribed in Kazakh. A prompt that does not ask for Kazakh is
answered in Russian as before."""

import base64
import json
import re

import pytest
from prompts import KNOWLEDGE, MODERATOR_PROMPT, SALES_PROMPT
from test_fake_gemini_rules import FOLLOW_UP_SCHEMA, GENERATE, KEY, MODERATOR_SCHEMA, SALES_SCHEMA, generate

KAZAKH_SALES_PROMPT = SALES_PROMPT.replace("БАЗА ЗНАНИЙ", "✅ Пиши на казахском языке\n\nБАЗА ЗНАНИЙ", 1)
KAZAKH_LETTERS = re.compile("[әғқңөұүһі]", re.I)


async def sell_in_kazakh(client, message: str, history: str = "", knowledge: str = KNOWLEDGE) -> dict:
    prompt = KAZAKH_SALES_PROMPT.format(message=message, history=history, knowledge=knowledge)
    answer = json.loads(await generate(client, prompt, SALES_SCHEMA))
    assert KAZAKH_LETTERS.search(answer["reply"]), answer["reply"]
    return answer


async def test_a_kazakh_business_question_is_a_client(client):
    prompt = MODERATOR_PROMPT.format(
        history="[2026-06-23 10:00] Клиент: Сәлеметсіз бе! Бағасы қанша?", company="", contact="Асель"
    )
    answer = json.loads(await generate(client, prompt, MODERATOR_SCHEMA))
    assert (answer["isClient"], answer["confidence"]) == (True, 0.85)


async def test_a_price_question_is_answered_in_kazakh_with_the_knowledge_bases_amount(client):
    answer = await sell_in_kazakh(client, "Старт тарифінің бағасы қанша?")
    assert answer["stance"] == "asking" and "15 000 ₸" in answer["reply"]


@pytest.mark.parametrize(
    ("message", "slot"),
    [
        ("Ертең сағат 11:00-де сөйлесейік", "2026-06-24T11:00"),
        ("Бүгін 16:30-да қоңырау шалыңыз", "2026-06-23T16:30"),
    ],
)
async def test_the_call_time_a_kazakh_client_names_is_read(client, message, slot):
    answer = await sell_in_kazakh(client, message)
    assert answer["proposed_call_time"] == slot and answer["confirmed_call_time"]
    day, clock = slot.split("T")
    year, month, date = day.split("-")
    assert f"{date}.{month}.{year}, сағат {clock}" in answer["reply"]


async def test_a_kazakh_yes_to_the_bots_kazakh_offer_confirms_that_slot(client):
    history = (
        "[2026-06-23 14:50] Клиент: Қоңырау шалайық\n"
        "[2026-06-23 14:51] Бот: Астана уақытымен 24.06.2026, сағат 10:00 (сәрсенбі) ұсына аламын. "
        "Сізге ыңғайлы ма?"
    )
    answer = await sell_in_kazakh(client, "Иә, болады", history)
    assert answer["proposed_call_time"] == "2026-06-24T10:00" and answer["confirmed_call_time"]


@pytest.mark.parametrize(
    ("message", "stance", "agreed"),
    [
        ("Менеджермен қоңырау шалайық", "yes", True),
        ("Жоқ, рахмет", "no", False),
        ("Ойланамын", "undecided", False),
    ],
)
async def test_wishes_refusals_and_vague_answers_in_kazakh(client, message, stance, agreed):
    answer = await sell_in_kazakh(client, message)
    assert (answer["stance"], answer["agreed_to_call"]) == (stance, agreed)


async def test_a_kazakh_client_who_cannot_make_the_booked_call_is_understood(client):
    history = "[2026-06-23 14:51] Бот: Керемет! Сізді қоңырауға жазып қойдым: 24.06.2026, сағат 10:00"
    answer = await sell_in_kazakh(client, "Кешіріңіз, ертең келе алмаймын", history)
    assert answer["stance"] == "asking"


async def test_the_same_message_in_a_russian_prompt_is_answered_in_russian(client):
    prompt = SALES_PROMPT.format(message="Старт тарифінің бағасы қанша?", history="", knowledge=KNOWLEDGE)
    answer = json.loads(await generate(client, prompt, SALES_SCHEMA))
    assert not KAZAKH_LETTERS.search(answer["reply"])


async def test_kazakh_touches_are_kazakh_and_each_its_own(client):
    messages = []
    for touch in range(1, 6):
        prompt = f"Это КАСАНИЕ #{touch} из 5 в рамках follow-up стратегии.\n10. Пиши на казахском языке"
        messages.append(json.loads(await generate(client, prompt, FOLLOW_UP_SCHEMA))["message"])
    assert len(set(messages)) == 5 and all(KAZAKH_LETTERS.search(m) for m in messages)
    assert not any("%" in m or any(c.isdigit() for c in m) for m in messages)


async def test_a_kazakh_voice_note_is_transcribed_as_spoken(client):
    audio = b"OggS\x00" + "SANDBOX-TRANSCRIPT:Сәлеметсіз бе, жеткізу қанша тұрады?".encode()
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Транскрибируй на том языке, на котором говорит клиент"},
                    {"inlineData": {"mimeType": "audio/ogg", "data": base64.b64encode(audio).decode()}},
                ],
            }
        ]
    }
    answer = await client.post(GENERATE, headers=KEY, json=body)
    assert (
        answer.json()["candidates"][0]["content"]["parts"][0]["text"]
        == "Сәлеметсіз бе, жеткізу қанша тұрады?"
    )
