"""How often the poller reads Wappi in webhook mode. While pushes arrive, polling is only the safety net for
a push that was lost, and a cycle runs every WAPPI_WEBHOOK_POLL_INTERVAL; once no push has come for that
long (webhooks broken, or just a quiet hour), it is back to every POLLING_INTERVAL. The last push's time is
read from poll_state: any replica may receive a push, and one of them polls."""

from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from config.database import SessionFactory
from models.poll_state import LAST_WEBHOOK, read_state
from service_kit.clock import Clock


def cycle_due(now: datetime, last_cycle: datetime | None, last_push: datetime | None, slow: float) -> bool:
    """Whether the poller, woken every POLLING_INTERVAL, runs a cycle now."""
    pushes_flow = last_push is not None and (now - last_push).total_seconds() < slow
    return not pushes_flow or last_cycle is None or (now - last_cycle).total_seconds() >= slow


@dataclass(frozen=True)
class PollPace:
    sessions: SessionFactory
    clock: Clock
    with_pushes: float  # WAPPI_WEBHOOK_POLL_INTERVAL: seconds between cycles while pushes arrive

    async def cycle_due(self, last_cycle: datetime | None) -> bool:
        try:
            async with self.sessions() as session:
                last_push = await read_state(session, LAST_WEBHOOK)
        except Exception as exc:
            # When in doubt, poll: the cycle meets the same trouble and reports it.
            logger.debug("Poll pace unknown, polling: {}", exc)
            return True
        return cycle_due(self.clock(), last_cycle, last_push, self.with_pushes)
