"""Start-up waits for the database and the broker: one line per attempt naming what is missing and where, the
delays growing, no password and no traceback; the wait ends when the real server comes within reach."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from itertools import islice

import pytest
from loguru import logger

from service_kit.startup import growing_delays, wait_for_broker, wait_for_database

PASSWORD = "start-up-secret-42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def forwarder(port: int, target_port: int) -> AsyncIterator[None]:
    """A server coming up on `port`: every connection is passed on to the real one on `target_port`."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


class LogLines(list[str]):
    """What the service logged, as "LEVEL message" lines, with a way to wait for more."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def write(self, message: object) -> None:
        self.append(str(message))
        self.grew.set()

    async def at_least(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self) < count:
                self.grew.clear()
                await self.grew.wait()


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    lines = LogLines()
    sink = logger.add(lines.write, format="{level} {message}\n{exception}")
    yield lines
    logger.remove(sink)


def test_the_delays_double_up_to_a_ceiling():
    assert list(islice(growing_delays(1, 30), 8)) == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize(
    ("wait", "url", "real_port", "named", "secret"),
    [
        (
            wait_for_database,
            f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:{{port}}/postgres",
            5432,
            "PostgreSQL",
            PASSWORD,
        ),
        (wait_for_broker, "amqp://guest:guest@127.0.0.1:{port}/", 5672, "RabbitMQ", "guest:guest"),
    ],
)
async def test_start_up_waits_with_one_line_per_attempt_until_the_server_answers(
    log_lines, wait, url, real_port, named, secret
):
    port = free_port()
    waiting = asyncio.create_task(wait(url.format(port=port), delays=growing_delays(0.05, 0.4)))

    await log_lines.at_least(3)
    async with forwarder(port, real_port):
        await asyncio.wait_for(waiting, 10)

    failures = [line for line in log_lines if line.startswith("WARNING")]
    assert len(failures) >= 3
    assert failures[0].startswith(f"WARNING {named} at 127.0.0.1:{port}/")
    assert "is not reachable (" in failures[0] and "Connect call failed" in failures[0]
    assert [line.rsplit("next try in ", 1)[1].strip() for line in failures[:3]] == [
        "0.05 s",
        "0.1 s",
        "0.2 s",
    ]
    assert (
        log_lines[-1].startswith(f"INFO {named} at 127.0.0.1:{port}/")
        and "is reachable after" in log_lines[-1]
    )
    assert not any(secret in line or "@" in line or "Traceback" in line for line in log_lines)


async def test_a_finite_wait_that_never_reaches_the_server_says_so():
    port = free_port()
    with pytest.raises(ConnectionError, match=f"PostgreSQL at 127.0.0.1:{port}/x is not reachable after 2"):
        await wait_for_database(f"postgresql+asyncpg://u@127.0.0.1:{port}/x", delays=[0.01, 0.01])
