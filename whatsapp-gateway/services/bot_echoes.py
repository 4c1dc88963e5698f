"""Who wrote the business's own messages (is_me) in a client's chat: the bot, whose echoes are never
forwarded, or the owner or a manager typing on the phone, whose messages go to the agent as the operator's.

The bot's sends are known by their Wappi id once the sender recorded it. Before that (the poll read the echo
between Wappi's answer and the sender's record, or the answer never came) the sender's row is known: the
sender claims it (status sending, the phone and the text) and commits before it calls Wappi, so no echo is
older than a row the poller can see. An outgoing row still without its Wappi id (sending, uncertain, or sent
on an answer that carried none) therefore covers an own text of the same phone and text. The price: an
operator who types the very text the bot is sending to that client at that moment is taken for the bot.
"""

from loguru import logger
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.message_log import OUTGOING, SENDING, SENT, UNCERTAIN, MessageLog
from services.message_mapping import BY_OPERATOR, Forward
from utils.whatsapp_ids import normalize_phone

# The states of a row whose send may have reached Wappi while its Wappi id is not known.
MAY_HAVE_GONE_OUT = (SENDING, UNCERTAIN, SENT)


async def without_bot_echoes(session: AsyncSession, forwards: list[Forward]) -> list[Forward]:
    """The forwards minus the own messages the bot sent (in the order given)."""
    own = [fwd for fwd in forwards if fwd.sender == BY_OPERATOR]
    if not own:
        return forwards
    known = set(
        await session.scalars(
            select(MessageLog.wappi_message_id).where(
                MessageLog.direction == OUTGOING,
                MessageLog.wappi_message_id.in_([fwd.message_id for fwd in own]),
            )
        )
    )
    echoes = set()
    for fwd in own:
        if fwd.message_id in known or await _claimed_by_the_sender(session, fwd):
            echoes.add(fwd.message_id)
    for fwd in own:
        if fwd.message_id not in echoes:
            logger.info("Chat {}: message {} typed on the business phone", fwd.chat_id, fwd.message_id)
    return [fwd for fwd in forwards if fwd.sender != BY_OPERATOR or fwd.message_id not in echoes]


async def _claimed_by_the_sender(session: AsyncSession, fwd: Forward) -> bool:
    """Whether an outgoing row without its Wappi id holds this text for this phone; a sent one then takes
    the echo's id, so it covers no later message."""
    if fwd.message_type != "text":
        return False  # the bot sends text only
    rows = await session.execute(
        select(MessageLog.id, MessageLog.message_text, MessageLog.queue_status)
        .where(
            MessageLog.direction == OUTGOING,
            MessageLog.phone_number.in_({fwd.phone, normalize_phone(fwd.phone)}),
            MessageLog.queue_status.in_(MAY_HAVE_GONE_OUT),
            MessageLog.wappi_message_id.is_(None),
        )
        .order_by(MessageLog.id)
    )
    text = (fwd.text or "").strip()
    for row_id, row_text, status in rows:
        if (row_text or "").strip() != text:
            continue
        if status == SENT:
            await session.execute(
                update(MessageLog)
                .where(MessageLog.id == row_id, MessageLog.wappi_message_id.is_(None))
                .values(wappi_message_id=fwd.message_id)
            )
        return True
    return False
