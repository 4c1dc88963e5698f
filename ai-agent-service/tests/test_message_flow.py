"""From incoming_messages to outgoing_messages: routing by is_client, idempotency, bursts, dead letters.
Gemini is respx (GeminiStub); PostgreSQL and RabbitMQ are real."""

import asyncio
import json

import aio_pika
import httpx
import pytest
from sqlalchemy import func, select

from models import Contact, Message
from services.incoming_messages import IncomingMessage as IncomingBody
from services.incoming_messages import store_incoming
from services.message_consumer import Outcome
from tests.conftest import contract_validator, handle, incoming, start_consuming

GEMINI_DOWN = httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}})
PRICE_QUESTION = "Добрый день! Сколько стоит ваша CRM для отдела продаж на 10 человек?"


def moderator_rules(prompt: str) -> dict:
    if "казино" in prompt:
        return {"isClient": False, "confidence": 0.95, "reasoning": "spam"}
    if "Сколько стоит" in prompt or "прайс" in prompt:
        return {"isClient": True, "confidence": 0.9, "reasoning": "asks for prices"}
    return {"isClient": None, "confidence": 0.3, "reasoning": "not enough data"}


@pytest.fixture
def consumer_agent(agent, gemini):
    gemini.moderator = moderator_rules
    return agent


@pytest.fixture
async def running_consumer(consumer_agent, broker):
    consumer = await start_consuming(broker, consumer_agent)
    yield consumer_agent
    await consumer.stop()


async def contact_of(db, phone="77011234567") -> Contact | None:
    async with db() as session:
        return await session.scalar(select(Contact).where(Contact.phone_number == phone))


async def test_business_contact_asking_for_prices_becomes_a_client_and_gets_one_reply(
    running_consumer, queues, db, gemini
):
    body = incoming(PRICE_QUESTION, business="ООО Стройком")
    await queues.publish_incoming(body)

    published = await queues.wait_for(queues.outgoing_queue.name)
    assert len(published) == 1
    reply = json.loads(published[0].body)
    assert list(contract_validator("outgoing_messages").iter_errors(reply)) == []
    assert reply["phone_number"] == "77011234567"
    assert reply["reply_to_message_id"] == body["message_id"]
    assert reply["outgoing_id"] == f"reply-{body['message_id']}"
    assert reply["mark_as_read"] is True and reply["sent_by"] == "reply"
    assert published[0].message_id == reply["outgoing_id"]
    assert published[0].delivery_mode == aio_pika.DeliveryMode.PERSISTENT

    contact = await contact_of(db)
    assert contact.is_client is True and contact.business_name == "ООО Стройком"
    assert contact.classification_confidence == 0.9
    async with db() as session:
        client_msg, bot_msg = (await session.scalars(select(Message).order_by(Message.id))).all()
    assert client_msg.answered_at is not None and client_msg.stance == "asking"
    assert bot_msg.is_from_bot and bot_msg.outgoing_id == reply["outgoing_id"]
    await asyncio.sleep(0.2)  # published_at is written right after the broker's confirm
    async with db() as session:
        assert (await session.get(Message, bot_msg.id)).published_at is not None
    assert await queues.outgoing() == []


async def test_spam_contact_is_not_a_client_and_gets_no_reply(consumer_agent, queues, db):
    outcome = await handle(incoming("Выиграй в казино! Переходи по ссылке"), consumer_agent)

    assert outcome is Outcome.IGNORED
    assert (await contact_of(db)).is_client is False
    assert await queues.outgoing() == []


async def test_a_bare_greeting_leaves_the_contact_unclassified(consumer_agent, queues, db):
    outcome = await handle(incoming("Здравствуйте"), consumer_agent)

    assert outcome is Outcome.UNCLASSIFIED
    assert (await contact_of(db)).is_client is None
    assert await queues.outgoing() == []


async def test_messages_of_a_non_client_are_stored_and_never_answered(consumer_agent, queues, db, gemini):
    await handle(incoming("Выиграй в казино!"), consumer_agent)
    calls = gemini.route.call_count

    outcome = await handle(incoming("Сколько стоит?"), consumer_agent)

    assert outcome is Outcome.IGNORED
    assert gemini.route.call_count == calls
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 2
    assert await queues.outgoing() == []


async def test_the_same_message_delivered_twice_gets_one_reply(consumer_agent, queues):
    body = incoming(PRICE_QUESTION)

    first = await handle(body, consumer_agent)
    second = await handle(body, consumer_agent)

    assert (first, second) == (Outcome.REPLIED, Outcome.DUPLICATE)
    assert len(await queues.outgoing()) == 1


