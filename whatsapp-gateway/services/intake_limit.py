"""Backpressure: the poller takes in no more than the agent can answer. While more than MAX_INCOMING_BACKLOG
messages wait, ready and unread by the agent, on incoming_messages, a poll cycle is skipped; otherwise a
cycle reads at most as many chats with news as the backlog has room for, oldest news first. What is not read
stays unread at Wappi, where a later cycle finds it (a chat's cursor moves only when it is read), so nothing
is lost: latency grows, and the CPU goes to answering what was taken in, not to taking in what cannot be
answered yet. Webhook pushes are stored as they come (Wappi must get its 200): only polling holds back."""

from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from loguru import logger

from service_kit.queues import Queue, queue_sizes


@dataclass
class IntakeLimit:
    connection: AbstractRobustConnection
    incoming: Queue
    max_backlog: int  # MAX_INCOMING_BACKLOG
    holding: bool = False  # whether the last check held the poller back (logged on each change only)

    async def room(self, behind: bool = False) -> int | None:
        """How many chats with news the next cycle may read: 0 skips it; None when the broker cannot say.
        While the poller is `behind` (its last cycle left chats unread), a cycle waits until half the backlog
        is free: each one lists every chat with news again, so it must take in a good share of them."""
        try:
            waiting = (await queue_sizes(self.connection, [self.incoming]))[self.incoming.name]
        except Exception as exc:
            # When in doubt, poll: a broker that is gone keeps the rows in the outbox until it is back.
            logger.debug("Incoming backlog unknown, polling: {}", exc)
            return None
        holding = waiting > self.max_backlog
        if holding != self.holding:
            if holding:
                logger.info("{} messages wait for the agent: polling paused until fewer do", waiting)
            else:
                logger.info("Incoming backlog down to {}: polling resumed", waiting)
            self.holding = holding
        room = 0 if holding else max(self.max_backlog - waiting, 1)
        return 0 if behind and room < self.max_backlog // 2 else room
