"""Are this process's workers alive? The loops beat after each round, /health reads the verdict.

A loop is stalled when it has not completed a round for longer than its limit while it is active (a poller
only while it holds the leader lease); a loop whose task ended, or a consumer whose channel closed, is
stopped. Both are things a restart fixes, so /health answers 503 for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from loguru import logger

# How long stopping waits for a cancelled loop before cancelling it again.
RECANCEL_AFTER_S = 0.5

OK = "ok"
IDLE = "idle"  # e.g. the poller of a replica that waits for the leader lease


class Consuming(Protocol):
    @property
    def running(self) -> bool: ...


@dataclass
class _Loop:
    task: asyncio.Task
    stall_after: float
    last_beat: datetime
    active: bool = True


@dataclass
class Liveness:
    clock: Callable[[], datetime]
    _loops: dict[str, _Loop] = field(default_factory=dict)
    _consumers: dict[str, Consuming] = field(default_factory=dict)

    def start_loop(self, name: str, loop: Coroutine[Any, Any, None], *, stall_after: float) -> asyncio.Task:
        """Runs a worker loop as a task watched under `name`; its death is logged loudly."""
        task = asyncio.create_task(loop, name=name)
        task.add_done_callback(_report_end)
        self._loops[name] = _Loop(task=task, stall_after=stall_after, last_beat=self.clock())
        return task

    def beat(self, name: str, active: bool = True) -> None:
        loop = self._loops.get(name)
        if loop is not None:
            loop.last_beat, loop.active = self.clock(), active

    def watch_consumer(self, name: str, consumer: Consuming) -> None:
        self._consumers[name] = consumer

    async def stop_loops(self) -> None:
        """Cancels every worker loop and waits for them to end. The cancel is repeated while a loop runs on: a
        library may turn a cancel into an error of its own (seen with aio-pika), which the loop's
        `except Exception` then survives, sleeping towards its next round."""
        tasks = [loop.task for loop in self._loops.values()]
        while running := [task for task in tasks if not task.done()]:
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=RECANCEL_AFTER_S)

    def report(self) -> dict[str, str]:
        """Each worker's state: "ok", "idle", or a phrase starting "stalled" or "stopped"."""
        now = self.clock()
        states = {name: _loop_state(loop, now) for name, loop in self._loops.items()}
        for name, consumer in self._consumers.items():
            states[name] = OK if consumer.running else "stopped (channel closed)"
        return states

    def all_alive(self) -> bool:
        return all(state in (OK, IDLE) for state in self.report().values())


async def run_every(
    interval_s: float,
    one_round: Callable[[], Awaitable[object]],
    *,
    what: str,
    heartbeat: Callable[[], None] = lambda: None,
    wait_first: bool = False,
) -> None:
    """The body of a worker loop: `one_round` every `interval_s`, forever, `heartbeat` after each. A failed
    round is logged and the next one tried; a cancel always ends the loop."""
    while True:
        if wait_first:
            await asyncio.sleep(interval_s)
        try:
            await one_round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("{} failed, next in {}s: {}", what, interval_s, exc)
        heartbeat()
        if not wait_first:
            await asyncio.sleep(interval_s)


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


def _report_end(task: asyncio.Task) -> None:
    # The loops never return on their own: an end that is not a shutdown is a bug worth a loud line.
    if not task.cancelled() and task.exception() is not None:
        logger.opt(exception=task.exception()).critical("Worker {} died; /health says 503", task.get_name())
