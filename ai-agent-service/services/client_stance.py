"""The client's stance on the bot's offer: the sales agent's structured verdict, or the spec's phrases."""

from __future__ import annotations

import re
from collections.abc import Sequence

from models import Message

# The spec's phrases, checked in this order ("да, подумаю" is vague; "не готов" is a no, not a yes).
_KEYWORDS = (
    ("undecided", re.compile(r"\b(посмотрю|посмотрим|подумаю|подумаем|может быть)\b")),
    ("no", re.compile(r"\b(нет|не интересно|неинтересно|не надо|не готов[аы]?|не соглас(ен|на|ны))\b")),
    ("yes", re.compile(r"\b(да|согласен|согласна|согласны|готов|готова|готовы|давайте)\b")),
)


def keyword_stance(text: str) -> str | None:
    normalized = text.lower().replace("ё", "е")
    for stance, pattern in _KEYWORDS:
        if pattern.search(normalized):
            return stance
    return None


def turn_stance(messages: Sequence[Message]) -> str | None:
    """The client's stance over a turn (oldest first): the sales agent's newest verdict, else the keywords."""
    for message in reversed(messages):
        if message.stance:
            return message.stance
    for message in reversed(messages):
        found = keyword_stance(message.voice_transcription or message.message_text or "")
        if found:
            return found
    return None