async def test_concurrent_redeliveries_get_one_reply(consumer_agent, queues):
    body = incoming(PRICE_QUESTION)

    outcomes = await asyncio.gather(*(handle(body, consumer_agent) for _ in range(3)))

    assert outcomes.count(Outcome.REPLIED) == 1
    assert len(await queues.outgoing()) == 1


async def test_a_message_stored_but_never_answered_is_answered_on_redelivery(consumer_agent, queues, db):
    body = incoming(PRICE_QUESTION)
    async with db.begin() as session:  # the consumer crashed right after storing it
        await store_incoming(session, IncomingBody.model_validate(body))

    assert await handle(body, consumer_agent) is Outcome.REPLIED
    assert len(await queues.outgoing()) == 1


async def test_a_burst_gets_one_reply_covering_every_message(consumer_agent, queues, db, gemini):
    burst = [incoming(text) for text in ("Добрый день!", "Я из ООО Альфа", "Сколько стоит ваш прайс?")]
    async with db.begin() as session:  # all three arrived before the agent got to the first
        for body in burst:
            await store_incoming(session, IncomingBody.model_validate(body))

    outcomes = [await handle(body, consumer_agent) for body in burst]

    assert outcomes[0] is Outcome.REPLIED
    assert Outcome.REPLIED not in outcomes[1:]
    replies = await queues.outgoing()
    assert len(replies) == 1
    new_message = gemini.prompts_of("sales")[0].split("НОВОЕ СООБЩЕНИЕ КЛИЕНТА:")[1]
    assert all(text in new_message for text in ("Добрый день!", "Я из ООО Альфа", "Сколько стоит ваш прайс?"))
    async with db() as session:
        unanswered = await session.scalar(
            select(func.count()).where(Message.is_from_bot.is_(False), Message.answered_at.is_(None))
        )
    assert unanswered == 0


async def test_invalid_moderator_json_twice_leaves_contact_unclassified(consumer_agent, queues, db, gemini):
    gemini.moderator = lambda prompt: "это не JSON"

    outcome = await handle(incoming(PRICE_QUESTION), consumer_agent)

    assert outcome is Outcome.UNCLASSIFIED
    assert len(gemini.prompts_of("moderator")) == 2
    contact = await contact_of(db)
    assert contact.is_client is None and contact.classification_reasoning is None
    assert await queues.outgoing() == []


async def test_voice_messages_keep_the_text_and_store_the_transcription(consumer_agent, db):
    await handle(incoming("[ТРАНСКРИБАЦИЯ] Сколько стоит внедрение?", is_voice=True), consumer_agent)

    async with db() as session:
        message = await session.scalar(select(Message).where(Message.is_from_bot.is_(False)))
    assert message.is_voice is True and message.message_type == "voice"
    assert message.message_text == "[ТРАНСКРИБАЦИЯ] Сколько стоит внедрение?"
    assert message.voice_transcription == "Сколько стоит внедрение?"


async def test_malformed_bodies_go_to_the_dead_letter_queue_with_a_reason(running_consumer, queues):
    await queues.publish_incoming(b"{not json")
    broken = incoming("Здравствуйте")
    del broken["phone_number"]
    await queues.publish_incoming(broken)
    await queues.publish_incoming({**incoming("Здравствуйте"), "timestamp": "вчера вечером"})

    dead = await queues.wait_for(queues.incoming_queue.dlq, count=3)

    reasons = sorted(m.headers["x-dlq-reason"] for m in dead)
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1].startswith("schema violation at (body)") and "phone_number" in reasons[1]
    assert reasons[2].startswith("schema violation at timestamp") and "date-time" in reasons[2]
    assert all(m.headers["x-original-queue"] == queues.incoming_queue.name for m in dead)


async def test_gemini_outage_sends_the_message_to_the_retry_queue(running_consumer, queues, gemini):
    gemini.moderator = lambda prompt: GEMINI_DOWN
    body = incoming(PRICE_QUESTION)
    await queues.publish_incoming(body)

    retried = await queues.wait_for(queues.incoming_queue.retry)

    assert retried[0].headers["x-attempts"] == 1
    assert json.loads(retried[0].body) == body


async def test_after_the_last_attempt_the_message_is_dead_lettered(running_consumer, queues, gemini):
    gemini.moderator = lambda prompt: GEMINI_DOWN
    channel = await queues.connection.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(json.dumps(incoming(PRICE_QUESTION)).encode(), headers={"x-attempts": 4}),
        routing_key=queues.incoming_queue.name,
    )
    await channel.close()

    dead = await queues.wait_for(queues.incoming_queue.dlq)

    assert dead[0].headers["x-dlq-reason"].startswith("GeminiUnavailable")
    assert dead[0].headers["x-dlq-reason"].endswith("(after 5 attempts)")
    assert dead[0].headers["x-attempts"] == 5
