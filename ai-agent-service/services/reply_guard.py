"""The last check on what the model wrote before a client sees it: no invented discounts or percentages,
no quoting of our own instructions. A failing text is replaced by a safe fallback.

Pure functions over text, so the sales agent and the follow-up chain use the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

DISCOUNT_FALLBACK = (
    "Скидки и специальные условия обсуждает наш менеджер — он подберёт для вас лучший вариант. "
    "Хотите, я запишу вас на короткий созвон с ним? 📞"
)
NEUTRAL_FALLBACK = (
    "Я консультант «СкладПро» и с радостью помогу с вопросами о складском учёте 😊 "
    "Хотите, я запишу вас на короткий созвон с менеджером — он всё подробно расскажет?"
)

_PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)[\s-]*(?:%|процент)", re.I)
_MONEY = re.compile(
    r"(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)?)\s*(?:₸|тенге|тг(?![а-яё])|руб|\$|€)", re.I
)
_DISCOUNT_WORD = re.compile(r"скидк|дисконт|промокод|акци[яиюей]|распродаж", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_PASSAGE_END = re.compile(r"\n\s*\n")
# A quoted example phrase in a prompt ("Расскажите, с какой задачей...") is something the bot may say.
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*")
_HEADER = re.compile(r"^[^a-zа-яё]*?([A-ZА-ЯЁ][A-ZА-ЯЁ\-]+(?:\s+[A-ZА-ЯЁ][A-ZА-ЯЁ\-]*)+)\s*:")
# A run of the prompt's words this long, found word for word in a reply, means the prompt is being quoted.
_MIN_FINGERPRINT_WORDS = 4
_MIN_FINGERPRINT_LETTERS = 20


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    reason: str | None = None
    fallback: str | None = None

    def text_or_fallback(self, text: str) -> str:
        return text if self.ok else (self.fallback or NEUTRAL_FALLBACK)


def check_reply(text: str, knowledge_text: str, prompt_texts: Iterable[str]) -> GuardResult:
    """Whether `text` may go to the client as it is.

    `knowledge_text` is everything the knowledge base says, passages separated by blank lines;
    `prompt_texts` are the prompt templates the model was given.
    """
    invented = _invented_figure(text, knowledge_text)
    if invented is not None:
        return invented
    words = f" {_words(text)} "
    for prompt in prompt_texts:
        for header in prompt_headers(prompt):
            if header in text:
                return GuardResult(False, f"quotes the prompt section {header!r}", NEUTRAL_FALLBACK)
        for fingerprint in prompt_fingerprints(prompt):
            if f" {fingerprint} " in words:
                return GuardResult(False, f"quotes the prompt line {fingerprint[:60]!r}", NEUTRAL_FALLBACK)
    return GuardResult(True)


# Prompt and knowledge texts change rarely and are handed in as the same string objects until they do, so
# what is derived from them is computed once per version (a cache hit on the same object is O(1)).
@lru_cache(maxsize=8)
def prompt_headers(prompt: str) -> tuple[str, ...]:
    """Upper-case section titles of two or more words ("ВАЖНЫЕ ПРАВИЛА"), matched case-sensitively."""
    headers = []
    for line in prompt.splitlines():
        match = _HEADER.match(line)
        if match:
            headers.append(match.group(1))
    return tuple(headers)


@lru_cache(maxsize=8)
def prompt_fingerprints(prompt: str) -> tuple[str, ...]:
    """The prompt's own instruction wording, quoted example phrases left out, as lower-cased word runs."""
    fingerprints = []
    for line in prompt.splitlines():
        if "{" in line:  # placeholders and the JSON answer example
            continue
        # Titles are matched case-sensitively by prompt_headers; lower-cased they are ordinary words.
        body = _HEADER.sub("", _NUMBERING.sub("", line), count=1)
        for fragment in _QUOTED.split(body):
            if any(char.isdigit() for char in fragment):
                continue  # working hours and the like are facts the bot may state in the same words
            words = _words(fragment)
            letters = sum(char.isalpha() for char in words)
            if words.count(" ") + 1 >= _MIN_FINGERPRINT_WORDS and letters >= _MIN_FINGERPRINT_LETTERS:
                fingerprints.append(words)
    return tuple(fingerprints)


def _invented_figure(text: str, knowledge_text: str) -> GuardResult | None:
    """Any percentage, and any amount next to a discount word, must be one the knowledge base states."""
    allowed_percents, allowed_amounts = _knowledge_figures(knowledge_text)
    for sentence in _SENTENCE_END.split(text):
        about_discount = bool(_DISCOUNT_WORD.search(sentence))
        fallback = DISCOUNT_FALLBACK if about_discount else NEUTRAL_FALLBACK
        for value in _PERCENT.findall(sentence):
            if _number(value) not in allowed_percents:
                return GuardResult(False, f"percentage {value}% is not in the knowledge base", fallback)
        if not about_discount:
            continue
        for value in _MONEY.findall(sentence):
            if _number(value) not in allowed_amounts:
                return GuardResult(False, f"discount amount {value} is not in the knowledge base", fallback)
    return None


@lru_cache(maxsize=2)
def _knowledge_figures(knowledge_text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The percentages the knowledge base states, and the amounts it gives in passages about discounts."""
    percents = frozenset(_number(value) for value in _PERCENT.findall(knowledge_text))
    # Only amounts the knowledge base gives in a passage about discounts; a price elsewhere is no discount.
    discount_passages = [part for part in _PASSAGE_END.split(knowledge_text) if _DISCOUNT_WORD.search(part)]
    amounts = frozenset(_number(value) for part in discount_passages for value in _MONEY.findall(part))
    return percents, amounts


def _number(value: str) -> str:
    digits = re.sub(r"[ \u00a0\u202f]", "", value).replace(",", ".")
    return digits.lstrip("0") or "0"


def _words(text: str) -> str:
    # Case, punctuation, emoji and markdown differ between the prompt and a model's dump of it; words do not.
    return " ".join(re.findall(r"[^\W_]+", text.casefold().replace("ё", "е")))
