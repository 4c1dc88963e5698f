"""What a poll cycle writes, in the caller's one transaction: the rows of skipped messages, the pending rows
of the messages to forward, the client's and the operator's (the outbox publishes them after the commit),
and the chats' new cursors."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.message_log import INCOMING, NOT_QUEUED, OPERATOR, PENDING, SKIPPED, MessageLog
from models.poll_state import ChatCursor
from services.message_mapping import BY_OPERATOR, Forward
from services.wappi_client import WappiError
from utils.clock import from_unix
from utils.metrics import GatewayMetrics


@dataclass(frozen=True)
class Skip:
    """A message not forwarded, kept (without its text) so /stats can count it once per reason."""

    message_id: str
    chat_id: str
    reason: str
    message_type: str | None
    sent_at: datetime


@dataclass
class CycleFindings:
    """What a cycle's reads found, stored together in one transaction."""

    forwards: list[Forward] = field(default_factory=list)  # the operator's among them, bot echoes too
    skipped: list[Skip] = field(default_factory=list)
    cursors: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # chat id -> (time, id)
    outage: WappiError | None = None  # Wappi failing as a whole: state stays put, the cycle has failed
    unread_left: bool = False  # a chat to read again next cycle


async def record_skipped(session: AsyncSession, metrics: GatewayMetrics, skipped: list[Skip]) -> None:
    """One row per skipped message id: a message seen again (cursors overlap) is not counted twice."""
    if not skipped:
        return
    rows = [
        {
            "message_id": skip.message_id,
            "chat_id": skip.chat_id,
            "direction": SKIPPED,
            "skip_reason": skip.reason,
            "message_type": (skip.message_type or "")[:20] or None,
            "queue_status": NOT_QUEUED,
            "message_time": skip.sent_at,
        }
        for skip in skipped
    ]
    stmt = insert(MessageLog).on_conflict_do_nothing(index_elements=["message_id"])
    for (reason,) in await session.execute(stmt.returning(MessageLog.skip_reason), rows):
        metrics.messages_skipped.labels(reason).inc()


async def store_forwards(
    session: AsyncSession, metrics: GatewayMetrics, forwards: list[Forward]
) -> list[int]:
    """Insert the rows (pending); the ones that already existed are not forwarded again."""
    if not forwards:
        return []
    rows = [
        {
            "message_id": fwd.message_id,
            "chat_id": fwd.chat_id,
            "phone_number": fwd.phone,
            "direction": OPERATOR if fwd.sender == BY_OPERATOR else INCOMING,
            "message_type": fwd.message_type,
            "message_text": fwd.text,
            "is_voice": fwd.is_voice,
            "queue_status": PENDING,
            "target_queue": fwd.target_queue,
            "payload": fwd.body,
            "message_time": fwd.sent_at,
        }
        for fwd in forwards
    ]
    stmt = insert(MessageLog).on_conflict_do_nothing(index_elements=["message_id"])
    returning = stmt.returning(MessageLog.id, MessageLog.message_type, MessageLog.direction)
    inserted = (await session.execute(returning, rows)).all()
    for _, message_type, direction in inserted:
        counter = metrics.operator_messages if direction == OPERATOR else metrics.messages_received
        counter.labels(message_type).inc()
    return sorted(row_id for row_id, _, _ in inserted)  # ids follow the order written


async def save_cursors(session: AsyncSession, cursors: dict[str, tuple[int, str | None]]) -> None:
    if not cursors:
        return
    stmt = insert(ChatCursor)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["chat_id"],
            set_={
                "last_message_time": stmt.excluded.last_message_time,
                "last_message_id": stmt.excluded.last_message_id,
            },
        ),
        [
            {"chat_id": chat_id, "last_message_time": from_unix(at), "last_message_id": message_id}
            for chat_id, (at, message_id) in cursors.items()
        ],
    )
