"""The poller: every POLLING_INTERVAL seconds, new customer messages from Wappi onto the queues.

"New" is decided by cursors in PostgreSQL: the first start records `first_start` (older messages are
history and are never forwarded); each chat keeps the time and id of the newest message seen, so only
chats with later activity are read, and only a person's chats (services/chat_rules.py): Status, channels,
groups and whitelisted numbers are not even read. The unique message_id in message_logs makes forwarding
(and counting skipped messages) exactly-once even when cursors overlap (times are whole seconds). One
replica polls at a time: the leader holds a PostgreSQL advisory lock on a dedicated connection.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from loguru import logger
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from config.database import SessionFactory
from config.queue import Publisher, QueueNames
from models.poll_state import FIRST_START, LAST_POLL, ChatCursor, PollState
from models.whitelist import whitelisted_numbers
from services.chat_rules import COUNTED_REASONS, OWN_MESSAGE, chat_skip_reason, message_verdict
from services.message_mapping import FUTURE_LIMIT, message_time, to_forward
from services.outbox import publish_pending_rows
from services.poll_records import (
    CycleFindings,
    Skip,
    record_operator_messages,
    record_skipped,
    save_cursors,
    store_forwards,
)
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import Chat, WappiMessage
from utils.helpers import from_unix
from utils.metrics import GatewayMetrics

Clock = Callable[[], datetime]
POLLER_LOCK_KEY = 7_310_452_001  # pg_advisory_lock key of the poller lease
CHATS_HIGH_WATER = "chats_high_water"  # newest chat activity fully processed by a completed cycle
CHAT_PAGE = 100
MAX_CHAT_PAGES = 10  # how deep the late-arrival band below the high water is read
MAX_NEW_CHAT_PAGES = 100  # a bound on a cycle's paging even through new activity
MESSAGE_PAGE = 50
MAX_MESSAGE_PAGES = 4
READ_CONCURRENCY = 8  # chats read from Wappi at once in a cycle
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


async def _recent_chats(wappi: WappiClient, newer_than: int, floor: int) -> list[Chat]:
    """Chats newest first: every page holding activity after `newer_than` (a burst of new chats must not
    push older new ones out of reach), then on down to `floor` (unix seconds) within MAX_CHAT_PAGES."""
    chats: list[Chat] = []
    for page in range(MAX_NEW_CHAT_PAGES):
        batch = await wappi.list_chats(limit=CHAT_PAGE, offset=page * CHAT_PAGE)
        chats.extend(batch)
        oldest = min((c.last_time for c in batch if c.last_time is not None), default=None)
        if len(batch) < CHAT_PAGE or (oldest is not None and oldest < floor):
            return chats
        if page + 1 >= MAX_CHAT_PAGES and (oldest is None or oldest < newer_than):
            return chats
    logger.warning("More than {} chats active since the last cycle: reading the newest only", len(chats))
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


def _sort_chat(
    findings: CycleFindings,
    deps: PollerDeps,
    chat: Chat,
    messages: list[WappiMessage],
    whitelist: set[str],
    now: datetime,
) -> None:
    """Sort one chat's new messages into forwards, skips and own messages; note its new cursor."""
    for message in messages:
        verdict = message_verdict(message, chat.id, whitelist)
        if verdict.reason is None:
            findings.forwards.append(to_forward(message, verdict.chat_id, verdict.phone, deps.tz, now))
        elif verdict.reason == OWN_MESSAGE:
            findings.own.append((message, verdict.chat_id, verdict.phone))
        else:
            logger.debug("Skipping message {} in {}: {}", message.id, chat.id, verdict.reason)
            if verdict.reason in COUNTED_REASONS and not message.is_me:
                skip = Skip(message.id, chat.id, verdict.reason, message.type, message_time(message, now))
                findings.skipped.append(skip)
    newest = messages[-1]
    findings.cursors[chat.id] = (int(message_time(newest, now).timestamp()), newest.id)


def _skipped_chat_news(chat: Chat, reason: str, first_start: int) -> Skip | None:
    """A chat that is not read still has its newest message counted as skipped (the chat list names it),
    unless it is history or the business's own."""
    if chat.last_message_id is None or chat.last_message_is_me:
        return None
    if chat.last_time is None or chat.last_time < first_start:
        return None
    return Skip(chat.last_message_id, chat.id, reason, None, from_unix(chat.last_time))


