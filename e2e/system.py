"""The whole product on this machine: sandbox, whatsapp-gateway and ai-agent-service as real processes,
each service with a fresh database and the queues under names of its own, so runs never meet.

A system runs at a moment of its own: every process gets the same CLOCK_OFFSET_SECONDS, so a test that
depends on the hour, the weekday or the date says which moment it runs at instead of taking the machine's.
`E2E_CLOCK` (ISO 8601) sets the moment of the systems that do not choose one.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
PG = os.environ.get("E2E_PG_URL", "postgresql://postgres@127.0.0.1:5432")
RABBITMQ_URL = os.environ.get("E2E_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_KEY = "e2e-admin-key"
SERVICES = ("whatsapp-gateway", "ai-agent-service")
# The company the sample knowledge base (ai-agent-service/knowledge_base) describes; a system with a knowledge
# base of its own sets BUSINESS_NAME too.
SAMPLE_BUSINESS = "ТОО «СкладПро»"


def default_moment() -> datetime | None:
    """The moment E2E_CLOCK names, or None for the machine's own time."""
    value = os.environ.get("E2E_CLOCK")
    return datetime.fromisoformat(value) if value else None


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on and that this process has not handed out yet: the port is released before
    its service binds it, so two services started together could otherwise be given the same one."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_http(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {seconds}s")


