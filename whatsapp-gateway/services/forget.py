"""Forgetting a person in the gateway: on the agent's contact_erasures message, or on
POST /contacts/{phone}/forget here. Everything that names or quotes them in message_logs (number, chat,
texts, transcripts, raw payloads, errors) is blanked and their whitelist entry deleted; erasing twice is
harmless. The log names them only by a hash of the number.

The blanked rows keep their bare WhatsApp message ids: the poller re-reads a chat's last minutes, and Wappi
still holds the chat, so without them the forgotten messages would be taken in again as new (and the bot's
own reply as the owner typing), bringing the person back in both services."""

from loguru import logger
from sqlalchemy import delete, or_, update

from config.database import SessionFactory
from models.message_log import MessageLog
from models.whitelist import Whitelist
from service_kit.consumer import Delivery
from service_kit.logs import phone_hash
from services.queue_bodies import ContactErasure


async def erase_phone(sessions: SessionFactory, phone: str) -> dict[str, int]:
    """Erases what the gateway keeps about `phone`; how many rows were erased, by table."""
    statements = {
        "message_logs": update(MessageLog)
        .where(or_(MessageLog.phone_number == phone, MessageLog.chat_id == f"{phone}@c.us"))
        .values(
            phone_number=None,
            chat_id=None,
            message_text=None,
            payload=None,
            error=None,
            reply_to_message_id=None,
        ),
        "whitelist": delete(Whitelist).where(Whitelist.phone_number == phone),
    }
    async with sessions() as session, session.begin():
        removed = {table: (await session.execute(stmt)).rowcount for table, stmt in statements.items()}
    logger.info("Number #{} forgotten ({})", phone_hash(phone), removed)
    return removed


async def handle_erasure(body: ContactErasure, delivery: Delivery, *, sessions: SessionFactory) -> None:
    await erase_phone(sessions, body.phone_number)
