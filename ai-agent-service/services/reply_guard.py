"""The last check on what the model wrote before a client sees it: every money amount and percentage must be
one the knowledge base states (or the client wrote), no invented discounts, no quoting of our own
instructions. A failing text is replaced by a safe fallback.

Pure functions over text, so the sales agent and the follow-up chain use the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from services.language import KK, RU, in_language

# The safe texts, in the client's language; none names the business or what it sells.
DISCOUNT_FALLBACK = {
    RU: "Скидки и специальные условия обсуждает наш менеджер — он подберёт для вас лучший вариант. "
    "Хотите, я запишу вас на короткий созвон с ним? 📞",
    KK: "Жеңілдіктер мен арнайы шарттарды менеджеріміз талқылайды — ол сізге ең тиімді нұсқаны "
    "таңдап береді. Онымен қысқа қоңырауға жазып қояйын ба? 📞",
}
PRICE_FALLBACK = {
    RU: "Точную стоимость для вашего случая подтвердит наш менеджер 😊 "
    "Хотите, я запишу вас на короткий созвон с ним?",
    KK: "Сіздің жағдайыңызға нақты бағаны менеджеріміз растайды 😊 Онымен қысқа қоңырауға жазып қояйын ба?",
}
NEUTRAL_FALLBACK = {
    RU: "С радостью отвечу на ваши вопросы 😊 "
    "Хотите, я запишу вас на короткий созвон с менеджером — он всё подробно расскажет?",
    KK: "Сұрақтарыңызға қуана жауап беремін 😊 Менеджермен қысқа қоңырауға жазып қояйын ба — ол бәрін толық "
    "айтып береді?",
}

_PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)[\s-]*(?:%|процент|пайыз)", re.I)
_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_MULTIPLIER = r"тыс(?:\.|яч[аиу]?(?![а-яё]))?|мың|млн\.?|миллион(?:а|ов)?"
_CURRENCY = r"₸|тенге|теңге|тг(?![а-яё])|kzt|руб(?:\.|л[а-яё]*)?|р\.|\$|usd|долл[а-яё]*|€|евро"
# An amount is a number with a currency (before or after it) or a "тыс."/"млн" multiplier.
_MONEY = re.compile(
    rf"(?:({_CURRENCY})\s*)?(?<![\d.,])({_NUMBER})(?:\s*({_MULTIPLIER}))?(?:\s*({_CURRENCY}))?", re.I
)
# Every number in a client's text, with its multiplier: a sum the client named may be repeated back.
_ANY_NUMBER = re.compile(rf"(?<![\d.,])({_NUMBER})(?:\s*({_MULTIPLIER}))?", re.I)
_DISCOUNT_WORD = re.compile(r"скидк|дисконт|промокод|акци[яиюей]|распродаж|жеңілдік|женилдик", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_PASSAGE_END = re.compile(r"\n\s*\n")
# A quoted example phrase in a prompt ("Расскажите, с какой задачей...") is something the bot may say.
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*")
_HEADER = re.compile(r"^[^a-zа-яё]*?([A-ZА-ЯЁ][A-ZА-ЯЁ\-]+(?:\s+[A-ZА-ЯЁ][A-ZА-ЯЁ\-]*)+)\s*:")
# A run of the prompt's words this long, found word for word in a reply, means the prompt is being quoted.
_MIN_FINGERPRINT_WORDS = 4
_MIN_FINGERPRINT_LETTERS = 20


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    reason: str | None = None
    fallback: dict[str, str] | None = None  # the safe text by language

    def text_or_fallback(self, text: str, language: str = RU) -> str:
        return text if self.ok else in_language(self.fallback or NEUTRAL_FALLBACK, language)


def check_reply(
    text: str, knowledge_text: str, prompt_texts: Iterable[str], client_texts: Iterable[str] = ()
) -> GuardResult:
    """Whether `text` may go to the client as it is.

    `knowledge_text` is everything the knowledge base says, passages separated by blank lines;
    `prompt_texts` are the prompt templates the model was given; `client_texts` what the client wrote (a
    sum the client named may be repeated back).
    """
    invented = _invented_figure(text, knowledge_text, client_texts)
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
        if line.lstrip().startswith(("{", "}")):  # the JSON answer example
            continue
        # Titles are matched case-sensitively by prompt_headers; lower-cased they are ordinary words.
        body = _HEADER.sub("", _NUMBERING.sub("", line), count=1)
        # A placeholder's value (the business's name, the conversation) is not the prompt's own wording.
        fragments = (part for piece in _PLACEHOLDER.split(body) for part in _QUOTED.split(piece))
        for fragment in fragments:
            if any(char.isdigit() for char in fragment):
                continue  # working hours and the like are facts the bot may state in the same words
            words = _words(fragment)
            letters = sum(char.isalpha() for char in words)
            if words.count(" ") + 1 >= _MIN_FINGERPRINT_WORDS and letters >= _MIN_FINGERPRINT_LETTERS:
                fingerprints.append(words)
    return tuple(fingerprints)


def _invented_figure(text: str, knowledge_text: str, client_texts: Iterable[str]) -> GuardResult | None:
    """Every percentage must be one the knowledge base states, and every money amount one it states or the
    client wrote (a budget may be repeated back); an amount next to a discount word must be one the knowledge
    base gives about discounts. A client naming a discount does not make it ours."""
    known = _knowledge_figures(knowledge_text)
    said = frozenset(value for client_text in client_texts for value in _numbers_in(client_text))
    for sentence in _SENTENCE_END.split(text):
        about_discount = bool(_DISCOUNT_WORD.search(sentence))
        for value in _PERCENT.findall(sentence):
            if _number(value) not in known.percents:
                fallback = DISCOUNT_FALLBACK if about_discount else NEUTRAL_FALLBACK
                return GuardResult(False, f"percentage {value}% is not in the knowledge base", fallback)
        for written, amount in _amounts_in(sentence):
            if about_discount and amount not in known.discount_amounts:
                return GuardResult(
                    False, f"discount amount {written} is not in the knowledge base", DISCOUNT_FALLBACK
                )
            if amount not in known.amounts and amount not in said:
                return GuardResult(False, f"amount {written} is not in the knowledge base", PRICE_FALLBACK)
    return None


@dataclass(frozen=True)
class _Figures:
    percents: frozenset[str]
    amounts: frozenset[str]  # every money amount the base states, "49 тыс. ₸" as 49000
    discount_amounts: frozenset[str]  # the amounts of passages about discounts


@lru_cache(maxsize=2)
def _knowledge_figures(knowledge_text: str) -> _Figures:
    """Computed once per knowledge-base build (the text arrives as the same string until it changes)."""
    percents = frozenset(_number(value) for value in _PERCENT.findall(knowledge_text))
    # Only amounts the knowledge base gives in a passage about discounts; a price elsewhere is no discount.
    discount_passages = [part for part in _PASSAGE_END.split(knowledge_text) if _DISCOUNT_WORD.search(part)]
    discount_amounts = frozenset(amount for part in discount_passages for _, amount in _amounts_in(part))
    amounts = frozenset(amount for _, amount in _amounts_in(knowledge_text))
    return _Figures(percents, amounts, discount_amounts)


def _amounts_in(text: str) -> list[tuple[str, str]]:
    """(as written, normalised value) of each money amount in `text`."""
    found = []
    for match in _MONEY.finditer(text):
        currency_before, number, multiplier, currency_after = match.groups()
        if currency_before or multiplier or currency_after:
            found.append((match.group(0).strip(), _value(number, multiplier)))
    return found


def _numbers_in(text: str) -> set[str]:
    """Every number a client wrote, normalised; with a multiplier both "49 тыс." forms (49000, 49) count."""
    values = set()
    for number, multiplier in _ANY_NUMBER.findall(text):
        values.add(_number(number))
        if multiplier:
            values.add(_value(number, multiplier))
    return values


def _value(number: str, multiplier: str | None) -> str:
    """49 000 / 49000 / "49 тыс." / "49 мың" → "49000"; "1,5 млн" → "1500000"."""
    value = Decimal(_number(number))
    lowered = (multiplier or "").casefold()
    if lowered.startswith(("тыс", "мың")):
        value *= 1000
    elif lowered.startswith(("млн", "миллион")):
        value *= 1_000_000
    return _number(format(value.normalize(), "f"))


def _number(value: str) -> str:
    digits = re.sub(r"[ \u00a0\u202f]", "", value).replace(",", ".")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits.lstrip("0") or "0"


def _words(text: str) -> str:
    # Case, punctuation, emoji and markdown differ between the prompt and a model's dump of it; words do not.
    return " ".join(re.findall(r"[^\W_]+", text.casefold().replace("ё", "е")))
