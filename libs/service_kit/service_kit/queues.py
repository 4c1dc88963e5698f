"""The queues from their one description (contracts/queues.json) and their JSON Schema contracts.

Per queue Q: the spec's durable Q (dead-lettering to Q.dlx), the fanout exchange Q.dlx bound to Q.dlq, and
Q.retry whose messages return to Q after the retry delay. Both services declare the same arguments from the
same file: RabbitMQ refuses a second declaration with different ones (406 PRECONDITION_FAILED).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from jsonschema import Draft202012Validator, FormatChecker

DESCRIPTION_FILE = "queues.json"


@dataclass(frozen=True)
class Queue:
    """One queue: its contract name (as in contracts/), the name it has on this broker, and its limits."""

    contract: str
    name: str
    message_ttl_ms: int
    max_length: int
    retry_delay_ms: int

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    @property
    def dlx(self) -> str:
        return f"{self.name}.dlx"

    @property
    def retry(self) -> str:
        return f"{self.name}.retry"


class Contract:
    """A contract's JSON Schema (Draft 2020-12, formats checked)."""

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        self._validator = Draft202012Validator(schema, format_checker=FormatChecker())

    def errors(self, body: Any) -> list[str]:
        """Readable violations, by path; [] when the body fits."""
        found = sorted(self._validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in found]


@dataclass(frozen=True)
class Queues:
    """Every queue of the system, by contract name, with its contract."""

    by_contract: Mapping[str, Queue]
    contracts: Mapping[str, Contract]

    @classmethod
    def load(cls, contracts_dir: Path, names: Mapping[str, str] | None = None) -> Queues:
        """The description in `contracts_dir`; `names` renames queues (settings may, e.g. per test run)."""
        description = json.loads((contracts_dir / DESCRIPTION_FILE).read_text(encoding="utf-8"))
        retry_delay_ms = int(description["retry_delay_ms"])
        queues, contracts = {}, {}
        for contract, spec in description["queues"].items():
            queues[contract] = Queue(
                contract=contract,
                name=(names or {}).get(contract) or contract,
                message_ttl_ms=int(spec["message_ttl_ms"]),
                max_length=int(spec["max_length"]),
                retry_delay_ms=retry_delay_ms,
            )
            schema = json.loads((contracts_dir / spec["schema"]).read_text(encoding="utf-8"))
            contracts[contract] = Contract(schema)
        return cls(queues, contracts)

    def __getitem__(self, contract: str) -> Queue:
        return self.by_contract[contract]

    def names(self) -> list[str]:
        """Every real name, the dead-letter and retry queues included."""
        return [name for q in self.by_contract.values() for name in (q.name, q.dlq, q.retry)]


async def declare_topology(channel: AbstractChannel, queues: Iterable[Queue]) -> None:
    """Declares Q, Q.dlx, Q.dlq and Q.retry for each queue; declaring again is a no-op."""
    for queue in queues:
        dlx = await channel.declare_exchange(queue.dlx, aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await channel.declare_queue(queue.dlq, durable=True)
        await dlq.bind(dlx, routing_key="")
        await channel.declare_queue(
            queue.retry,
            durable=True,
            arguments={
                "x-message-ttl": queue.retry_delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue.name,
            },
        )
        await channel.declare_queue(
            queue.name,
            durable=True,
            arguments={
                "x-message-ttl": queue.message_ttl_ms,
                "x-max-length": queue.max_length,
                "x-dead-letter-exchange": queue.dlx,
            },
        )


async def queue_sizes(connection: AbstractRobustConnection, queues: Iterable[Queue]) -> dict[str, int]:
    """Ready messages per queue and its DLQ, by real name (a throwaway channel: a missing queue closes it)."""
    channel = await connection.channel()
    try:
        sizes = {}
        for queue in queues:
            for name in (queue.name, queue.dlq):
                declared = await channel.declare_queue(name, passive=True)
                sizes[name] = declared.declaration_result.message_count or 0
        return sizes
    finally:
        await channel.close()
