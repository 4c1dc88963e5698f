"""Backpressure: the poller takes in no more than the agent can answer. While more than MAX_INCOMING_BACKLOG
messages wait, ready and unread by the agent, on incoming_messages, a poll cycle is skipped: the new
messages stay unread at Wappi, where the next cycle finds them (cursors move only when a cycle runs), so
nothing is lost and latency grows instead of the whole pipeline slowing down under work it cannot finish.
Webhook pushes are stored as they come (Wappi must get its 200): only polling holds back."""

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

    async def hold_back(self) -> bool:
        """Whether the poller skips this cycle: the agent has more waiting than max_backlog."""
        try:
            waiting = (await queue_sizes(self.connection, [self.incoming]))[self.incoming.name]
        except Exception as exc:
            # When in doubt, poll: a broker that is gone keeps the rows in the outbox until it is back.
            logger.debug("Incoming backlog unknown, polling: {}", exc)
            return False
        holding = waiting > self.max_backlog
        if holding != self.holding:
            if holding:
                logger.info("{} messages wait for the agent: polling paused until fewer do", waiting)
            else:
                logger.info("Incoming backlog down to {}: polling resumed", waiting)
            self.holding = holding
        return holding
