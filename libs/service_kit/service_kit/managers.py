"""The business's managers (MANAGERS, read by both services): who gets notifications and calls. The agent
assigns calls and writes to them; the gateway sends a notification to no one else."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NON_DIGITS = re.compile(r"\D+")
# What a phone number may be written with: `+7 (701) 123-45-67`.
_PHONE_AS_WRITTEN = re.compile(r"[0-9+()\-\s]+")
EXAMPLE = "Айгерим:77011234567,Данияр:77017654321"


@dataclass(frozen=True)
class Manager:
    name: str
    phone: str  # country code and digits, e.g. 77011234567


def normalize_phone(value: str) -> str:
    """`+7 701 123 45 67`, `8 (701) 123-45-67`, `0077011234567` → `77011234567`: a key to compare numbers by
    (an 11-digit number's leading 8 is read as Kazakhstan's trunk prefix)."""
    digits = _NON_DIGITS.sub("", value.split("@", 1)[0])
    if digits.startswith("00"):
        digits = digits[2:]  # the international call prefix
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits


def parse_managers(value: str) -> tuple[Manager, ...]:
    """MANAGERS as written: comma-separated `Name:phone` entries, in that order; ValueError naming every bad
    entry."""
    managers: list[Manager] = []
    problems: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, colon, written = (part.strip() for part in entry.rpartition(":"))
        phone = normalize_phone(written)
        if not colon or not name:
            problems.append(f"{entry!r} is not Name:phone")
        elif not _PHONE_AS_WRITTEN.fullmatch(written) or not 7 <= len(phone) <= 15:
            problems.append(f"{entry!r}: {written!r} is not a phone number")
        elif phone in {manager.phone for manager in managers}:
            problems.append(f"{entry!r}: {phone} is listed twice")
        else:
            managers.append(Manager(name, phone))
    if problems:
        raise ValueError(f"{'; '.join(problems)} (expected e.g. {EXAMPLE})")
    return tuple(managers)
