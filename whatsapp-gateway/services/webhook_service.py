"""Webhook mode: a push is stored (webhook_pushes) before Wappi gets its answer, and its messages are taken
in right after by this worker, through the same verdicts and the same store as polled ones
(services/ingest.py), so a message both pushed and polled is forwarded once.

Nothing is lost between the answer and the store: a push stays until the transaction that stores its
messages deletes it, and what this worker did not get to (a crash, a failed round) is found again by its
sweep every SWEEP_INTERVAL_S. Each push also records its time, which sets the poller's pace
(services/poll_pace.py)."""

import asyncio
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from loguru import logger
from sqlalchemy import delete, insert, select

from config.database import SessionFactory
from models.poll_state import LAST_WEBHOOK, write_state
from models.webhook_push import WebhookPush
from models.whitelist import whitelisted_numbers
from service_kit.clock import Clock
from service_kit.outbox import relay
from service_kit.publisher import Publisher
from services.ingest import sort_message, store_messages
from services.message_mapping import MEDIA_PLACEHOLDERS, VOICE_TYPES, Forward
from services.outbox import MessageLogOutbox
from services.poll_records import Skip
from services.wappi_models import WappiMessage, parse_messages
from utils.metrics import GatewayMetrics

SWEEP_INTERVAL_S = 5.0
BATCH = 100  # pushes taken in by one transaction
# Media bodies are the file itself (a voice note's audio in base64): the voice worker fetches it by its link.
FILE_TYPES = frozenset(VOICE_TYPES) | frozenset(MEDIA_PLACEHOLDERS)


@dataclass
class WebhookDeps:
    sessions: SessionFactory
    publisher: Publisher
    outbox: MessageLogOutbox
    metrics: GatewayMetrics
    tz: ZoneInfo
    clock: Clock


async def store_push(sessions: SessionFactory, messages: list[WappiMessage], now: datetime) -> None:
    """The push's messages and the time it came, committed (what the answer to Wappi waits for)."""
    async with sessions.begin() as session:
        await session.execute(insert(WebhookPush).values(messages=[_kept(m) for m in messages]))
        await write_state(session, LAST_WEBHOOK, now)


def _kept(message: WappiMessage) -> dict[str, Any]:
    kept = message.model_dump(by_alias=True, exclude_none=True)
    if message.type in FILE_TYPES:
        kept.pop("body", None)
    return kept


def pushed_chat_id(message: WappiMessage) -> str:
    """The chat a pushed message was written in: its chatId or, for want of one, the other side's address."""
    return message.chat_id or (message.to if message.is_me else message.from_) or ""


async def take_in_pushes(deps: WebhookDeps) -> int:
    """The oldest stored pushes' messages stored as message_logs rows and the pushes deleted, in one
    transaction, then the new rows relayed to their queues; returns how many pushes were taken in."""
    async with deps.sessions.begin() as session:
        query = select(WebhookPush.id, WebhookPush.messages).order_by(WebhookPush.id).limit(BATCH)
        pushes = (await session.execute(query.with_for_update(skip_locked=True))).all()
        if not pushes:
            return 0
        whitelist = await whitelisted_numbers(session)
        now = deps.clock()
        forwards: list[Forward] = []
        skipped: list[Skip] = []
        for push in pushes:
            for message in parse_messages(push.messages):
                match sort_message(message, pushed_chat_id(message), whitelist, deps.tz, now):
                    case Forward() as forward:
                        forwards.append(forward)
                    case Skip() as skip:
                        skipped.append(skip)
        new_ids = await store_messages(session, deps.metrics, forwards, skipped)
        await session.execute(delete(WebhookPush).where(WebhookPush.id.in_([push.id for push in pushes])))
    # A row whose publish fails stays pending: the outbox repair loop publishes it once the broker is back.
    await relay(deps.sessions, deps.publisher, deps.outbox, ids=new_ids, limit=len(new_ids))
    return len(pushes)


async def run_webhook_worker(
    deps: WebhookDeps, arrived: asyncio.Event, heartbeat: Callable[[], None] = lambda: None
) -> None:
    """Takes in what is stored (at start: what a stop left), then again as soon as `arrived` is set (by the
    webhook route) and every SWEEP_INTERVAL_S anyway; `heartbeat` after each round."""
    failing = False
    while True:
        arrived.clear()  # before the round: a push stored during it starts the next one at once
        try:
            while await take_in_pushes(deps):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not failing:
                logger.opt(exception=exc).error("Taking in webhook pushes failed, retrying: {}", exc)
            failing = True
        else:
            if failing:
                logger.info("Webhook pushes are taken in again")
            failing = False
        heartbeat()
        with suppress(TimeoutError):
            async with asyncio.timeout(SWEEP_INTERVAL_S):
                await arrived.wait()
