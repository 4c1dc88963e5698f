"""Work slots: how many message handlers use the CPU at once (database reads and writes, building prompts and
Gemini requests, the code's checks, publishing), the handler that arrived first going first.

Hundreds of messages are in flight while Gemini answers. Were they all also at the CPU at once, a burst would
share it among all of them and every reply would come late together. A few slots bound that work, and a freed
slot goes to the waiting handler with the oldest ticket: a message whose Gemini answer is back commits before
newer messages are even stored, so replies come out in about arrival order and throughput holds past capacity.

A handler gives its slot back for every wait that can take long: Gemini's answer and its retry back-off
(`slot_given_back`, used by the Gemini client), and another handler's turn on the same contact (it waits for
the contact's lock outside any slot). So a slot holder only ever waits for the database or the broker, never
for another handler, and slots cannot deadlock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

DEFAULT_CPU_SLOTS = 6


@dataclass
class _Hold:
    slots: WorkSlots
    ticket: int
    held: bool = True


# The slot the current task holds, if any: what slot_given_back gives back.
_current: ContextVar[_Hold | None] = ContextVar("work_slot", default=None)


class WorkSlots:
    def __init__(self, size: int):
        self.size = size
        self._free = size
        # Handlers waiting for a slot: (ticket, future), the oldest ticket on top. Tickets are unique, and a
        # handler waits for one slot at a time, so no two entries compare equal.
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()

    def ticket(self) -> int:
        """A handler's place in line, taken once when its message arrives and kept for all its work."""
        return next(self._tickets)

    @property
    def in_use(self) -> int:
        return self.size - self._free

    @asynccontextmanager
    async def slot(self, ticket: int) -> AsyncIterator[None]:
        await self._acquire(ticket)
        hold = _Hold(self, ticket)
        token = _current.set(hold)
        try:
            yield
        finally:
            _current.reset(token)
            if hold.held:
                self._release()

    async def _acquire(self, ticket: int) -> None:
        if self._free > 0:  # then nobody waits: a freed slot goes to a waiter before it counts as free
            self._free -= 1
            return
        granted = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (ticket, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # handed a slot just as the handler was cancelled: pass it on
            # Otherwise the cancelled future stays in the heap and _release skips it.
            raise

    def _release(self) -> None:
        # The slot passes straight to the oldest waiter, so a newcomer cannot take it in between.
        while self._waiting:
            _, granted = heapq.heappop(self._waiting)
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1


@asynccontextmanager
async def slot_given_back() -> AsyncIterator[None]:
    """Around a wait: the current task's slot (if it holds one) serves another handler meanwhile and is taken
    back, in the task's turn, when the wait ends, however it ends."""
    hold = _current.get()
    if hold is None or not hold.held:
        yield
        return
    hold.held = False
    hold.slots._release()
    try:
        yield
    finally:
        await hold.slots._acquire(hold.ticket)
        hold.held = True
