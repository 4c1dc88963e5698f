"""What a poll and a webhook push share once a Wappi message is in hand: the verdict on it (forward it as the
client's or as the operator's, count it as skipped, or let it be), and the step of the caller's transaction
that stores the verdicts. A message id is stored once whichever path saw it first (message_logs.message_id
is unique), so a message both pushed and polled is forwarded once."""

from datetime import datetime
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from services.bot_echoes import without_bot_echoes
from services.chat_rules import COUNTED_REASONS, OWN_MESSAGE, message_verdict
from services.message_mapping import BY_OPERATOR, Forward, message_time, to_forward
from services.poll_records import Skip, record_skipped, store_forwards
from services.wappi_models import WappiMessage
from utils.metrics import GatewayMetrics


def sort_message(
    message: WappiMessage, chat_id: str, whitelist: set[str], tz: ZoneInfo, now: datetime
) -> Forward | Skip | None:
    """A forward (the client's, or the business's own: the operator's unless the store finds it is the
    bot's echo), a skip to count, or None for what is not counted (delivery ticks, service notices)."""
    verdict = message_verdict(message, chat_id, whitelist)
    if verdict.reason is None:
        return to_forward(message, verdict.chat_id, verdict.phone, tz, now)
    if verdict.reason == OWN_MESSAGE:
        return to_forward(message, verdict.chat_id, verdict.phone, tz, now, sender=BY_OPERATOR)
    logger.debug("Skipping message {} in {}: {}", message.id, chat_id, verdict.reason)
    if verdict.reason in COUNTED_REASONS and not message.is_me:
        return Skip(message.id, chat_id, verdict.reason, message.type, message_time(message, now))
    return None


async def store_messages(
    session: AsyncSession, metrics: GatewayMetrics, forwards: list[Forward], skipped: list[Skip]
) -> list[int]:
    """The skipped rows and the pending rows of the forwards (bot echoes left out), in the caller's
    transaction; returns the ids of the rows new here, for the outbox to relay after the commit."""
    await record_skipped(session, metrics, skipped)
    return await store_forwards(session, metrics, await without_bot_echoes(session, forwards))
