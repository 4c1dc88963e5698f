"""The poller: every POLLING_INTERVAL seconds, new customer messages from Wappi onto the queues.

"New" is decided by cursors in PostgreSQL: the first start records `first_start` (older messages are
history and are never forwarded); each chat keeps the time and id of the newest message seen, so only
chats with later activity are read. The unique message_id in message_logs makes forwarding exactly-once
even when cursors overlap (times are whole seconds). One replica polls at a time: the leader holds a
PostgreSQL advisory lock on a dedicated connection.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from loguru import logger
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from config.database import SessionFactory
from config.queue import Publisher, QueueNames
from models.message_log import (
    INCOMING,
    NOT_QUEUED,
    OPERATOR,
    OUTGOING,
    PENDING,
    SENDING,
    UNCERTAIN,
    MessageLog,
)
from models.poll_state import FIRST_START, LAST_POLL, ChatCursor, PollState
from models.whitelist import whitelisted_numbers
from services.message_mapping import (
    FUTURE_LIMIT,
    Forward,
    customer_phone,
    message_time,
    skip_reason,
    to_forward,
)
from services.outbox import publish_pending_row
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import Chat, WappiMessage
from utils.helpers import from_unix, is_group_chat_id, is_valid_phone, phone_from_chat_id
from utils.metrics import GatewayMetrics

Clock = Callable[[], datetime]
POLLER_LOCK_KEY = 7_310_452_001  # pg_advisory_lock key of the poller lease
CHATS_HIGH_WATER = "chats_high_water"  # newest chat activity fully processed by a completed cycle
CHAT_PAGE = 100
MAX_CHAT_PAGES = 10
MESSAGE_PAGE = 50
MAX_MESSAGE_PAGES = 4
# Messages can reach WhatsApp late with an earlier time; re-read chats this far below the high water.
LATE_ARRIVAL = timedelta(minutes=2)


@dataclass
class PollerDeps:
    wappi: WappiClient
    sessions: SessionFactory
    publisher: Publisher
    queues: QueueNames
    metrics: GatewayMetrics
    tz: ZoneInfo
    clock: Clock


async def _state(session, name: str) -> datetime | None:
    return await session.scalar(select(PollState.value).where(PollState.name == name))


async def _set_state(session, name: str, value: datetime) -> None:
    stmt = insert(PollState).values(name=name, value=value)
    await session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))


async def ensure_first_start(sessions: SessionFactory, now: datetime) -> datetime:
    """The global history cursor: set once, on the very first run, to now."""
    async with sessions() as session, session.begin():
        await session.execute(
            insert(PollState)
            .values(name=FIRST_START, value=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return await _state(session, FIRST_START)


async def _recent_chats(wappi: WappiClient, floor: int) -> list[Chat]:
    """Chats newest first, paging only until activity older than `floor` (unix seconds)."""
    chats: list[Chat] = []
    for page in range(MAX_CHAT_PAGES):
        batch = await wappi.list_chats(limit=CHAT_PAGE, offset=page * CHAT_PAGE)
        chats.extend(batch)
        oldest = min((c.last_time for c in batch if c.last_time is not None), default=None)
        if len(batch) < CHAT_PAGE or (oldest is not None and oldest < floor):
            break
    return chats


async def _messages_since(wappi: WappiClient, chat_id: str, since: int, now: datetime) -> list[WappiMessage]:
    """The chat's messages at or after `since`, oldest first."""
    found: list[WappiMessage] = []
    for page in range(MAX_MESSAGE_PAGES):
        batch = await wappi.get_messages(
            chat_id, limit=MESSAGE_PAGE, offset=page * MESSAGE_PAGE, order="desc"
        )
        found.extend(batch)
        if len(batch) < MESSAGE_PAGE or int(message_time(batch[-1], now).timestamp()) < since:
            break
    fresh = [m for m in reversed(found) if int(message_time(m, now).timestamp()) >= since]
    return sorted(
        fresh, key=lambda m: int(message_time(m, now).timestamp())
    )  # stable: same-second order kept


