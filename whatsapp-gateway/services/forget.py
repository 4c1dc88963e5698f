"""Forgetting a person in the gateway: on the agent's contact_erasures message, or on
POST /contacts/{phone}/forget here. Their message_logs rows (texts, transcripts, raw payloads, whichever way
they went) and whitelist entry are deleted; erasing twice is harmless. The log names them only by a hash of
the number."""

from loguru import logger
from sqlalchemy import delete, or_

from config.database import SessionFactory
from models.message_log import MessageLog
from models.whitelist import Whitelist
from service_kit.consumer import Delivery
from service_kit.logs import phone_hash
from services.queue_bodies import ContactErasure


async def erase_phone(sessions: SessionFactory, phone: str) -> dict[str, int]:
    """Deletes what the gateway keeps about `phone`; how many rows went, by table."""
    statements = {
        "message_logs": delete(MessageLog).where(
            or_(MessageLog.phone_number == phone, MessageLog.chat_id == f"{phone}@c.us")
        ),
        "whitelist": delete(Whitelist).where(Whitelist.phone_number == phone),
    }
    async with sessions() as session, session.begin():
        removed = {table: (await session.execute(stmt)).rowcount for table, stmt in statements.items()}
    logger.info("Number #{} forgotten ({})", phone_hash(phone), removed)
    return removed


async def handle_erasure(body: ContactErasure, delivery: Delivery, *, sessions: SessionFactory) -> None:
    await erase_phone(sessions, body.phone_number)