async def _read_chats(deps: PollerDeps, work: list[tuple[Chat, int]], now: datetime) -> list:
    """Each chat's new messages (oldest first), or the exception reading it raised."""
    slots = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(chat: Chat, since: int) -> list[WappiMessage]:
        async with slots:
            return await _messages_since(deps.wappi, chat.id, since, now)

    return await asyncio.gather(*(read(chat, since) for chat, since in work), return_exceptions=True)


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


async def poll_once(deps: PollerDeps) -> int:
    """One polling cycle; returns how many chats had new activity."""
    now = deps.clock()
    first_start = int((await ensure_first_start(deps.sessions, now)).timestamp())
    async with deps.sessions() as session:
        whitelist = await whitelisted_numbers(session)
        high_water = await _state(session, CHATS_HIGH_WATER)
    newer_than = first_start if high_water is None else max(int(high_water.timestamp()), first_start)
    floor = first_start if high_water is None else int((high_water - LATE_ARRIVAL).timestamp())
    listed = await _recent_chats(deps.wappi, newer_than, max(floor, first_start))
    horizon = int((now + FUTURE_LIMIT).timestamp())
    findings = CycleFindings()
    chats: dict[str, Chat] = {}  # by id: a chat that moved up while paging is listed twice
    for c in listed:
        if c.id in chats:
            continue
        reason = chat_skip_reason(c.id, c.chat_type, whitelist)
        if reason is not None:
            if (skip := _skipped_chat_news(c, reason, first_start)) is not None:
                findings.skipped.append(skip)
            continue
        chats[c.id] = c if c.last_time is None or c.last_time <= horizon else replace(c, last_time=None)
    async with deps.sessions() as session:
        found = await session.scalars(select(ChatCursor).where(ChatCursor.chat_id.in_(list(chats))))
        cursors = {c.chat_id: c for c in found.all()}

    # Oldest activity first: messages reach the agent in the order written.
    work = []
    for chat in reversed(list(chats.values())):
        since = _read_from(chat, cursors.get(chat.id), first_start)
        if since is not None:
            work.append((chat, since))

    unread_left = False  # a chat to read again next cycle: the high water must not pass it
    outage: WappiError | None = None
    for (chat, since), read in zip(work, await _read_chats(deps, work, now), strict=True):
        if isinstance(read, WappiError) and read.transient and read.status != 200:
            outage = read  # Wappi itself is failing: the cycle is tried again later
            continue
        if isinstance(read, OperationalError | InterfaceError):
            raise read  # the database is gone: nothing else will work either
        if isinstance(read, WappiError):
            # One unreadable chat must not stop polling for everybody else; its cursor stays put.
            logger.warning("Skipping chat {} this cycle: {}", chat.id, read)
            unread_left = unread_left or read.transient
        elif isinstance(read, BaseException):
            logger.opt(exception=read).error("Skipping chat {} this cycle: {}", chat.id, read)
            unread_left = True
        elif read:
            _sort_chat(findings, deps, chat, read, whitelist, now)
        elif chat.last_time is not None:
            findings.cursors[chat.id] = (max(chat.last_time, since), chat.last_message_id)

    # One transaction for the cycle's rows and cursors: each row is written before it is published.
    async with deps.sessions() as session, session.begin():
        await record_operator_messages(session, findings.own, now)
        await record_skipped(session, deps.metrics, findings.skipped)
        new_ids = await store_forwards(session, deps.metrics, findings.forwards)
        await save_cursors(session, findings.cursors)
        if outage is None:
            newest = max((c.last_time for c in chats.values() if c.last_time is not None), default=None)
            if newest is not None and not unread_left:
                await _set_state(session, CHATS_HIGH_WATER, from_unix(newest))
            await _set_state(session, LAST_POLL, deps.clock())
    # A row whose publish fails stays pending: the outbox loop publishes it once the broker is back.
    await publish_pending_rows(deps.sessions, deps.publisher, deps.queues, new_ids, clock=deps.clock)
    if outage is not None:
        raise outage
    return len(work)


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