async def _sent_by_bot(session, message: WappiMessage, phone: str) -> bool:
    # While the sender has not yet stored the Wappi id (or never got it: a lost answer), its row with
    # the same text counts too.
    found = await session.scalar(
        select(MessageLog.id)
        .where(
            MessageLog.direction == OUTGOING,
            or_(
                MessageLog.wappi_message_id == message.id,
                (MessageLog.phone_number == phone)
                & (MessageLog.queue_status.in_([SENDING, UNCERTAIN]))
                & (MessageLog.message_text == (message.body or "")),
            ),
        )
        .limit(1)
    )
    return found is not None


async def _record_operator_message(deps: PollerDeps, message: WappiMessage, chat_id: str, phone: str) -> None:
    now = deps.clock()
    async with deps.sessions() as session, session.begin():
        if await _sent_by_bot(session, message, phone):
            return
        inserted = await session.scalar(
            insert(MessageLog)
            .values(
                message_id=message.id,
                chat_id=chat_id,
                phone_number=phone[:20] or None,
                direction=OPERATOR,
                message_type=message.type,
                message_text=message.body,
                queue_status=NOT_QUEUED,
                message_time=message_time(message, now),
            )
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(MessageLog.id)
        )
    if inserted is not None:
        logger.info(
            "Operator activity in chat {}: message {} typed on the business phone", chat_id, message.id
        )


async def _store_new(deps: PollerDeps, forwards: list[Forward]) -> list[int]:
    """Insert the rows (pending); the ones that already existed are not forwarded again."""
    new_ids = []
    async with deps.sessions() as session, session.begin():
        for fwd in forwards:
            row_id = await session.scalar(
                insert(MessageLog)
                .values(
                    message_id=fwd.message_id,
                    chat_id=fwd.chat_id,
                    phone_number=fwd.phone,
                    direction=INCOMING,
                    message_type=fwd.message_type,
                    message_text=fwd.text,
                    is_voice=fwd.is_voice,
                    queue_status=PENDING,
                    target_queue=fwd.target_queue,
                    payload=fwd.body,
                    message_time=fwd.sent_at,
                )
                .on_conflict_do_nothing(index_elements=["message_id"])
                .returning(MessageLog.id)
            )
            if row_id is not None:
                new_ids.append(row_id)
                deps.metrics.messages_received.labels(fwd.message_type).inc()
    return new_ids


async def _process_chat(
    deps: PollerDeps, chat: Chat, since: int, now: datetime
) -> tuple[int, str | None] | None:
    """Forward the chat's new customer messages; returns the chat's new cursor (time, id)."""
    messages = await _messages_since(deps.wappi, chat.id, since, now)
    if not messages:
        return None
    forwards = []
    for message in messages:
        reason = skip_reason(message, chat.id)
        phone = customer_phone(message, chat.id)
        if reason == "own message":
            await _record_operator_message(deps, message, chat.id, phone)
        elif reason is not None:
            logger.debug("Skipping message {} in {}: {}", message.id, chat.id, reason)
        elif not is_valid_phone(phone):
            logger.warning("Skipping message {} in {}: no customer phone number", message.id, chat.id)
        else:
            forwards.append(to_forward(message, chat.id, phone, deps.tz, now))
    for row_id in await _store_new(deps, forwards):
        try:
            await publish_pending_row(deps.sessions, deps.publisher, deps.queues, row_id, clock=deps.clock)
        except Exception as exc:
            # The row stays pending: the outbox loop publishes it once the broker is back.
            logger.warning("Publishing row {} failed, left to the outbox: {}", row_id, exc)
    newest = messages[-1]
    return int(message_time(newest, now).timestamp()), newest.id


def _read_from(chat: Chat, cursor: ChatCursor | None, first_start: int) -> int | None:
    """The time (unix s) from which the chat's messages are new, or None when nothing new happened."""
    if chat.last_time is not None and chat.last_time < first_start:
        return None  # untouched since before the first start: history
    if cursor is None:
        return first_start  # a chat first seen now: everything since the first start is new
    since = max(int(cursor.last_message_time.timestamp()), first_start)
    if chat.last_time is None or chat.last_time > since:
        return since
    # Times are whole seconds: a different newest message in the cursor's second is news too.
    if chat.last_time == since and chat.last_message_id not in (None, cursor.last_message_id):
        return since
    return None


async def _save_cursor(sessions: SessionFactory, chat_id: str, cursor: tuple[int, str | None]) -> None:
    values = {"last_message_time": from_unix(cursor[0]), "last_message_id": cursor[1]}
    async with sessions() as session, session.begin():
        await session.execute(
            insert(ChatCursor)
            .values(chat_id=chat_id, **values)
            .on_conflict_do_update(index_elements=["chat_id"], set_=values)
        )