@dataclass
class Service:
    name: str
    port: int
    database: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"{PG}/{self.database}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(PYTHON), "app.py"], cwd=ROOT / self.name, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_http(f"{self.url}/health", 60, self.process)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class System:
    # The moment the system's clocks show when it starts (None: the machine's time).
    moment: datetime | None = field(default_factory=default_moment)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    sandbox_port: int = field(default_factory=free_port)
    services: dict[str, Service] = field(default_factory=dict)
    sandbox: subprocess.Popen | None = None
    log_dir: Path = field(default_factory=lambda: ROOT / "e2e" / "logs")

    clock_offset: float = 0.0

    def now(self) -> datetime:
        """What the system's clocks show now."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def queues(self) -> dict[str, str]:
        return {
            "QUEUE_INCOMING_MESSAGES": f"incoming_messages_e2e_{self.suffix}",
            "QUEUE_OUTGOING_MESSAGES": f"outgoing_messages_e2e_{self.suffix}",
            "QUEUE_VOICE_TRANSCRIPTION": f"voice_transcription_e2e_{self.suffix}",
            "QUEUE_CONTACT_ERASURES": f"contact_erasures_e2e_{self.suffix}",
        }

    def start(self, extra_env: dict[str, dict[str, str]] | None = None) -> None:
        """Starts the sandbox, then both services with `extra_env` per service ("{sandbox}" in a value is
        the sandbox's URL, "{gateway}" the gateway's)."""
        self.log_dir.mkdir(exist_ok=True)
        if self.moment is not None:
            self.clock_offset = (self.moment - datetime.now(UTC)).total_seconds()
        offset = {"CLOCK_OFFSET_SECONDS": str(self.clock_offset)}
        sandbox_log = (self.log_dir / f"sandbox_{self.suffix}.log").open("ab")
        self.sandbox = subprocess.Popen(
            [str(PYTHON), "-m", "sandbox", "--port", str(self.sandbox_port)],
            env={**os.environ, **offset},
            cwd=ROOT,
            stdout=sandbox_log,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.sandbox_url}/sandbox/health", 30, self.sandbox)
        common = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # A worktree's own service_kit checkout, when PYTHONPATH points at one.
            **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
            "RABBITMQ_URL": RABBITMQ_URL,
            "ADMIN_API_KEY": ADMIN_KEY,
            "GEMINI_API_KEY": "e2e-gemini-key",
            "GEMINI_BASE_URL": self.sandbox_url,
            "LOG_LEVEL": "INFO",
            **offset,
            **self.queues,
        }
        own = {
            "whatsapp-gateway": {
                "WAPPI_BASE_URL": self.sandbox_url,
                "WAPPI_TOKEN": "e2e-wappi-token",
                "WAPPI_PROFILE_ID": "e2e-profile",
                "POLLING_INTERVAL": "0.5",
            },
            # The schedulers look every second, so a touch or a reminder made due is sent at once.
            "ai-agent-service": {
                "BUSINESS_NAME": SAMPLE_BUSINESS,
                "MALLOC_ARENA_MAX": "2",  # as its Dockerfile sets it
                "FOLLOW_UP_CHECK_INTERVAL_SECONDS": "1",
                "CALENDAR_CHECK_INTERVAL_SECONDS": "1",
            },
        }
        for name in SERVICES:
            database = f"{name.split('-')[0]}_e2e_{self.suffix}"
            port = free_port()
            addresses = {"{sandbox}": self.sandbox_url, "{gateway}": f"http://127.0.0.1:{port}"}
            if "whatsapp-gateway" in self.services:
                addresses["{gateway}"] = self.gateway.url
            extra = {k: _filled(v, addresses) for k, v in (extra_env or {}).get(name, {}).items()}
            env = common | own[name] | extra
            service = Service(name, port, database, env, self.log_dir / f"{name}_{self.suffix}.log")
            service.env |= {"PORT": str(service.port), "DATABASE_URL": service.database_url}
            create_database(database)
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
                cwd=ROOT / name,
                env=service.env,
                check=True,
                capture_output=True,
            )
            self.services[name] = service
        for service in self.services.values():
            service.start()

    @property
    def gateway(self) -> Service:
        return self.services["whatsapp-gateway"]

    @property
    def agent(self) -> Service:
        return self.services["ai-agent-service"]

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        if self.sandbox is not None:
            self.sandbox.terminate()
            self.sandbox.wait(timeout=10)
        for service in self.services.values():
            drop_database(service.database)
        asyncio.run(delete_queues(list(self.queues.values())))


def _filled(value: str, addresses: dict[str, str]) -> str:
    for placeholder, address in addresses.items():
        value = value.replace(placeholder, address)
    return value


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True, capture_output=True)


def create_database(name: str) -> None:
    psql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def delete_queues(names: list[str]) -> None:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        for name in names:
            for queue in (name, f"{name}.dlq", f"{name}.retry"):
                channel = await connection.channel()
                await channel.queue_delete(queue)
                await channel.close()
            channel = await connection.channel()
            await channel.exchange_delete(f"{name}.dlx")
            await channel.close()


class Sandbox:
    """The customer's side of WhatsApp, through the sandbox's admin API."""

    def __init__(self, url: str):
        self.http = httpx.AsyncClient(base_url=url, timeout=10)

    async def write(self, phone: str | None, text: str = "", **fields) -> dict:
        answer = await self.http.post("/sandbox/messages", json={"phone": phone, "text": text, **fields})
        answer.raise_for_status()
        return answer.json()

    async def sent_to(self, phone: str) -> list[dict]:
        answer = await self.http.get("/sandbox/sent")
        answer.raise_for_status()
        return [m for m in answer.json()["messages"] if m["recipient"] == phone]

    async def script(self, when: str, answer: dict, *, job: str = "sales", count: int | None = 1) -> None:
        """The fake model answers `answer` when the client's message contains `when`."""
        body = {"job": job, "when": when, "answer": answer, "count": count}
        (await self.http.post("/sandbox/gemini/scripts", json=body)).raise_for_status()

    async def prompts(self, job: str) -> list[str]:
        """The prompts the fake model was sent for `job`, oldest first."""
        answer = await self.http.get("/sandbox/gemini/prompts", params={"job": job})
        return [p["prompt"] for p in answer.json()["prompts"]]

    async def fault(self, **fault) -> None:
        (await self.http.post("/sandbox/faults", json=fault)).raise_for_status()

    async def read_ids(self) -> set[str]:
        answer = await self.http.get("/sandbox/read")
        return set(answer.json()["message_ids"])

    async def wait_sent_to(self, phone: str, count: int, seconds: float = 30) -> list[dict]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = await self.sent_to(phone)
            if len(sent) >= count:
                return sent
            await asyncio.sleep(0.3)
        raise AssertionError(f"{phone} got {len(await self.sent_to(phone))} messages, expected {count}")


async def fetch(database_url: str, sql: str, *args) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


async def move_conversation_back(database_url: str, phone: str, *, hours: int) -> None:
    """As if the agent's conversation with `phone` had happened `hours` ago: the client now looks silent."""
    await fetch(
        database_url,
        "UPDATE messages SET timestamp = timestamp - make_interval(hours => $2) WHERE phone_number = $1",
        phone,
        hours,
    )


async def follow_ups_of(database_url: str, phone: str, *, wait_seconds: float = 15) -> list[asyncpg.Record]:
    """The contact's follow-up chains, waiting up to `wait_seconds` for the scheduler to arm one."""
    sql = (
        "SELECT f.* FROM follow_ups f JOIN contacts c ON c.id = f.contact_id "
        "WHERE c.phone_number = $1 ORDER BY f.id"
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if rows := await fetch(database_url, sql, phone):
            return rows
        await asyncio.sleep(0.3)
    return await fetch(database_url, sql, phone)


if __name__ == "__main__":  # a quick manual look: python e2e/system.py
    system = System()
    system.start()
    print("sandbox", system.sandbox_url, {n: s.url for n, s in system.services.items()})
    try:
        signal.pause()
    finally:
        system.stop()
        sys.exit(0)
