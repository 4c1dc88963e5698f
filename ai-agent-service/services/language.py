"""The conversation's language, Russian or Kazakh: told by code from each message the client writes, kept on
the contact (contacts.language, the latest clear signal wins), and the words the code's own texts use for a
date in it. Each text the code writes to a client is a dict {"ru": ..., "kk": ...} kept beside the code
that sends it; `in_language` picks from it. Texts to managers stay Russian.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from utils.timezone_helper import WEEKDAYS_RU, WorkingHours

RU = "ru"
KK = "kk"
LANGUAGES = (RU, KK)
# How the sales and follow-up prompts say it: "Пиши на {reply_language} языке".
PROMPT_NAMES = {RU: "русском", KK: "казахском"}

# Letters Kazakh has and Russian does not.
_KAZAKH_LETTERS = re.compile("[әғқңөұүһі]")
# Common Kazakh words, also as typed on a Russian keyboard without the Kazakh letters.
_KAZAKH_WORDS = frozenset(
    """
    ма ме ба бе па пе бар жок жоқ иа ия керек емес болады болама жарайды рахмет салем салеметсиз
    салеметсизбе сиз сизге сизди биз бизге бизде маган мен сен жаксы жане ушин канша кандай калай кайда
    туралы бойынша ертен бугин уакыт сагат тагы гой деп
    """.split()
)
_WORD = re.compile(r"[^\W\d_]+")
_CYRILLIC = re.compile("[а-яё]")
# What the gateway writes in place of what it cannot forward ("[изображение]", the failed voice note's
# "(не удалось распознать голосовое сообщение)") is not the client's words.
_PLACEHOLDER = re.compile(r"\[[^\]]*\]|^\s*\([^)]*\)\s*$")

_WHEN = {RU: "{:%d.%m.%Y в %H:%M}", KK: "{:%d.%m.%Y, сағат %H:%M}"}
WEEKDAYS = {
    RU: WEEKDAYS_RU,
    KK: ("дүйсенбі", "сейсенбі", "сәрсенбі", "бейсенбі", "жұма", "сенбі", "жексенбі"),
}


class HasLanguage(Protocol):
    language: str | None


def detect_language(text: str) -> str | None:
    """ "kk" or "ru" for what a client wrote; None when it says neither ("ok", digits, emoji, a sticker).

    Kazakh when at least as many of its words are Kazakh (a Kazakh letter, or a common Kazakh word) as are
    other Cyrillic words: Kazakh speakers mix in Russian words ("Сәлеметсіз бе, доставка бар ма?"), a
    Russian speaker's single "рахмет" in a Russian sentence does not make it Kazakh.
    """
    words = _WORD.findall(_PLACEHOLDER.sub(" ", text).casefold())
    kazakh = sum(1 for word in words if _KAZAKH_LETTERS.search(word) or word in _KAZAKH_WORDS)
    russian = sum(1 for word in words if _CYRILLIC.search(word)) - kazakh
    if kazakh and kazakh >= russian:
        return KK
    return RU if russian else None


def language_of(contact: HasLanguage) -> str:
    """The language to write to the contact in: Russian until they have written clearly in one."""
    return contact.language if contact.language in LANGUAGES else RU


def in_language(texts: Mapping[str, str], language: str) -> str:
    return texts.get(language) or texts[RU]


def when_text(slot: datetime, hours: WorkingHours, language: str = RU) -> str:
    """ "10.12.2026 в 10:00" / "10.12.2026, сағат 10:00": a call's moment in the business's zone."""
    return in_language(_WHEN, language).format(hours.local(slot))


def slot_text(slot: datetime, hours: WorkingHours, language: str = RU) -> str:
    """ "10.12.2026 в 10:00 (четверг)" / "10.12.2026, сағат 10:00 (бейсенбі)": a slot the code offers."""
    weekday = WEEKDAYS.get(language, WEEKDAYS[RU])[hours.local(slot).weekday()]
    return f"{when_text(slot, hours, language)} ({weekday})"
