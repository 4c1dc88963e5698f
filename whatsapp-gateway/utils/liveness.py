"""Are this process's workers alive? The loops beat after each round, /health reads the verdict.

A loop is stalled when it has not completed a round for longer than its limit while it is active
(the poller only while it holds the leader lease); a loop whose task ended, or a consumer whose
channel closed, is stopped. Both are things a restart fixes, so /health answers 503 for them."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aio_pika.abc import AbstractChannel

OK = "ok"
IDLE = "idle"  # e.g. the poller of a replica that waits for the leader lease


@dataclass
class _Loop:
    task: asyncio.Task
    stall_after: float
    last_beat: datetime
    active: bool = True


class Liveness:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock
        self._loops: dict[str, _Loop] = {}
        self._consumers: dict[str, AbstractChannel] = {}

    def watch_loop(self, name: str, task: asyncio.Task, *, stall_after: float) -> None:
        self._loops[name] = _Loop(task=task, stall_after=stall_after, last_beat=self._clock())

    def beat(self, name: str, active: bool = True) -> None:
        loop = self._loops.get(name)
        if loop is not None:
            loop.last_beat, loop.active = self._clock(), active

    def watch_consumer(self, name: str, channel: AbstractChannel) -> None:
        self._consumers[name] = channel

    def report(self) -> dict[str, str]:
        """Each worker's state: "ok", "idle", or a phrase starting "stalled" or "stopped"."""
        now = self._clock()
        states = {name: self._loop_state(loop, now) for name, loop in self._loops.items()}
        for name, channel in self._consumers.items():
            states[name] = "stopped (channel closed)" if channel.is_closed else OK
        return states

    @staticmethod
    def _loop_state(loop: _Loop, now: datetime) -> str:
        if loop.task.done():
            # /health is open to anyone: the exception's type only (the log has the rest).
            failure = None if loop.task.cancelled() else loop.task.exception()
            return f"stopped ({type(failure).__name__})" if failure else "stopped"
        if not loop.active:
            return IDLE
        silent = (now - loop.last_beat).total_seconds()
        if silent > loop.stall_after:
            return f"stalled: no completed round for {silent:.0f} s (limit {loop.stall_after:.0f} s)"
        return OK


def is_alive(state: str) -> bool:
    return state in (OK, IDLE)
