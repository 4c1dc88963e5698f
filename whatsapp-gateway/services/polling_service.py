"""The poller: every POLLING_INTERVAL seconds, new messages in clients' chats from Wappi onto the queues: the
client's, and the ones the owner or a manager typed on the business phone (the operator's; the bot's own
echoes are told apart by services/bot_echoes.py and never forwarded).

"New" is decided by cursors in PostgreSQL: the first start records `first_start` (older messages are
history and are never forwarded); each chat keeps the time and id of the newest message seen, so only
chats with later activity are read, and only a person's chats (services/chat_rules.py): Status, channels,
groups and whitelisted numbers are not even read. The unique message_id in message_logs makes forwarding
(and counting skipped messages) exactly-once even when cursors overlap (times are whole seconds). One
replica polls at a time: the one holding the leader lease (services/leader_lease.py).

A cycle is list (which chats have news) -> read (their new messages from Wappi, no transaction open) ->
commit (rows, cursors and state in one transaction, then the new rows relayed to their queues).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from config.database import SessionFactory
from models.poll_state import LAST_POLL, ChatCursor, ensure_first_start, read_state, write_state
from models.whitelist import whitelisted_numbers
from service_kit.clock import Clock
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from services.chat_rules import chat_skip_reason
from services.ingest import sort_message, store_messages
from services.intake_limit import IntakeLimit
from services.leader_lease import LeaderLease
from services.message_mapping import FUTURE_LIMIT, Forward, message_time
from services.outbox import MessageLogOutbox
from services.poll_pace import PollPace
from services.poll_records import CycleFindings, Skip, save_cursors
from services.wappi_client import WappiClient, WappiError
from services.wappi_models import Chat, WappiMessage
from utils.clock import from_unix
from utils.metrics import GatewayMetrics

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
    outbox: MessageLogOutbox
    metrics: GatewayMetrics
    tz: ZoneInfo
    clock: Clock


@dataclass
class ChatList:
    """What the list step found: the person chats listed and which of them have news, since when."""

    whitelist: set[str]
    chats: dict[str, Chat] = field(default_factory=dict)  # by id: a chat that moved while paging is once here
    to_read: list[tuple[Chat, int]] = field(default_factory=list)  # oldest activity first, with its `since`
    skipped: list[Skip] = field(default_factory=list)  # the news of chats that are not read
    left: int = 0  # chats with news left for a later cycle (the backlog's room)

    def keep_oldest(self, max_chats: int | None) -> None:
        """Only the `max_chats` oldest news are read this cycle; the rest wait at Wappi for a later one."""
        if max_chats is not None and len(self.to_read) > max_chats:
            self.left = len(self.to_read) - max_chats
            self.to_read = self.to_read[:max_chats]


async def poll_once(deps: PollerDeps, max_chats: int | None = None) -> int:
    """One cycle: list the chats with news, read the new messages of (at most `max_chats` of) them, commit
    what they hold; returns how many chats with news it left for a later cycle."""
    now = deps.clock()
    listed = await list_chats(deps, now)
    listed.keep_oldest(max_chats)
    findings = await read_chats(deps, listed, now)
    await commit_cycle(deps, listed, findings, now)
    if findings.outage is not None:
        raise findings.outage  # Wappi itself is failing: the cycle counts as failed
    return listed.left


async def list_chats(deps: PollerDeps, now: datetime) -> ChatList:
    """The person chats with activity since the last cycle, each with the time its news start."""
    first_start = int((await ensure_first_start(deps.sessions, now)).timestamp())
    async with deps.sessions() as session:
        whitelist = await whitelisted_numbers(session)
        high_water = await read_state(session, CHATS_HIGH_WATER)
    newer_than = first_start if high_water is None else max(int(high_water.timestamp()), first_start)
    floor = first_start if high_water is None else int((high_water - LATE_ARRIVAL).timestamp())
    listed = ChatList(whitelist)
    horizon = int((now + FUTURE_LIMIT).timestamp())
    for chat in await _recent_chats(deps.wappi, newer_than, max(floor, first_start)):
        if chat.id in listed.chats:
            continue
        reason = chat_skip_reason(chat.id, chat.chat_type, whitelist)
        if reason is not None:
            if (skip := _skipped_chat_news(chat, reason, first_start)) is not None:
                listed.skipped.append(skip)
            continue
        # A last_time beyond the horizon is wrong: believed, it would move the high water past real news.
        in_time = chat.last_time is None or chat.last_time <= horizon
        listed.chats[chat.id] = chat if in_time else replace(chat, last_time=None)
    async with deps.sessions() as session:
        found = await session.scalars(select(ChatCursor).where(ChatCursor.chat_id.in_(list(listed.chats))))
        cursors = {cursor.chat_id: cursor for cursor in found.all()}
    # Oldest activity first: messages reach the agent in the order written.
    for chat in reversed(list(listed.chats.values())):
        since = _read_from(chat, cursors.get(chat.id), first_start)
        if since is not None:
            listed.to_read.append((chat, since))
    return listed


async def read_chats(deps: PollerDeps, listed: ChatList, now: datetime) -> CycleFindings:
    """The listed chats' new messages, sorted into what to forward, skip, log and remember."""
    # Chats left for a later cycle keep the high water where it is: the next listing finds them again.
    findings = CycleFindings(skipped=list(listed.skipped), unread_left=listed.left > 0)
    slots = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(chat: Chat, since: int) -> list[WappiMessage]:
        async with slots:
            return await _messages_since(deps.wappi, chat.id, since, now)

    reads = await asyncio.gather(*(read(c, since) for c, since in listed.to_read), return_exceptions=True)
    for (chat, since), read_or_error in zip(listed.to_read, reads, strict=True):
        match read_or_error:
            case WappiError(transient=True, status=status) if status != 200:
                findings.outage = read_or_error  # Wappi itself is failing: the cycle is tried again later
            case OperationalError() | InterfaceError():
                raise read_or_error  # the database is gone: nothing else will work either
            case WappiError():
                # One unreadable chat must not stop polling for everybody else; its cursor stays put.
                logger.warning("Skipping chat {} this cycle: {}", chat.id, read_or_error)
                findings.unread_left = findings.unread_left or read_or_error.transient
            case BaseException():
                logger.opt(exception=read_or_error).error(
                    "Skipping chat {} this cycle: {}", chat.id, read_or_error
                )
                findings.unread_left = True
            case []:
                if chat.last_time is not None:
                    findings.cursors[chat.id] = (max(chat.last_time, since), chat.last_message_id)
            case messages:
                _sort_chat(findings, deps, chat, messages, listed.whitelist, now)
    return findings


