"""WhatsApp ids and phone numbers: whose chat an id is, and the one form numbers are compared in."""

import re
from enum import StrEnum

_NON_DIGITS = re.compile(r"\D+")
PERSON_SERVERS = ("c.us", "s.whatsapp.net")
# E.164: a country code and a subscriber number, 15 digits at most; the shortest in use have 7.
PERSON_DIGITS = range(7, 16)


class ChatKind(StrEnum):
    """What a chat id names; every kind but PERSON and HIDDEN_NUMBER is never answered, and its value is
    the reason a message from it is skipped."""

    PERSON = "person"  # <phone>@c.us
    HIDDEN_NUMBER = "hidden_number"  # <lid>@lid: a person whose phone WhatsApp does not show
    GROUP = "group"  # …@g.us
    CHANNEL = "channel"  # …@newsletter
    STATUS = "status_broadcast"  # status@broadcast: the contacts' Status updates
    BROADCAST = "broadcast"  # a broadcast list
    NOT_A_PERSON = "not_a_person"  # anything else: an unknown server, a malformed id


def digits_only(value: str | None) -> str:
    return _NON_DIGITS.sub("", value or "")


def is_person_phone(digits: str) -> bool:
    return digits.isdigit() and len(digits) in PERSON_DIGITS


def _split(chat_id: str | None) -> tuple[str, str]:
    user, _, server = (chat_id or "").strip().partition("@")
    return user.split(":")[0], server.lower()  # 77011234567:12@s.whatsapp.net names a device of that phone


def chat_kind(chat_id: str | None) -> ChatKind:
    user, server = _split(chat_id)
    if server in PERSON_SERVERS:
        return ChatKind.PERSON if is_person_phone(user) else ChatKind.NOT_A_PERSON
    if server == "lid":
        return ChatKind.HIDDEN_NUMBER
    if server == "g.us":
        return ChatKind.GROUP
    if server == "newsletter":
        return ChatKind.CHANNEL
    if server == "broadcast":
        return ChatKind.STATUS if user == "status" else ChatKind.BROADCAST
    return ChatKind.NOT_A_PERSON


def phone_from_chat_id(chat_id: str | None) -> str:
    """`79115576362@c.us` -> `79115576362`, as WhatsApp dials it; empty for every id that is not a person's
    phone (groups, channels, Status, hidden-number @lid ids, bare digits)."""
    user, _ = _split(chat_id)
    return user if chat_kind(chat_id) is ChatKind.PERSON else ""


def normalize_phone(value: str | None) -> str:
    """The form whitelist entries are stored in and every number is compared in: the digits with the
    country code. `+7 701 123 45 67`, `8 (701) 123-45-67`, `0077011234567` and `77011234567@c.us` all give
    `77011234567`; an id that is not a person's gives ''. A key to compare, not a number to dial: the 8 of
    an 11-digit number is always read as Kazakhstan's trunk prefix."""
    text = (value or "").strip()
    if "@" in text:
        text = phone_from_chat_id(text)
    digits = digits_only(text)
    if digits.startswith("00"):
        digits = digits[2:]  # the international call prefix
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits
