"""The shared runtime opens the database and the broker with every queue declared, and closes them; the
metrics registry is the process's own."""

from pathlib import Path

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service_kit.metrics import ServiceMetrics
from service_kit.runtime import ServiceRuntime
from service_kit.settings import ServiceSettings
from tests.conftest import CONTRACTS, PG, RABBITMQ_URL, RUN_ID


async def test_the_runtime_declares_every_queue_and_closes_what_it_opened(sessions):
    names = {
        "QUEUE_INCOMING_MESSAGES": f"in_rt_{RUN_ID}",
        "QUEUE_OUTGOING_MESSAGES": f"out_rt_{RUN_ID}",
        "QUEUE_VOICE_TRANSCRIPTION": f"voice_rt_{RUN_ID}",
        "QUEUE_CONTACT_ERASURES": f"erasures_rt_{RUN_ID}",
    }
    settings = ServiceSettings(
        _env_file=None,
        PROJECT_NAME="kit",
        DATABASE_URL=f"postgresql://{PG}/postgres",
        RABBITMQ_URL=RABBITMQ_URL,
        GEMINI_API_KEY="g",
        ADMIN_API_KEY="a" * 32,
        **names,
    )
    engine = create_async_engine(settings.DATABASE_URL)

    runtime = await ServiceRuntime.open(settings, lambda: None, engine, Path(CONTRACTS))
    async with runtime.sessions() as session:
        assert await session.scalar(text("SELECT 1")) == 1
    assert set(runtime.parts()) >= {"settings", "clock", "sessions", "queues", "connection", "publisher"}
    await runtime.close()

    assert runtime.connection.is_closed
    connection = await aio_pika.connect(RABBITMQ_URL)
    channel = await connection.channel()
    for name in names.values():
        for queue in (name, f"{name}.dlq", f"{name}.retry"):
            await channel.declare_queue(queue, passive=True)  # declared, else this raises
            await channel.queue_delete(queue)
        await channel.exchange_delete(f"{name}.dlx")
    await connection.close()


def test_each_metrics_object_has_its_own_registry_and_the_queue_gauge():
    first, second = ServiceMetrics("one"), ServiceMetrics("one")
    first.counter("things", "Things", ["kind"]).labels("a").inc()
    first.queue_size.labels("incoming").set(3)

    text_first = first.exposition().decode()
    assert (
        'one_things_total{kind="a"} 1.0' in text_first
        and 'one_queue_size{queue="incoming"} 3.0' in text_first
    )
    assert "one_things_total{" not in second.exposition().decode()
