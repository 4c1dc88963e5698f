"""The decision log says, for every client message, what became of it: the turn's own decision, covered by
the reply to the same turn or by a person, a known non-client's message, not decided yet, or dead-lettered
with the reason the DLQ got."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from models import Contact, Message
from service_kit.consumer import Delivery
from services.incoming_messages import IncomingMessage
from services.message_consumer import handle_incoming
from tests.conftest import ADMIN_KEY, MAX_ATTEMPTS, WEDNESDAY_3PM, handle, incoming

PHONE = "77015550301"
AUTH = {"X-API-Key": ADMIN_KEY}


async def log_of(api: httpx.AsyncClient, phone: str = PHONE) -> list[dict]:
    answer = await api.get(f"/contacts/{phone}/decisions", headers=AUTH)
    answer.raise_for_status()
    return answer.json()["items"]


async def store_unhandled(db, body: dict) -> None:
    """A client message stored, its own turn not run yet (it is in flight, or waits for a retry)."""
    async with db.begin() as session:
        contact = await session.scalar(select(Contact).where(Contact.phone_number == body["phone_number"]))
        session.add(
            Message(
                contact_id=contact.id,
                phone_number=body["phone_number"],
                message_id=body["message_id"],
                message_text=body["message_text"],
                timestamp=WEDNESDAY_3PM - timedelta(minutes=1),
            )
        )


async def test_a_message_of_the_same_turn_is_covered_by_its_reply(agent, db, api, gemini, queues):
    first = incoming("Здравствуйте!", phone=PHONE, business="ТОО Альфа", at=WEDNESDAY_3PM)
    await handle(first, agent)
    burst = incoming("Подскажите,", phone=PHONE, at=WEDNESDAY_3PM)
    await store_unhandled(db, burst)
    assert [entry["kind"] for entry in await log_of(api)] == ["pending", "replied"]

    await handle(incoming("сколько стоит тариф Старт?", phone=PHONE, at=WEDNESDAY_3PM), agent)

    newest, covered, oldest = await log_of(api)
    assert (newest["kind"], newest["client_text"]) == ("replied", "сколько стоит тариф Старт?")
    assert (covered["kind"], covered["id"], covered["client_text"]) == ("covered", None, "Подскажите,")
    assert covered["sent_text"] == newest["sent_text"] and covered["sent_text"]
    assert covered["reason"] == "covered by the reply to the same turn"
    assert oldest["kind"] == "replied"


async def test_a_message_a_person_answered_is_covered_by_their_words(agent, db, api, gemini, queues):
    await handle(incoming("Добрый день", phone=PHONE, business="ТОО Альфа"), agent)
    waiting = incoming("Можно счёт на оплату?", phone=PHONE)
    await store_unhandled(db, waiting)

    await handle(incoming("Счёт отправила на почту", phone=PHONE) | {"sender": "operator"}, agent)

    covered = (await log_of(api))[0]
    assert (covered["kind"], covered["reason"]) == ("covered", "answered by a person")
    assert covered["sent_text"] == "Счёт отправила на почту"


async def test_a_known_non_clients_messages_are_logged_as_never_answered(agent, db, api, gemini, queues):
    async with db.begin() as session:
        session.add(Contact(phone_number=PHONE, is_client=False, classification_confidence=0.9))

    await handle(incoming("Акция! Скидки на шины", phone=PHONE), agent)

    [entry] = await log_of(api)
    assert (entry["kind"], entry["client_text"]) == ("not_a_client", "Акция! Скидки на шины")


@pytest.mark.parametrize("attempt", [MAX_ATTEMPTS - 1, MAX_ATTEMPTS])
async def test_a_message_given_up_to_the_dlq_is_logged_with_the_reason(
    agent, db, api, gemini, queues, attempt
):
    gemini.moderator = lambda prompt: httpx.Response(
        503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    )
    body = incoming("Сколько стоит?", phone=PHONE, business="ТОО Сбой")
    delivery = Delivery(body["message_id"], attempt=attempt, max_attempts=MAX_ATTEMPTS)

    with pytest.raises(Exception, match="503"):
        await handle_incoming(IncomingMessage.model_validate(body), delivery, deps=agent)

    [entry] = await log_of(api)
    if attempt < MAX_ATTEMPTS:
        assert entry["kind"] == "pending"  # it comes back through the retry queue
    else:
        assert entry["kind"] == "dead_lettered" and entry["id"] is not None
        assert entry["reason"].startswith("GeminiUnavailable")
        assert entry["reason"].endswith(f"(after {MAX_ATTEMPTS} attempts)")
