"""Runs the raw baseline (bench/baseline.py) under the same offered load as the pipeline: its own sandbox,
fresh databases with the services' schemas, its own queues; measured from its rows the same way."""

import asyncio
import contextlib
import sys
import time
import uuid
from typing import Any

import httpx

from bench import ROOT
from bench.common import (
    LOG_DIR,
    cpu_per_reply,
    cpu_seconds,
    customer_message,
    gateway_times,
    migrate,
    offer_load,
    start_sandbox,
    summarize,
    transactions,
)
from system import PG, PYTHON, delete_queues, drop_database, free_port, wait_http


async def run_baseline(rate: float, seconds: float, drain_s: float) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    databases = {"whatsapp-gateway": f"bench_gateway_{suffix}", "ai-agent-service": f"bench_agent_{suffix}"}
    queues = {"incoming": f"bench_incoming_{suffix}", "outgoing": f"bench_outgoing_{suffix}"}
    gateway_db = f"{PG}/{databases['whatsapp-gateway']}"
    port = free_port()
    sandbox = start_sandbox(port, LOG_DIR / f"baseline_sandbox_{suffix}.log")
    script = None
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/sandbox/health", 30, sandbox)
        for service, database in databases.items():
            await asyncio.to_thread(migrate, service, database, f"{PG}/{database}")
        script = await asyncio.create_subprocess_exec(
            str(PYTHON),
            "-m",
            "bench.baseline",
            "--sandbox",
            f"http://127.0.0.1:{port}",
            "--gateway-db",
            f"{PG}/{databases['whatsapp-gateway']}",
            "--agent-db",
            f"{PG}/{databases['ai-agent-service']}",
            "--incoming",
            queues["incoming"],
            "--outgoing",
            queues["outgoing"],
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        if (await asyncio.wait_for(script.stdout.readline(), 30)).strip() != b"ready":
            raise RuntimeError("the baseline script did not start")

        pids = {"baseline": script.pid, "sandbox": sandbox.pid}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        transactions_before = await transactions(list(databases.values()))

        def hand_over(message: dict[str, Any]) -> None:
            script.stdin.write(
                f"{message['id']} {message['chatId']} {message['from'].split('@')[0]}\n".encode()
            )

        offer = await offer_load(
            f"http://127.0.0.1:{port}", rate, seconds, lambda i: customer_message("7706", i), hand_over
        )
        script.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(script.stdout.readline(), max(offer.ended + drain_s - time.time(), 1))
        cpu = cpu_per_reply(cpu_before, pids, len((await gateway_times(gateway_db))[1]))
        drain_used = time.time() - offer.ended
        seen, sent = await gateway_times(gateway_db)
        capacity = await sandbox_capacity(f"http://127.0.0.1:{port}")
        script.kill()  # its database connections end and report their transactions
        await script.wait()
        done_transactions = await transactions(list(databases.values())) - transactions_before
    finally:
        if script is not None and script.returncode is None:
            script.kill()
            await script.wait()
        sandbox.terminate()
        await asyncio.to_thread(sandbox.wait, 10)
        for database in databases.values():
            await asyncio.to_thread(drop_database, database)
        await delete_queues(list(queues.values()))
    result = summarize(offer, seen, sent)
    result.update(
        drain_s=round(drain_used, 1),
        sandbox_requests_per_s=capacity,
        cpu_ms_per_reply=cpu,
        db_transactions_per_reply=round(done_transactions / max(len(sent), 1), 1),
    )
    return result


async def sandbox_capacity(url: str, seconds: float = 3.0, concurrency: int = 32) -> float:
    """Requests/s the sandbox answers (a messages/get, the most common call) with nothing else running."""
    done = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await http.get(
                    "/api/sync/messages/get",
                    params={"profile_id": "bench", "chat_id": "77060000001@c.us", "limit": 50},
                    headers={"Authorization": "bench-token"},
                )
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return round(done / seconds, 1)


if __name__ == "__main__":  # one level by hand: python -m bench.baseline_run 200 10
    print(asyncio.run(run_baseline(float(sys.argv[1]), float(sys.argv[2]), 15)))
