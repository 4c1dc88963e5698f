"""`python -m bench.agent_burst`: the agent alone, in this process, working through a burst.

A fresh database and queues, the sandbox's fake Gemini (another process, so its CPU is not counted here),
`--messages` new leads' messages published to incoming_messages before the agent starts, then the agent's
real runtime (consumer, workers, uvloop) answering them all. What it prints survives a loaded machine better
than wall-clock rates: the agent's CPU per handled message (this process's `time.process_time()`, the
harness's own share is a reply read off a queue), how early the first replies came out as a share of the
whole burst's time (a collapse answers nothing until the end), and the process's RSS afterwards.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aio_pika
import httpx
import uvloop
from sqlalchemy import event

from bench import ROOT
from bench.common import LOG_DIR, customer_message, memory_mb, migrate, start_sandbox
from system import PG, RABBITMQ_URL, delete_queues, drop_database, free_port, wait_http

AGENT_DIR = ROOT / "ai-agent-service"


def agent_env(suffix: str, database_url: str, sandbox_url: str, slots: int | None) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "ADMIN_API_KEY": "bench-admin-key",
        "GEMINI_API_KEY": "bench-gemini-key",
        "GEMINI_BASE_URL": sandbox_url,
        "BUSINESS_NAME": "ТОО «СкладПро»",
        "LOG_LEVEL": "INFO",
        "QUEUE_INCOMING_MESSAGES": f"incoming_messages_burst_{suffix}",
        "QUEUE_OUTGOING_MESSAGES": f"outgoing_messages_burst_{suffix}",
        "QUEUE_VOICE_TRANSCRIPTION": f"voice_transcription_burst_{suffix}",
    }
    if slots is not None:
        env["AGENT_CPU_SLOTS"] = str(slots)
    return env


def incoming_body(index: int, suffix: str) -> dict:
    lead = customer_message("77099", index)
    return {
        "message_id": f"BURST{suffix}{index:06d}",
        "chat_id": f"{lead['phone']}@c.us",
        "phone_number": lead["phone"],
        "sender_name": lead["sender_name"],
        "message_text": lead["text"],
        "is_voice": False,
        "timestamp": "2026-11-25T14:00:00+05:00",
        "contact_info": {"FirstName": lead["sender_name"], "BusinessName": lead["business_name"]},
        "message_type": "text",
    }


async def burst(messages: int, slots: int | None, latency_ms: int) -> dict:
    suffix = uuid.uuid4().hex[:8]
    database = f"ai_agent_burst_{suffix}"
    database_url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{database}"
    port = free_port()
    sandbox = start_sandbox(port, LOG_DIR / f"sandbox_burst_{suffix}.log")
    sandbox_url = f"http://127.0.0.1:{port}"
    env = agent_env(suffix, database_url, sandbox_url, slots)
    queue_names = [v for k, v in env.items() if k.startswith("QUEUE_")]
    try:
        wait_http(f"{sandbox_url}/sandbox/health", 30, sandbox)
        if latency_ms:
            async with httpx.AsyncClient(base_url=sandbox_url) as http:
                fault = {"endpoint": "gemini", "latency_ms": latency_ms}
                (await http.post("/sandbox/faults", json=fault)).raise_for_status()
        await asyncio.to_thread(migrate, "ai-agent-service", database, database_url)
        os.environ.update(env)
        return await _run(messages, suffix, env)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        drop_database(database)
        await delete_queues(queue_names)


async def _run(messages: int, suffix: str, env: dict[str, str]) -> dict:
    # The agent's modules are imported from its folder, as app.py runs there.
    os.chdir(AGENT_DIR)
    sys.path.insert(0, str(AGENT_DIR))
    from app import start_runtime, stop_runtime
    from config.queue import load_queues
    from config.settings import Settings
    from service_kit.clock import utc_now
    from service_kit.logs import setup_logging
    from service_kit.queues import declare_topology
    from service_kit.settings import load_settings

    settings = load_settings(Settings)
    LOG_DIR.mkdir(exist_ok=True)
    setup_logging(settings.LOG_LEVEL, settings.secret_values(), LOG_DIR / f"agent_burst_{suffix}")
    queues = load_queues(settings)
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    replies: dict[str, float] = {}
    all_answered = asyncio.Event()
    try:
        channel = await connection.channel()
        await declare_topology(channel, queues.by_contract.values())

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                replies[json.loads(message.body)["reply_to_message_id"]] = time.monotonic()
                if len(replies) >= messages:
                    all_answered.set()

        outgoing = await channel.get_queue(queues["outgoing_messages"].name)
        await outgoing.consume(on_reply)
        runtime = await start_runtime(settings, utc_now)
        # Round trips to PostgreSQL: every statement, BEGIN and COMMIT included (asyncpg sends each).
        statements = {"count": 0}
        by_kind: Counter[str] = Counter()

        def count(*_: object) -> None:
            statements["count"] += 1

        def count_statement(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            by_kind[" ".join(statement.split())[:90]] += 1

        for name in ("before_cursor_execute", "begin", "commit", "rollback"):
            event.listen(runtime.engine.sync_engine, name, count)
            if name != "before_cursor_execute":
                event.listen(runtime.engine.sync_engine, name, lambda *_, n=name: by_kind.update([n.upper()]))
        event.listen(runtime.engine.sync_engine, "before_cursor_execute", count_statement)
        try:
            # The agent is up (knowledge base indexed, consumer started): the whole burst arrives at once.
            cpu_started, started = time.process_time(), time.monotonic()
            for index in range(messages):
                body = json.dumps(incoming_body(index, suffix), ensure_ascii=False).encode()
                message = aio_pika.Message(body, message_id=f"BURST{suffix}{index:06d}")
                await channel.default_exchange.publish(message, routing_key=queues["incoming_messages"].name)
            await asyncio.wait_for(all_answered.wait(), timeout=max(120, messages))
            cpu = time.process_time() - cpu_started
            elapsed = time.monotonic() - started
        finally:
            await stop_runtime(runtime)
    finally:
        await connection.close()
    summary = _summary(messages, replies, started, elapsed, cpu, suffix)
    per_message = {kind: round(n / messages, 2) for kind, n in by_kind.most_common()}
    return summary | {
        "db_round_trips_per_message": round(statements["count"] / messages, 1),
        "statements_per_message": per_message,
    }


def _summary(
    messages: int, replies: dict[str, float], started: float, elapsed: float, cpu: float, suffix: str
):
    done = sorted(at - started for at in replies.values())
    # Completion rank of each message against its place in the burst: 0 is perfect arrival order.
    order = sorted(replies, key=replies.__getitem__)
    displacement = [abs(rank - int(mid.removeprefix(f"BURST{suffix}"))) for rank, mid in enumerate(order)]
    return {
        "messages": messages,
        "answered": len(replies),
        "cpu_ms_per_message": round(cpu * 1000 / messages, 1),
        "elapsed_s": round(elapsed, 1),
        "first_reply_at_share": round(done[0] / elapsed, 3),
        "tenth_reply_at_share": round(done[len(done) // 10] / elapsed, 3),
        "half_replies_at_share": round(done[len(done) // 2] / elapsed, 3),
        "answered_in_first_half": sum(1 for at in done if at <= elapsed / 2),
        "mean_order_displacement": round(statistics.fmean(displacement), 1),
        "rss_mb": memory_mb(os.getpid())["rss_mb"],
        "loadavg": " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--slots", type=int, default=None, help="AGENT_CPU_SLOTS (default: the setting's)")
    parser.add_argument("--latency-ms", type=int, default=0, help="fake Gemini's latency per call")
    args = parser.parse_args()
    result = uvloop.run(burst(args.messages, args.slots, args.latency_ms))
    print(json.dumps(result, indent=2), file=sys.stderr)  # stdout carries the agent's log


if __name__ == "__main__":
    main()
