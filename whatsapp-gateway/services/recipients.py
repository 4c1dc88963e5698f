"""Who the gateway sends to (DESIGN.md §8): a message (outgoing kind "message", the default) to a person's
number that is not whitelisted; a notification (kind "notification") only to a number in its own MANAGERS,
whitelisted or not. Numbers are compared in the whitelist's normal form, so `8 701…` is `7701…`. The sender
refuses (dead-letters) what these rules refuse; POST /test/send-message answers 403 for it."""

from sqlalchemy.ext.asyncio import AsyncSession

from models.whitelist import is_whitelisted
from utils.whatsapp_ids import is_person_phone, normalize_phone

NOTIFICATION = "notification"


def notification_refusal(phone: str, manager_phones: frozenset[str]) -> str | None:
    if normalize_phone(phone) in manager_phones:
        return None
    return f"recipient {phone} is not in MANAGERS: the gateway sends notifications to managers only"


async def whitelist_refusal(session: AsyncSession, phone: str) -> str | None:
    if await is_whitelisted(session, phone):
        return f"recipient {phone} is whitelisted: the gateway never sends to it"
    return None


async def refusal_reason(
    session: AsyncSession, phone: str, kind: str, manager_phones: frozenset[str]
) -> str | None:
    """Why nothing of this kind may be sent to `phone`; None when it may."""
    if kind == NOTIFICATION:
        return notification_refusal(phone, manager_phones)
    if not is_person_phone(phone):
        return f"recipient {phone} is not a person's phone number: the gateway never sends to it"
    return await whitelist_refusal(session, phone)
