"""What one contact can cost and hold up: a voice note too long to transcribe is answered by the code (no
Gemini call), and a contact over MAX_LLM_CALLS_PER_CONTACT_PER_HOUR gets no more model calls that hour: told
once that a manager answers (the manager told too), silent after, while other clients are answered."""

import asyncio
import dataclasses
import itertools
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Decision, Message
from service_kit.managers import Manager
from services.call_calendar import CallPolicy
from tests.conftest import WEDNESDAY_3PM, fixed_clock, handle, incoming, start_consuming

MANAGER = Manager("Айгерим", "77019990001")
TOO_LONG = "[ТРАНСКРИБАЦИЯ] (голосовое сообщение слишком длинное, не расшифровано)"


def too_long_voice(phone: str, minute: int) -> dict:
    body = incoming(TOO_LONG, phone=phone, is_voice=True, business="ТОО Склад", at=at(minute))
    return {**body, "voice_too_long": True}


def at(minute: int):
    return WEDNESDAY_3PM - timedelta(hours=1) + timedelta(minutes=minute)


def varied_sales(gemini) -> None:
    """A different reply each time, so nothing looks like a bot loop."""
    counter = itertools.count(1)
    gemini.sales = lambda prompt: {
        "reply": f"Ответ номер {next(counter)}: расскажите подробнее о задаче?",
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }


async def decisions(db, kind: str) -> list[Decision]:
    async with db() as session:
        return list((await session.scalars(select(Decision).where(Decision.kind == kind))).all())


async def test_a_voice_note_too_long_gets_the_codes_request_to_write_without_asking_gemini(
    agent, gemini, queues, db
):
    await handle(too_long_voice("77016660101", 0), agent)

    [reply] = await queues.outgoing()
    assert reply["phone_number"] == "77016660101"
    assert reply["message_text"].startswith("Голосовое сообщение получилось слишком длинным")
    assert gemini.prompts == []
    [decision] = await decisions(db, "voice_too_long")
    async with db() as session:
        stored = await session.get(Message, decision.message_id)
    assert stored.is_voice and stored.answered_at is not None


async def test_a_kazakh_client_is_asked_to_write_in_kazakh(agent, gemini, queues):
    phone = "77016660102"
    await handle(incoming("Сәлеметсіз бе, жеткізу қанша тұрады?", phone=phone, at=at(0)), agent)
    await queues.outgoing()
    asked = len(gemini.prompts)

    await handle(too_long_voice(phone, 1), agent)

    [reply] = await queues.outgoing()
    assert reply["message_text"].startswith("Дауыстық хабарлама тым ұзын")
    assert len(gemini.prompts) == asked


@pytest.fixture
def budget_of_four(agent):
    limits = dataclasses.replace(agent.limits, llm_calls_per_hour=4)
    calls = CallPolicy(managers=(MANAGER,), reminder=timedelta(minutes=60))
    return dataclasses.replace(agent, limits=limits, calls=calls)


async def test_over_the_hours_budget_the_client_is_told_once_the_manager_hears_and_gemini_is_not_asked(
    budget_of_four, gemini, queues, db
):
    varied_sales(gemini)
    phone = "77016660103"
    for minute in range(5):  # 2 calls (moderator + sales), then 1 a turn: the fourth turn is the fifth call
        question = incoming(
            f"Вопрос {minute}: сколько стоит?", phone=phone, at=at(minute), business="ТОО Склад"
        )
        await handle(question, budget_of_four)

    bodies = await queues.outgoing()
    to_client = [b["message_text"] for b in bodies if b.get("kind") != "notification"]
    [notification] = [b for b in bodies if b.get("kind") == "notification"]
    assert [t.split(":")[0] for t in to_client[:3]] == ["Ответ номер 1", "Ответ номер 2", "Ответ номер 3"]
    assert to_client[3].startswith("Спасибо за сообщения! Передаю переписку менеджеру — он ответит вам")
    assert len(to_client) == 4  # the fifth message: nothing more
    assert notification["phone_number"] == MANAGER.phone and "очень часто" in notification["message_text"]
    assert len(gemini.prompts) == 4
    assert [d.reply_id is not None for d in await decisions(db, "llm_budget")] == [True, False]

    next_hour = dataclasses.replace(budget_of_four, clock=fixed_clock(WEDNESDAY_3PM + timedelta(hours=1)))
    await handle(incoming("А доставка есть?", phone=phone, at=at(70)), next_hour)
    [reply] = await queues.outgoing()
    assert reply["message_text"].startswith("Ответ номер 4")


async def test_a_flood_from_one_contact_does_not_hold_up_another_clients_reply(agent, broker, gemini, queues):
    varied_sales(gemini)
    flooding = dataclasses.replace(agent, limits=dataclasses.replace(agent.limits, llm_calls_per_hour=3))
    consumer = await start_consuming(broker, flooding)
    try:
        for n in range(100):
            flood = incoming(f"Сообщение {n}", phone="77016660104", at=at(n % 60), business="ТОО Флуд")
            await queues.publish_incoming(flood)
        other = incoming("Сколько стоит доставка?", phone="77016660105", at=at(1), business="ТОО Склад")
        await queues.publish_incoming(other)
        answered = []
        for _ in range(100):
            bodies = [json.loads(m.body) for m in await queues.drain(queues.outgoing_queue.name)]
            answered += [b for b in bodies if b["phone_number"] == "77016660105"]
            if answered:
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    assert answered and answered[0]["message_text"].startswith("Ответ номер")
    # The flooding contact cost at most its budget; the other client two calls (moderator and sales).
    assert len(gemini.prompts) <= 3 + 2
