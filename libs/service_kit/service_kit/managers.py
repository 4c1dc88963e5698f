"""The business's managers (MANAGERS, read by both services): who gets notifications and calls. The agent
assigns calls and writes to them; the gateway sends a notification to no one else."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NON_DIGITS = re.compile(r"\D+")


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
    """`Айгерим:77011234567,Данияр:+7 701 765 43 21` → the managers, in that order; ValueError names a bad
    entry."""
    managers = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, separator, phone = entry.rpartition(":")
        digits = normalize_phone(phone)
        if not separator or not name.strip() or not 7 <= len(digits) <= 15:
            raise ValueError(f"{entry!r} is not Name:phone (e.g. Айгерим:77011234567)")
        managers.append(Manager(name.strip(), digits))
    if len({m.phone for m in managers}) != len(managers):
        raise ValueError("a phone number is listed twice")
    return tuple(managers)