async def commit_cycle(deps: PollerDeps, listed: ChatList, findings: CycleFindings, now: datetime) -> None:
    """The cycle's rows, cursors and state in one transaction (each row written before it is published),
    then the new rows relayed to their queues."""
    async with deps.sessions.begin() as session:
        new_ids = await store_messages(session, deps.metrics, findings.forwards, findings.skipped)
        await save_cursors(session, findings.cursors)
        if findings.outage is None:
            known = [c.last_time for c in listed.chats.values() if c.last_time is not None]
            # A chat to read again next cycle: the high water must not pass it.
            if known and not findings.unread_left:
                await write_state(session, CHATS_HIGH_WATER, from_unix(max(known)))
            await write_state(session, LAST_POLL, deps.clock())
    # A row whose publish fails stays pending: the repair loop publishes it once the broker is back.
    await relay(deps.sessions, deps.publisher, deps.outbox, ids=new_ids, limit=len(new_ids))


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
    """Sort one chat's new messages into forwards (the client's and the business's own, in the order written)
    and skips; note its new cursor."""
    for message in messages:
        match sort_message(message, chat.id, whitelist, deps.tz, now):
            case Forward() as forward:
                findings.forwards.append(forward)
            case Skip() as skip:
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


async def run_poller(
    deps: PollerDeps,
    *,
    lease: LeaderLease,
    interval: float,
    heartbeat: Callable[[bool], None] = lambda leading: None,
    pace: PollPace | None = None,
    intake: IntakeLimit | None = None,
) -> None:
    """Poll forever while this replica holds the leader lease; other replicas wait for it.
    The leader wakes every `interval` and runs a cycle unless `pace` (webhook mode) says it is not due or
    `intake` says the agent has too much waiting already; `intake` also bounds the chats a cycle reads.
    `heartbeat(True)` follows every wake of the leader (its cycle completed, failed or not due);
    `heartbeat(False)` says this replica is not polling, so it cannot be stalled."""
    failing = False
    while True:
        try:
            if not await lease.acquire():
                heartbeat(False)
                await asyncio.sleep(max(interval, 1.0))
                continue
            logger.info("Poller lease acquired: this replica polls Wappi every {}s", interval)
            heartbeat(True)
            last_cycle = None
            behind = False  # the last cycle left chats with news unread: the next is due at once
            while True:
                await lease.check()
                due = behind or pace is None or await pace.cycle_due(last_cycle)
                room = None if intake is None or not due else await intake.room(behind)
                if due and room != 0:
                    last_cycle = deps.clock()
                    failing, behind = await _cycle(deps, failing, room)
                heartbeat(True)
                await asyncio.sleep(interval)
        except Exception as exc:
            heartbeat(False)
            logger.warning("Poller lease lost or unavailable, retrying: {}", exc)
            await asyncio.sleep(max(interval, 1.0))
        finally:
            lease.release()


async def _cycle(deps: PollerDeps, failing: bool, max_chats: int | None) -> tuple[bool, bool]:
    """One cycle, a run of failures logged once; whether it failed, and whether it left chats with news
    for the next."""
    try:
        left = await poll_once(deps, max_chats)
    except Exception as exc:
        if not failing:
            logger.opt(exception=exc).error("Poll cycle failed: {}", exc)
        return True, False
    if failing:
        logger.info("Polling recovered")
    return False, left > 0
