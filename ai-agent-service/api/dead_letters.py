"""Operator tools for dead letters: POST /dead-letters/incoming_messages/replay puts parked incoming messages
back on their queue with a fresh retry budget (service_kit's replay)."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from api.deps import ApiKey, RuntimeDep
from service_kit.dead_letters import dead_letters_router
from service_kit.queues import Queue


def _replayable(runtime: RuntimeDep) -> dict[str, Queue]:
    # Only incoming messages are ours to replay; the other queues are consumed by the gateway.
    return {"incoming_messages": runtime.queues["incoming_messages"]}


def _connection(runtime: RuntimeDep) -> AbstractRobustConnection:
    return runtime.connection


router = dead_letters_router(_replayable, _connection, ApiKey)
