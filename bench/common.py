"""What every scenario needs: the offered-load generator, percentiles, and what the processes used (RSS and
CPU from /proc, transactions from pg_stat_database), plus timings from the gateway's rows."""

import asyncio
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import ROOT
from system import PG, PYTHON, System, create_database, fetch

# The processes' logs (git-ignored like every logs/ folder), kept apart from the e2e runs' own.
LOG_DIR = ROOT / "bench" / "logs"
# Open-loop load: at most this many inject requests wait for the sandbox at once; beyond it the generator
# falls behind, and the achieved rate (reported beside the offered one) shows it.
MAX_IN_FLIGHT = 32
# The services as shipped, but for two settings. MAX_SENDS_PER_MINUTE (30 by default) is WhatsApp's ban
# guard, not a speed: lifted, the figures are the pipeline's own, not the guard's half a reply a second.
# The agent's schedulers look at their default 30 s, not at the e2e harness's every second (which the
# e2e suites need to see a touch sent at once, and which costs the agent a round of queries a second).
BENCH_SETTINGS = {
    "whatsapp-gateway": {"MAX_SENDS_PER_MINUTE": "60000"},
    "ai-agent-service": {"FOLLOW_UP_CHECK_INTERVAL_SECONDS": "30", "CALENDAR_CHECK_INTERVAL_SECONDS": "30"},
}
# The load generator's requests: at most one per this many seconds, each with the messages due by then.
TICK_S = 0.05
# Replies/s is counted from this long after the load starts until it stops: the pipeline's steady state.
WARMUP_S = 5.0
QUESTIONS = (
    "Здравствуйте, сколько стоит тариф Старт для нашей компании?",
    "Добрый день! Какие у вас тарифы и цены для оптовой базы?",
    "Здравствуйте, интересует подключение интеграции с Kaspi, сколько стоит?",
    "Добрый день, сколько стоит перенос данных из 1С и сколько это займёт?",
    "Здравствуйте! Нужен учёт на трёх складах, какой тариф подойдёт и какая цена?",
    "Добрый день, есть ли пробный период? Интересует тариф Бизнес для сети магазинов.",
)


@dataclass
class Offer:
    """What the load generator did: when, and the wall time each message was injected."""

    rate: float
    seconds: float
    started: float  # wall clock (time.time()), comparable with PostgreSQL's now() on this machine
    ended: float = 0.0
    injected: dict[str, float] = field(default_factory=dict)  # sandbox message id -> answered at
    failures: int = 0

    @property
    def achieved_rate(self) -> float:
        span = max(self.ended - self.started, 1e-9)
        return len(self.injected) / span


def customer_message(prefix: str, index: int, text: str | None = None) -> dict[str, Any]:
    """A new customer (own chat) asking a business question, so the moderator takes them for a client."""
    return {
        "phone": f"{prefix}{index:07d}",
        "text": text or QUESTIONS[index % len(QUESTIONS)],
        "sender_name": f"Клиент {index}",
        "business_name": f"ТОО «Компания {index}»",
    }


async def offer_load(
    url: str,
    rate: float,
    seconds: float,
    make_message: Callable[[int], dict[str, Any]],
    on_injected: Callable[[dict[str, Any]], None] | None = None,
) -> Offer:
    """Injects `rate` customer messages per second for `seconds` into the sandbox, on schedule (open loop).
    What falls due within one TICK_S goes in one request: at 10 msg/s each message alone, at hundreds a
    second a few per request, so that the generator and the sandbox's request handling do not take the
    CPU the services are measured on (one request per message cost them a third of the machine at 200/s)."""
    total = int(rate * seconds)
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        offer = Offer(rate=rate, seconds=seconds, started=time.time())

        async def inject(indexes: range) -> None:
            batch = {"messages": [make_message(index) for index in indexes]}
            try:
                answer = await http.post("/sandbox/messages/batch", json=batch)
                answer.raise_for_status()
            except httpx.HTTPError:
                offer.failures += len(indexes)
                return
            finally:
                slots.release()
            at = time.time()
            for message in answer.json()["messages"]:
                offer.injected[message["id"]] = at
                if on_injected is not None:
                    on_injected(message)

        started = time.monotonic()
        tasks = []
        offered = 0
        while offered < total:
            elapsed = time.monotonic() - started
            due = min(total, int(elapsed * rate) + 1)  # the messages whose time has come
            if due <= offered:
                await asyncio.sleep(offered / rate - elapsed)  # until the next one's time
                continue
            await slots.acquire()
            if time.monotonic() - started >= seconds:
                slots.release()
                break  # the generator fell behind: what was not offered in time is not offered at all
            tasks.append(asyncio.create_task(inject(range(offered, due))))
            offered = due
            await asyncio.sleep(TICK_S)  # what falls due meanwhile goes in the next request
        await asyncio.gather(*tasks)
        offer.ended = time.time()
    return offer


