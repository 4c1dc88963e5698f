"""Junk on the queues the gateway consumes: each body is dead-lettered with a reason, and the consumer
keeps working (after every piece of junk a valid message is still handled). Real RabbitMQ, raw bytes."""

import asyncio
import json
import time
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from service_kit.queues import Contract
from tests.conftest import CONTRACTS, collect, inject

pytestmark = pytest.mark.usefixtures("gateway")
CUSTOMER = "77011234567"
OUTGOING = CONTRACTS["outgoing_messages"]
VOICE = CONTRACTS["voice_transcription"]
VALID_OUTGOING = {"phone_number": CUSTOMER, "message_text": "Здравствуйте", "outgoing_id": "x-1"}
VALID_VOICE = {
    "message_id": "V1",
    "chat_id": f"{CUSTOMER}@c.us",
    "phone_number": CUSTOMER,
    "voice_url": None,
    "timestamp": "2026-10-05T14:30:00+05:00",
}
JUNK_RUNS = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the service
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def junk(valid: dict) -> st.SearchStrategy[bytes]:
    """Bodies that cannot be valid: not UTF-8, not JSON, JSON but no object, or a broken valid body."""
    keys = sorted(valid)
    broken = st.one_of(
        st.sampled_from(keys).map(lambda k: {n: v for n, v in valid.items() if n != k}),  # a field missing
        st.tuples(st.sampled_from(keys), json_values).map(lambda kv: {**valid, kv[0]: kv[1]}),  # wrong type
        st.tuples(st.text(min_size=1, max_size=12), json_values).map(lambda kv: {**valid, kv[0]: kv[1]}),
        json_values.map(lambda v: {**valid, "contact_info": {"FirstName": v, "nested": [v, {"x": v}]}}),
    )
    return st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64).map(lambda s: s.encode("utf-8")),
        json_values.filter(lambda v: not isinstance(v, dict)).map(_dumps),
        st.dictionaries(st.text(max_size=10), json_values, max_size=6).map(_dumps),
        broken.map(_dumps),
    )


def is_invalid(raw: bytes, contract: Contract) -> bool:
    try:
        return bool(contract.errors(json.loads(raw.decode("utf-8"))))
    except (ValueError, RecursionError):
        return True


# Whatever a publisher can put in our retry-count header (RabbitMQ itself refuses raw bytes, NaN, inf).
odd_attempt_headers = st.one_of(
    st.none(),
    st.integers(-(2**31), 2**31 - 1),
    st.text(max_size=8),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.booleans(),
)


async def publish_raw(broker, queue: str, raw: bytes, message_id: str, x_attempts) -> None:
    channel = await broker.channel()
    headers = {} if x_attempts is None else {"x-attempts": x_attempts}
    message = aio_pika.Message(body=raw, message_id=message_id, headers=headers)
    await channel.default_exchange.publish(message, routing_key=queue)
    await channel.close()


async def take(broker, queue: str, message_id: str, wait_s: float = 10.0) -> AbstractIncomingMessage:
    """The message with this id from `queue` (anything else there is a failure)."""
    channel = await broker.channel()
    target = await channel.get_queue(queue, ensure=False)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            message = await target.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.01)
                continue
            assert message.message_id == message_id, f"unexpected message {message.message_id} in {queue}"
            return message
        raise AssertionError(f"{message_id} never reached {queue}")
    finally:
        await channel.close()


async def assert_dead_lettered(broker, queue: str, raw: bytes, message_id: str) -> None:
    dead = await take(broker, f"{queue}.dlq", message_id)
    assert dead.body == raw
    assert dead.headers["x-original-queue"] == queue
    assert isinstance(dead.headers["x-dlq-reason"], str) and dead.headers["x-dlq-reason"].strip()
    assert dead.headers["x-attempts"] >= 1


async def sent_text_arrives(sandbox, text: str, wait_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + wait_s
    while True:
        bodies = [m["body"] for m in (await sandbox.get("/sandbox/sent")).json()["messages"]]
        if text in bodies or time.monotonic() > deadline:
            return bodies
        await asyncio.sleep(0.01)


@JUNK_RUNS
@given(raw=junk(VALID_OUTGOING), x_attempts=odd_attempt_headers)
@example(raw=b"[" * 100_000 + b"]" * 100_000, x_attempts=None)
@example(raw=_dumps({**VALID_OUTGOING, "message_text": "я" * 70_000}), x_attempts="five")
@example(raw=_dumps({**VALID_OUTGOING, "phone_number": "7" * 100_000}), x_attempts=-3)
@example(raw=b"\xff\xfe\x00{not utf-8", x_attempts="inf")
@example(raw=b"", x_attempts=None)
async def test_junk_on_outgoing_is_dead_lettered_and_the_sender_goes_on(
    broker, queues, sandbox, publish, raw, x_attempts
):
    assume(is_invalid(raw, OUTGOING))
    junk_id = uuid.uuid4().hex
    await publish_raw(broker, queues.outgoing, raw, junk_id, x_attempts)
    canary = f"после мусора {junk_id}"
    # An explicit id: aiormq makes one up from `random`, which Hypothesis seeds alike for every example.
    canary_body = {"phone_number": CUSTOMER, "message_text": canary}
    await publish(queues.outgoing, canary_body, message_id=uuid.uuid4().hex)
    await assert_dead_lettered(broker, queues.outgoing, raw, junk_id)
    sent = await sent_text_arrives(sandbox, canary)
    assert sent[-1] == canary and all(body.startswith("после мусора ") for body in sent)


@JUNK_RUNS
@given(raw=junk(VALID_VOICE), x_attempts=odd_attempt_headers)
@example(raw=b"[" * 100_000 + b"]" * 100_000, x_attempts=None)
@example(raw=_dumps({**VALID_VOICE, "voice_url": "h" * 100_000}), x_attempts="1e9")
@example(raw=_dumps({**VALID_VOICE, "timestamp": "вчера"}), x_attempts=None)
@example(raw=b"\xc3\x28", x_attempts=None)
async def test_junk_on_voice_transcription_is_dead_lettered_and_the_voice_worker_goes_on(
    broker, queues, sandbox, publish, raw, x_attempts
):
    assume(is_invalid(raw, VOICE))
    junk_id = uuid.uuid4().hex
    await publish_raw(broker, queues.voice, raw, junk_id, x_attempts)
    # A real voice note, old enough for the poller to leave it alone: only the published body counts.
    note = await inject(sandbox, phone=CUSTOMER, type="ptt", transcript="живой", time=int(time.time()) - 3600)
    body = {**VALID_VOICE, "message_id": note["id"], "voice_url": note["file_link"]}
    await publish(queues.voice, body, message_id=note["id"])
    await assert_dead_lettered(broker, queues.voice, raw, junk_id)
    transcript = json.loads((await take(broker, queues.incoming, note["id"])).body)
    assert transcript["message_text"] == "[ТРАНСКРИБАЦИЯ] живой"


async def test_an_invalid_outgoing_body_is_dead_lettered_with_the_validation_error(
    broker, publish, queues, sandbox
):
    await publish(queues.outgoing, {"phone_number": "+7 701", "text": "hi"}, message_id="bad-1")
    found = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert len(found) == 1
    reason = found[0]["_amqp"].headers["x-dlq-reason"]
    assert (
        reason == "schema violation at (body): Additional properties are not allowed ('text' was unexpected)"
    )
    assert json.loads(found[0]["_amqp"].body) == {"phone_number": "+7 701", "text": "hi"}
    assert (await sandbox.get("/sandbox/sent")).json()["messages"] == []
