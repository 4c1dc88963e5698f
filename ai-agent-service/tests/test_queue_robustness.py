"""What arrives on incoming_messages cannot be trusted: junk is dead-lettered with a reason, hostile texts are
stored verbatim and answered with bounded prompts, and one contact that keeps failing does not hold up others.
Real RabbitMQ and PostgreSQL; Gemini is respx (GeminiStub)."""

import asyncio
import json
import uuid

import aio_pika
import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Message
from tests.conftest import contract_validator, incoming, start_consuming
from tests.gemini_stub import default_moderator, default_sales

BUSINESS = "ООО Альфа"
PROMPT_BOUND = 30_000
VALID = incoming("Сколько стоит тариф Старт?", phone="77019990000", business=BUSINESS)
REQUIRED = ("message_id", "chat_id", "phone_number", "message_text", "is_voice", "timestamp")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


def encoded(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def nested_lists(depth: int) -> list:
    return json.loads("[" * depth + "]" * depth)


def invalid_utf8_inside_a_message() -> bytes:
    return encoded(VALID).replace("Сколько".encode(), b"\xd0\xff\xfe")


junk_bodies = st.one_of(
    st.binary(max_size=300),  # non-JSON, numbers, bare strings...
    st.binary(max_size=100).map(lambda tail: b"\xff\xfe" + tail),  # not UTF-8 at all
    st.just(invalid_utf8_inside_a_message()),
    json_values.map(encoded),  # arrays, numbers, objects of junk
    st.sampled_from(REQUIRED).map(lambda field: encoded({k: v for k, v in VALID.items() if k != field})),
    st.tuples(st.sampled_from(sorted(VALID)), json_values).map(lambda kv: encoded({**VALID, kv[0]: kv[1]})),
    st.tuples(st.text(min_size=1, max_size=10), json_values).map(
        lambda kv: encoded({**VALID, f"x_{kv[0]}": kv[1]})  # a field the contract does not know
    ),
    st.sampled_from(
        [
            ("message_text", "я" * 200_001),
            ("message_id", "m" * 256),
            ("phone_number", "7" * 21),
            ("chat_id", "c" * 100_000),
        ]
    ).map(lambda kv: encoded({**VALID, kv[0]: kv[1]})),  # huge strings
    st.integers(1_000, 50_000).map(lambda depth: b"[" * depth + b"]" * depth),  # nested too deep to parse
    st.integers(100, 900).map(lambda depth: encoded({**VALID, "contact_info": nested_lists(depth)})),
    st.integers(4_400, 20_000).map(lambda digits: b"9" * digits),  # an integer Python refuses to convert
    st.just(encoded(VALID).replace("Сколько".encode(), b"\\ud800")),  # unpaired surrogate escape
)


CONTRACT = contract_validator("incoming_messages")


def is_valid_message(raw: bytes) -> bool:
    try:
        body = json.loads(raw.decode("utf-8"))
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return False
    return CONTRACT.is_valid(body)


async def dead_letter_of(queues, raw: bytes, seconds: float = 10.0) -> aio_pika.abc.AbstractIncomingMessage:
    """Publishes raw bytes to incoming_messages and returns the copy that lands in its DLQ."""
    message_id = uuid.uuid4().hex
    channel = await queues.connection.channel(publisher_confirms=True)
    try:
        await channel.default_exchange.publish(
            aio_pika.Message(raw, message_id=message_id), routing_key=queues.incoming_queue.name
        )
        dlq = await channel.get_queue(queues.incoming_queue.dlq)
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            dead = await dlq.get(no_ack=True, fail=False)
            if dead is not None and dead.message_id == message_id:
                return dead
            if dead is None:
                await asyncio.sleep(0.02)
        raise AssertionError(f"not dead-lettered within {seconds} s: {raw[:200]!r}")
    finally:
        await channel.close()


@pytest.fixture
def sales_agent(agent, gemini):
    """The agent with Gemini on respx (the stub answers while the fixture is active)."""
    return agent


async def test_junk_bodies_are_dead_lettered_with_a_reason_and_the_consumer_goes_on(
    sales_agent, broker, queues
):
    consumer = await start_consuming(broker, sales_agent)
    loop = asyncio.get_running_loop()

    # Hypothesis drives a plain function in a worker thread; each example runs on the test's event loop,
    # where the consumer lives.
    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(junk_bodies)
    def each_junk_body_is_dead_lettered(raw: bytes) -> None:
        if is_valid_message(raw):
            return  # a mutation that happens to keep the message valid is not junk
        dead = asyncio.run_coroutine_threadsafe(dead_letter_of(queues, raw), loop).result(timeout=30)
        assert dead.body == raw
        reason = dead.headers["x-dlq-reason"]
        assert reason.startswith(("invalid JSON", "schema violation")), reason
        assert dead.headers["x-original-queue"] == queues.incoming_queue.name

    try:
        await asyncio.to_thread(each_junk_body_is_dead_lettered)
        assert consumer.running
        await queues.publish_incoming(VALID)
        [reply] = await queues.wait_for(queues.outgoing_queue.name)
    finally:
        await consumer.stop()
    assert json.loads(reply.body)["reply_to_message_id"] == VALID["message_id"]


HOSTILE_TEXTS = {
    "100 KB": "Здравствуйте! Прикладываю наш список товаров. " + "Товар №1234, остаток 56 шт.; " * 3500,
    "emoji only": "😀🙏🏽👍🏻📦🚚❤️‍🔥🇰🇿" * 20,
    "RTL": "مرحبا، كم سعر الاشتراك؟ שלום, כמה זה עולה? \u202eمرحبا\u202c",
    "zero-width": "Сколько\u200b стоит\u200c тариф\u200d Старт\ufeff?\u2060",
    "SQL-like": "'; DROP TABLE contacts; --",
    "HTML": '<script>alert("x")</script><img src=x onerror=alert(1)> Сколько стоит?',
}


async def test_hostile_texts_are_stored_verbatim_answered_and_prompted_within_bounds(
    sales_agent, broker, queues, db, gemini
):
    bodies = {
        name: incoming(text, phone=f"7701555000{n}", business=BUSINESS)
        for n, (name, text) in enumerate(HOSTILE_TEXTS.items())
    }
    assert len(HOSTILE_TEXTS["100 KB"].encode()) > 100_000
    consumer = await start_consuming(broker, sales_agent)
    try:
        for body in bodies.values():
            await queues.publish_incoming(body)
        replies = await queues.wait_for(queues.outgoing_queue.name, count=len(bodies), seconds=20)
    finally:
        await consumer.stop()

    assert sorted(json.loads(r.body)["phone_number"] for r in replies) == sorted(
        b["phone_number"] for b in bodies.values()
    )
    async with db() as session:
        stored = dict((await session.execute(select(Message.message_id, Message.message_text))).all())
    for name, body in bodies.items():
        assert stored[body["message_id"]].encode("utf-8") == body["message_text"].encode("utf-8"), name
    assert gemini.prompts and max(len(prompt) for prompt in gemini.prompts) < PROMPT_BOUND
    # The pasted document reached Gemini, cut: its first words are there, not all 100 KB.
    assert any("Прикладываю наш список товаров" in p and "[сообщение обрезано]" in p for p in gemini.prompts)


async def test_a_conversation_of_100_kb_messages_keeps_every_prompt_bounded(
    sales_agent, broker, queues, gemini
):
    text = "Сколько стоит? " + "очень длинное сообщение " * 4_200
    replies = iter(f"Ответ {n}: " + "другими словами " * n for n in range(1, 9))
    gemini.sales = lambda prompt: {**default_sales(prompt), "reply": next(replies)}  # no bot loop here
    consumer = await start_consuming(broker, sales_agent)
    try:
        for n in range(8):  # each a different text: the same one three times over is a bot loop
            await queues.publish_incoming(incoming(f"{n}. {text}", phone="77015551111", business=BUSINESS))
            await queues.wait_for(queues.outgoing_queue.name)
    finally:
        await consumer.stop()

    sales_prompts = gemini.prompts_of("sales")
    assert len(sales_prompts) == 8
    assert max(len(prompt) for prompt in gemini.prompts) < PROMPT_BOUND


async def test_a_contact_that_keeps_failing_is_dead_lettered_while_others_are_answered(
    sales_agent, broker, queues, gemini
):
    gemini.moderator = lambda prompt: (
        httpx.Response(503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
        if "ООО Сбой" in prompt
        else default_moderator(prompt)
    )
    failing = incoming("Сколько стоит?", phone="77016660000", business="ООО Сбой")
    healthy = incoming("Сколько стоит?", phone="77016661111", business=BUSINESS)
    consumer = await start_consuming(broker, sales_agent)
    try:
        # Three attempts already spent, so the test waits for one pass through the 5 s retry queue, not four.
        channel = await queues.connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(encoded(failing), headers={"x-attempts": 3}, message_id=failing["message_id"]),
            routing_key=queues.incoming_queue.name,
        )
        await channel.close()
        await queues.publish_incoming(healthy)
        [reply] = await queues.wait_for(queues.outgoing_queue.name)
        [dead] = await queues.wait_for(queues.incoming_queue.dlq, seconds=15)
        assert consumer.running
    finally:
        await consumer.stop()

    assert json.loads(reply.body)["phone_number"] == healthy["phone_number"]
    assert json.loads(dead.body) == failing
    assert dead.headers["x-attempts"] == 5
    reason = dead.headers["x-dlq-reason"]
    assert (
        reason.startswith("GeminiUnavailable") and "503" in reason and reason.endswith("(after 5 attempts)")
    )
    assert await queues.outgoing() == []