async def inject_all(url: str, messages: list[dict[str, Any]], concurrency: int = 32) -> dict[str, float]:
    """Injects messages as fast as the sandbox takes them; message id -> wall time it existed."""
    injected: dict[str, float] = {}
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def inject(message: dict[str, Any]) -> None:
            async with slots:
                answer = await http.post("/sandbox/messages", json=message)
                answer.raise_for_status()
                injected[answer.json()["id"]] = time.time()

        await asyncio.gather(*(inject(m) for m in messages))
    return injected


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; math.inf entries (never answered) sort last, as they should."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in MB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return {"rss_mb": round(values["VmRSS"], 1), "peak_mb": round(values["VmHWM"], 1)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_pids(system: System) -> dict[str, int]:
    pids = {name: service.process.pid for name, service in system.services.items()}
    return pids | {"sandbox": system.sandbox.pid}


def cpu_per_reply(before: dict[str, float], pids: dict[str, int], replies: int) -> dict[str, float]:
    """CPU milliseconds each process spent per reply since `before` (its cpu_seconds by name)."""
    return {
        name: round((cpu_seconds(pid) - before[name]) * 1000 / max(replies, 1), 1)
        for name, pid in pids.items()
    }


async def transactions(databases: list[str]) -> int:
    """Transactions committed or rolled back so far in these databases. A backend reports its counts when
    it ends (or about once a second while busy): read this after the clients have disconnected."""
    rows = await fetch(
        f"{PG}/postgres",
        "SELECT coalesce(sum(xact_commit + xact_rollback), 0)::bigint AS n FROM pg_stat_database "
        "WHERE datname = ANY($1::text[])",
        databases,
    )
    return rows[0]["n"]


def services_memory(system: System) -> dict[str, dict[str, float]]:
    return {name: memory_mb(service.process.pid) for name, service in system.services.items()}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def migrate(service: str, database: str, database_url: str) -> None:
    """A fresh database with the service's own alembic migrations (the schema and indexes it runs on)."""
    create_database(database)
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=ROOT / service,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )


def new_system() -> System:
    """The e2e harness's system (sandbox + both services, fresh databases and queues), logging here."""
    return System(log_dir=LOG_DIR)


def start_sandbox(port: int, log_path: Path) -> subprocess.Popen:
    LOG_DIR.mkdir(exist_ok=True)
    log = open(log_path, "ab")  # stays open: the sandbox writes to it for its whole life
    return subprocess.Popen(
        [str(PYTHON), "-m", "sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def gateway_times(database_url: str) -> tuple[dict[str, float], dict[str, float]]:
    """From a gateway-schema database: when each customer message was first seen (its incoming row), and
    when the reply to it was acknowledged by (fake) Wappi (the outgoing row's processed_at)."""
    seen = await fetch(
        database_url,
        "SELECT message_id, extract(epoch FROM created_at)::float8 AS at FROM message_logs "
        "WHERE direction = 'incoming'",
    )
    sent = await fetch(
        database_url,
        "SELECT reply_to_message_id AS message_id, extract(epoch FROM processed_at)::float8 AS at "
        "FROM message_logs WHERE direction = 'outgoing' AND queue_status = 'sent'",
    )
    return {r["message_id"]: r["at"] for r in seen}, {r["message_id"]: r["at"] for r in sent}


async def count_sent(database_url: str) -> int:
    rows = await fetch(
        database_url,
        "SELECT count(*) AS n FROM message_logs WHERE direction = 'outgoing' AND queue_status = 'sent'",
    )
    return rows[0]["n"]


async def wait_for_sent(database_url: str, expected: int, deadline: float) -> int:
    """Waits (wall-clock deadline) until `expected` replies went out; returns how many did."""
    while True:
        done = await count_sent(database_url)
        if done >= expected or time.time() >= deadline:
            return done
        await asyncio.sleep(0.5)


def summarize(offer: Offer, seen: dict[str, float], sent: dict[str, float]) -> dict[str, Any]:
    """Replies/s while the load lasted (after the warm-up), service latency from first seen to the reply
    reaching fake Wappi, and the polling wait from injection to first seen; never = math.inf."""
    ids = offer.injected
    window_start = offer.started + min(WARMUP_S, offer.seconds / 3)
    window_end = offer.started + offer.seconds
    in_window = sum(1 for m in ids if m in sent and window_start <= sent[m] <= window_end)
    latency = [(sent[m] - seen[m]) * 1000 if m in sent else math.inf for m in ids if m in seen]
    waits = [max(seen[m] - at, 0.0) * 1000 if m in seen else math.inf for m, at in ids.items()]
    return {
        "offered_per_s": offer.rate,
        "achieved_offered_per_s": round(offer.achieved_rate, 1),
        "injected": len(ids),
        "inject_failures": offer.failures,
        "seen": sum(1 for m in ids if m in seen),
        "answered": sum(1 for m in ids if m in sent),
        "replies_per_s": round(in_window / (window_end - window_start), 1),
        "latency_ms": {f"p{p}": percentile(latency, p / 100) for p in (50, 95, 99)},
        "polling_wait_ms": {f"p{p}": percentile(waits, p / 100) for p in (50, 95, 99)},
    }
