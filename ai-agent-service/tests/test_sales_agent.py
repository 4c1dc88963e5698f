"""What the sales agent shows Gemini (knowledge, history, Astana time) and what it stores."""

import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Contact, Message
from services.message_consumer import Outcome
from tests.conftest import handle, incoming, make_agent

PHONE = "77019998877"


@pytest.fixture
async def client_contact(db) -> int:
    async with db.begin() as session:
        contact = Contact(phone_number=PHONE, name="Айгуль", business_name="ТОО Нур", is_client=True)
        session.add(contact)
        await session.flush()
        return contact.id


def section(prompt: str, start: str, end: str) -> str:
    return prompt.split(start, 1)[1].split(end, 1)[0].strip()


async def test_a_price_question_carries_the_price_chunk_and_astana_time(
    agent, client_contact, gemini, queues
):
    await handle(incoming("Сколько стоит тариф Старт?", phone=PHONE), agent)

    prompt = gemini.prompts_of("sales")[0]
    knowledge = section(prompt, "БАЗА ЗНАНИЙ О ПРОДУКТАХ:", "ВАЖНЫЕ ПРАВИЛА:")
    assert "pricing.pdf" in knowledge
    assert re.search(r"Старт\s+—\s+15 000 ₸", knowledge)
    # The fixed clock is 10:00 UTC, i.e. 15:00 in Astana (UTC+5).
    assert "ТЕКУЩАЯ ДАТА И ВРЕМЯ: 2026-11-25 15:00" in prompt
    assert section(prompt, "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:", "ТЕКУЩАЯ ДАТА") == "Сколько стоит тариф Старт?"
    assert len(await queues.outgoing()) == 1


async def test_the_prompt_carries_the_last_twenty_messages_oldest_first(agent, db, client_contact, gemini):
    start = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    async with db.begin() as session:
        for n in range(25):
            session.add(
                Message(
                    contact_id=client_contact,
                    phone_number=PHONE,
                    message_id=None if n % 2 else f"old-{n}",
                    message_text=f"реплика номер {n}",
                    is_from_bot=bool(n % 2),
                    timestamp=start + timedelta(minutes=n),
                    answered_at=start,
                )
            )

    await handle(incoming("А что с доставкой?", phone=PHONE), agent)

    history = section(
        gemini.prompts_of("sales")[0], "КОНТЕКСТ ТЕКУЩЕЙ ПЕРЕПИСКИ:", "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:"
    )
    lines = history.splitlines()
    assert len(lines) == 20
    assert [int(line.rsplit(" ", 1)[1]) for line in lines] == list(range(5, 25))
    # Astana time: 04:05 UTC is 09:05 in Astana.
    assert lines[0] == "[2026-11-24 09:05] Бот: реплика номер 5"
    assert lines[1] == "[2026-11-24 09:06] Клиент: реплика номер 6"


async def test_a_very_long_message_is_cut_in_the_prompt_but_stored_whole(agent, db, client_contact, gemini):
    long_text = "Опишу задачу подробно. " + "склад " * 3000

    await handle(incoming(long_text, phone=PHONE), agent)

    new_message = section(gemini.prompts_of("sales")[0], "НОВОЕ СООБЩЕНИЕ КЛИЕНТА:", "ТЕКУЩАЯ ДАТА")
    assert len(new_message) < 4100 and new_message.endswith("[сообщение обрезано]")
    async with db() as session:
        stored = await session.scalar(select(Message.message_text).where(Message.is_from_bot.is_(False)))
    assert stored == long_text


async def test_the_clients_stance_is_stored_on_the_message(agent, db, client_contact, gemini):
    gemini.sales = lambda prompt: {
        "reply": "Понял вас, спасибо!",
        "stance": "no",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }

    assert await handle(incoming("Нет, не интересно", phone=PHONE), agent) is Outcome.REPLIED

    async with db() as session:
        stance = await session.scalar(select(Message.stance).where(Message.is_from_bot.is_(False)))
    assert stance == "no"


async def test_an_edited_prompt_takes_effect_without_a_restart(
    settings, db, broker, llm, knowledge, gemini, queues, client_contact, tmp_path
):
    prompts = tmp_path / "prompts"
    shutil.copytree(settings.PROMPTS_PATH, prompts)
    agent = make_agent(settings, db, broker, llm, knowledge, prompts_dir=prompts)
    await handle(incoming("Здравствуйте, какие есть тарифы?", phone=PHONE), agent)

    sales_prompt = prompts / "sales_agent_prompt.txt"
    sales_prompt.write_text(
        "ПРАВКА ОТ МАРКЕТОЛОГА\n" + sales_prompt.read_text(encoding="utf-8"), encoding="utf-8"
    )
    await handle(incoming("А есть скидки?", phone=PHONE), agent)

    first, second = gemini.prompts_of("sales")
    assert "ПРАВКА ОТ МАРКЕТОЛОГА" not in first
    assert second.startswith("ПРАВКА ОТ МАРКЕТОЛОГА")
