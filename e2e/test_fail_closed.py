"""Nothing reaches a client that the code has not checked, with the whole system running at a fixed moment
(Tuesday 2026-12-08 11:00 in Astana, inside working hours): call times the model writes in any ISO form,
bookings it claims, prices it invents, and answers Gemini could not give."""

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures import running_system
from system import ADMIN_KEY, fetch, follow_ups_of, move_conversation_back

ASTANA = ZoneInfo("Asia/Almaty")
TUESDAY_11 = datetime(2026, 12, 8, 11, 0, tzinfo=ASTANA)
ASK_TIME = "Какое время вам удобно? Мы работаем пн–пт 10:00–18:00 по Астане 📞"
PRICE_FALLBACK = (
    "Точную стоимость для вашего случая подтвердит наш менеджер 😊 "
    "Хотите, я запишу вас на короткий созвон с ним?"
)
HOLDING = "Спасибо! Уточню детали и вернусь к вам в ближайшее время 😊"


@pytest.fixture(scope="module")
def system():
    with running_system(TUESDAY_11) as system:
        yield system


def sales(reply: str, *, time: str | None = None, confirmed: bool = False, agreed: bool = True) -> dict:
    return {
        "reply": reply,
        "stance": "yes",
        "agreed_to_call": agreed,
        "proposed_call_time": time,
        "confirmed_call_time": confirmed,
    }


async def decisions_of(system, phone: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}) as api:
        answer = await api.get(f"/contacts/{phone}/decisions")
    answer.raise_for_status()
    return answer.json()["items"]


async def first_reply(customer, phone: str, text: str) -> str:
    await customer.write(phone, text, business_name="ТОО Проверка")
    [reply] = await customer.wait_sent_to(phone, 1)
    return reply["body"]


@pytest.mark.parametrize(
    ("phone", "written"),
    [
        ("77012220001", "2026-12-11T20:00"),
        ("77012220002", "2026-12-11T20:00:00"),
        ("77012220003", "2026-12-11T20:00:00+05:00"),
        ("77012220004", "2026-12-11T15:00:00Z"),
        ("77012220005", "2026-12-11 20:00"),
    ],
)
async def test_a_call_at_20_on_a_friday_in_any_iso_form_is_moved_by_the_code(
    system, customer, phone, written
):
    question = f"Созвонимся в пятницу вечером? ({phone})"
    await customer.script(phone, sales("Записал вас на 11.12 в 20:00 👍", time=written, confirmed=True))

    reply = await first_reply(customer, phone, question)

    assert reply.startswith("К сожалению, в это время мы не работаем")
    assert "Могу предложить 14.12.2026 в 10:00 (понедельник)" in reply
    assert "20:00" not in reply.split("Могу предложить")[1]


async def test_a_time_that_cannot_be_understood_gets_the_codes_question(system, customer):
    phone = "77012220011"
    await customer.script(phone, sales("Записал вас на сегодня в 20:00", time="вечером", confirmed=True))

    assert await first_reply(customer, phone, f"Давайте созвонимся вечером {phone}") == ASK_TIME
    [decision] = await decisions_of(system, phone)
    assert decision["kind"] == "guarded" and decision["model_text"] == "Записал вас на сегодня в 20:00"


async def test_an_unconfirmed_time_with_a_booking_claim_gets_the_codes_offer(system, customer):
    phone = "77012220012"
    answer = sales("Записал вас на 09.12.2026 в 11:00!", time="2026-12-09T11:00", confirmed=False)
    await customer.script(phone, answer)

    reply = await first_reply(customer, phone, f"Можно созвониться в среду утром? {phone}")

    assert reply == "Могу предложить 09.12.2026 в 11:00 (среда) по времени Астаны. Подходит?"
    booked = await fetch(
        system.agent.database_url,
        "SELECT s.id FROM scheduled_calls s JOIN contacts c ON c.id = s.contact_id WHERE c.phone_number = $1",
        phone,
    )
    assert booked == []


async def test_two_leads_confirming_one_free_slot_at_once_get_one_booking_and_one_other_offer(
    system, customer
):
    phones = ("77012220021", "77012220022")
    await asyncio.gather(
        *(
            customer.write(phone, "Давайте созвонимся завтра в 12:00", business_name="ТОО Гонка")
            for phone in phones
        )
    )

    replies = sorted([(await customer.wait_sent_to(phone, 1))[0]["body"] for phone in phones])

    assert replies[0].startswith("К сожалению, это время уже занято. Могу предложить 09.12.2026 в 12:30")
    assert replies[1].startswith("Отлично! Записал вас на 09.12.2026 в 12:00")


async def test_an_invented_price_is_never_sent_and_the_guard_is_on_record(system, customer):
    phone = "77012220031"
    await customer.script(phone, sales("Тариф Старт стоит 4 500 тенге 😊", agreed=False))

    assert await first_reply(customer, phone, f"Сколько стоит тариф Старт? {phone}") == PRICE_FALLBACK
    [decision] = await decisions_of(system, phone)
    assert decision["kind"] == "guarded"
    assert decision["reason"] == "amount 4 500 тенге is not in the knowledge base"
    assert decision["model_text"] == "Тариф Старт стоит 4 500 тенге 😊"


@pytest.mark.parametrize(
    ("phone", "bad_answer"),
    [("77012220041", "safety"), ("77012220042", "max_tokens"), ("77012220043", "off_schema")],
)
async def test_no_usable_answer_from_gemini_gets_the_holding_reply(system, customer, phone, bad_answer):
    await customer.fault(answer=bad_answer, job="sales")

    assert await first_reply(customer, phone, "Сколько стоит тариф Бизнес?") == HOLDING
    [decision] = await decisions_of(system, phone)
    assert decision["kind"] == "holding" and "sales agent gave no usable answer" in decision["reason"]


async def test_one_cut_off_answer_is_asked_again_and_the_client_gets_the_real_reply(system, customer):
    await customer.fault(answer="max_tokens", job="sales", count=1)

    assert "35 000 ₸" in await first_reply(customer, "77012220044", "Сколько стоит тариф Бизнес?")


async def test_a_silent_lead_gets_touch_one_in_working_hours_and_answering_stops_the_chain(system, customer):
    phone = "77012220051"
    await customer.write(phone, "Сколько стоит тариф Бизнес?", business_name="ТОО Зета")
    await customer.wait_sent_to(phone, 1)

    # A day and an hour of silence: touch 1 fell due at 10:00 today, inside working hours, so it goes now.
    await move_conversation_back(system.agent.database_url, phone, hours=25)
    touch = (await customer.wait_sent_to(phone, 2))[1]
    assert touch["kind"] == "send" and touch["body"]
    [chain] = await follow_ups_of(system.agent.database_url, phone)
    assert (chain["touch_number"], chain["is_completed"]) == (2, False)

    answer = await customer.write(phone, "Спасибо, а пробный период у вас есть?")
    reply = (await customer.wait_sent_to(phone, 3))[2]
    assert reply["reply_to"] == answer["id"]
    [chain] = await follow_ups_of(system.agent.database_url, phone)
    assert (chain["is_completed"], chain["stop_reason"]) == (True, "client_responded")
    await asyncio.sleep(3)  # several scheduler passes: no second touch
    assert len(await customer.sent_to(phone)) == 3