async def poll_once(deps: PollerDeps) -> int:
    """One polling cycle; returns how many chats had new activity."""
    now = deps.clock()
    first_start = int((await ensure_first_start(deps.sessions, now)).timestamp())
    async with deps.sessions() as session:
        whitelist = await whitelisted_numbers(session)
        high_water = await _state(session, CHATS_HIGH_WATER)
    floor = first_start if high_water is None else int((high_water - LATE_ARRIVAL).timestamp())
    chats = await _recent_chats(deps.wappi, max(floor, first_start))
    horizon = int((now + FUTURE_LIMIT).timestamp())
    chats = [
        c if c.last_time is None or c.last_time <= horizon else replace(c, last_time=None)
        for c in chats
        if c.chat_type != "group" and not is_group_chat_id(c.id) and phone_from_chat_id(c.id) not in whitelist
    ]
    async with deps.sessions() as session:
        found = await session.scalars(select(ChatCursor).where(ChatCursor.chat_id.in_([c.id for c in chats])))
        cursors = {c.chat_id: c for c in found.all()}

    active = 0
    unread_left = False  # a chat to read again next cycle: the high water must not pass it
    for chat in reversed(chats):  # oldest activity first: messages reach the agent in the order written
        since = _read_from(chat, cursors.get(chat.id), first_start)
        if since is None:
            continue
        active += 1
        try:
            new_cursor = await _process_chat(deps, chat, since, now)
        except WappiError as exc:
            if exc.transient and exc.status != 200:
                raise  # Wappi itself is failing: the whole cycle is tried again later
            # One unreadable chat must not stop polling for everybody else; its cursor stays put.
            logger.warning("Skipping chat {} this cycle: {}", chat.id, exc)
            unread_left = unread_left or exc.transient
            continue
        except (OperationalError, InterfaceError):
            raise  # the database is gone: nothing else will work either
        except Exception as exc:
            logger.opt(exception=exc).error("Skipping chat {} this cycle: {}", chat.id, exc)
            unread_left = True
            continue
        if new_cursor is None and chat.last_time is not None:
            new_cursor = (max(chat.last_time, since), chat.last_message_id)
        if new_cursor is not None:
            await _save_cursor(deps.sessions, chat.id, new_cursor)

    async with deps.sessions() as session, session.begin():
        newest = max((c.last_time for c in chats if c.last_time is not None), default=None)
        if newest is not None and not unread_left:
            await _set_state(session, CHATS_HIGH_WATER, from_unix(newest))
        await _set_state(session, LAST_POLL, deps.clock())
    return active


async def last_poll_time(sessions: SessionFactory) -> datetime | None:
    async with sessions() as session:
        return await _state(session, LAST_POLL)


async def run_poller(
    deps: PollerDeps,
    *,
    lease_dsn: str,
    interval: float,
    heartbeat: Callable[[bool], None] = lambda leading: None,
) -> None:
    """Poll forever while holding the leader lease; other replicas wait for it.
    `heartbeat(True)` follows every cycle the leader completes (failed or not); `heartbeat(False)` says
    this replica is not polling, so it cannot be stalled."""
    failing = False
    while True:
        lease = None
        try:
            lease = await asyncpg.connect(lease_dsn)
            if not await lease.fetchval("SELECT pg_try_advisory_lock($1)", POLLER_LOCK_KEY):
                heartbeat(False)
                await asyncio.sleep(max(interval, 1.0))
                continue
            logger.info("Poller lease acquired: this replica polls Wappi every {}s", interval)
            heartbeat(True)
            while True:
                await lease.fetchval("SELECT 1")  # the lease dies with this connection
                try:
                    await poll_once(deps)
                    if failing:
                        logger.info("Polling recovered")
                    failing = False
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not failing:
                        logger.opt(exception=exc).error("Poll cycle failed: {}", exc)
                    failing = True
                heartbeat(True)
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            heartbeat(False)
            logger.warning("Poller lease lost or unavailable, retrying: {}", exc)
            await asyncio.sleep(max(interval, 1.0))
        finally:
            if lease is not None:
                lease.terminate()
