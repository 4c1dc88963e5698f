"""Who the gateway answers: a person, in their own chat, whose number is not whitelisted. Everything else is
skipped for a reason, decided by the chat's id first (never by `from` alone: a Status update's `from` is
the contact's own number).

The poller applies `chat_skip_reason` to the chat list (such chats are not even read) and
`message_verdict` to each message it reads; the sender uses `chat_phone` before it replies into a chat."""

from dataclasses import dataclass

from services.wappi_models import WappiMessage
from utils.whatsapp_ids import (
    ChatKind,
    chat_kind,
    digits_only,
    is_person_phone,
    normalize_phone,
    phone_from_chat_id,
)

ANSWERED_KINDS = (ChatKind.PERSON, ChatKind.HIDDEN_NUMBER)
WHITELISTED = "whitelisted"
REACTION = "reaction"
# Skips /stats counts per reason (all of them, zeros included): chat kinds never answered, hidden numbers
# without a real phone, whitelisted numbers, reactions.
COUNTED_REASONS = (
    ChatKind.STATUS.value,
    ChatKind.BROADCAST.value,
    ChatKind.CHANNEL.value,
    ChatKind.GROUP.value,
    ChatKind.NOT_A_PERSON.value,
    ChatKind.HIDDEN_NUMBER.value,
    WHITELISTED,
    REACTION,
)
# Not counted: a delivery status carries the id of the message it describes, not a message of its own;
# service notices (encryption, deleted, pinned, …) are nobody's words; own messages are the bot's echoes
# (never forwarded) or an operator's (forwarded as such, services/bot_echoes.py tells them apart).
DELIVERY_STATUS = "delivery_status"
SERVICE_MESSAGE = "service_message"
OWN_MESSAGE = "own_message"
# Not something a customer wrote: receipts and WhatsApp's own service notices.
SERVICE_TYPES = {
    "e2e_notification",
    "notification",
    "notification_template",
    "gp2",
    "call_log",
    "revoked",
    "ciphertext",
    "protocol",
    "broadcast_notification",
    "pinned_message",
    "poll_update",
}


@dataclass(frozen=True)
class Verdict:
    """What to do with one message: `reason` None forwards it to `phone` (digits as WhatsApp dials them)
    in `chat_id`, the person's own `<phone>@c.us` chat."""

    reason: str | None
    phone: str = ""
    chat_id: str = ""


def chat_skip_reason(chat_id: str, chat_type: str | None, whitelist: set[str]) -> str | None:
    """Why a chat is not read at all, when its id (or type) already tells; None: read it."""
    kind = chat_kind(chat_id)
    if chat_type == "group" and kind in ANSWERED_KINDS:
        return ChatKind.GROUP.value
    if kind not in ANSWERED_KINDS:
        return kind.value
    if normalize_phone(phone_from_chat_id(chat_id)) in whitelist:
        return WHITELISTED
    return None


def _real_phone(message: WappiMessage) -> str:
    """The phone a hidden-number (@lid) chat's payload reveals: contact_phone, a chatId that is the
    person's, or `from` when the person (not the business) wrote the message."""
    given = digits_only(message.contact_phone)
    if is_person_phone(given):
        return given
    return phone_from_chat_id(message.chat_id) or ("" if message.is_me else phone_from_chat_id(message.from_))


def chat_phone(message: WappiMessage, chat_id: str) -> str:
    """The person's phone of the chat `chat_id` holding the message; '' when it is not a person's chat or
    the number is hidden."""
    kind = chat_kind(chat_id)
    if kind is ChatKind.PERSON:
        return phone_from_chat_id(chat_id)
    if kind is ChatKind.HIDDEN_NUMBER:
        return _real_phone(message)
    return ""


def _not_a_message_reason(message: WappiMessage) -> str | None:
    if message.wh_type == "messages_status" or (message.status and not message.type):
        return DELIVERY_STATUS
    if message.type == "reaction":
        return REACTION
    if message.type in SERVICE_TYPES:
        return SERVICE_MESSAGE
    return None


def message_verdict(message: WappiMessage, chat_id: str, whitelist: set[str]) -> Verdict:
    """Forward or skip one message read from the chat `chat_id` (as the chat list names it)."""
    not_a_message = _not_a_message_reason(message)
    if not_a_message == DELIVERY_STATUS:
        return Verdict(DELIVERY_STATUS)
    kind = chat_kind(chat_id)
    # The chat decides; a message that says it belongs to a chat of another kind is not trusted either.
    claimed = chat_kind(message.chat_id) if message.chat_id else kind
    for found in (kind, claimed):
        if found not in ANSWERED_KINDS:
            return Verdict(found.value)
    if message.chat_type == "group":
        return Verdict(ChatKind.GROUP.value)
    if not_a_message is not None:
        return Verdict(not_a_message)
    phone = chat_phone(message, chat_id)
    # A hidden-number chat's messages go to the agent as the person's own chat: replies then reach them.
    own_chat = f"{phone}@c.us" if phone and kind is ChatKind.HIDDEN_NUMBER else chat_id
    if not phone:
        return Verdict(ChatKind.HIDDEN_NUMBER.value)
    if message.is_me:
        # The business's own message in a client's chat: the bot's echo or an operator typing on the phone.
        if normalize_phone(phone) in whitelist:
            return Verdict(WHITELISTED, phone, own_chat)
        return Verdict(OWN_MESSAGE, phone, own_chat)
    senders = {normalize_phone(phone), normalize_phone(phone_from_chat_id(message.from_))}
    if senders & whitelist:
        return Verdict(WHITELISTED, phone, own_chat)
    return Verdict(None, phone, own_chat)
