"""A client's stop request, in Russian or Kazakh, found by code; and the code's one confirmation.

The phrases are matched on normalised text (case, ё, punctuation and emoji do not matter) as whole words: a
word that merely contains "стоп" is no request, and a lone "стоп" counts only when the message says nothing
else ("Стоп, а сколько стоит?" is a question).
"""

from __future__ import annotations

import re

CONFIRMATION = {
    "ru": "Хорошо, больше не будем вам писать. Если понадобится помощь — просто напишите нам 🙏",
    "kk": "Жақсы, енді сізге жазбаймыз. Көмек керек болса — бізге жазыңыз 🙏",
}
# A stop request wherever it stands in the message.
_PHRASES = {
    "ru": (
        "отпишитесь",
        "отпишите меня",
        "не пишите",
        "больше не пишите",
        "не пишите мне",
        "хватит писать",
        "хватит мне писать",
        "перестаньте писать",
        "перестаньте мне писать",
        "удалите мой номер",
        "удалите меня из рассылки",
        "не присылайте сообщения",
    ),
    # Kazakh, also as typed without the Kazakh letters.
    "kk": (
        "жазбаңыз",
        "жазбаныз",
        "маған жазбаңыз",
        "тоқтатыңыз",
        "токтатыныз",
        "хабарлама жібермеңіз",
        "хабарлама жибермениз",
    ),
}
# A stop request only as the whole message, with at most these words around it.
_ALONE = {"стоп": "ru", "stop": "ru", "тоқта": "kk", "токта": "kk"}
_FILLER = frozenset("пожалуйста спасибо всё все хватит уже да рахмет өтінемін отинемин".split())
_WORD = re.compile(r"[^\W\d_]+")


def stop_request_language(text: str) -> str | None:
    """ "ru" or "kk" when `text` asks the business to stop writing, else None."""
    words = _WORD.findall(text.casefold().replace("ё", "е"))
    padded = f" {' '.join(words)} "
    for language, phrases in _PHRASES.items():
        if any(f" {phrase.replace('ё', 'е')} " in padded for phrase in phrases):
            return language
    alone = [word for word in words if word in _ALONE]
    if alone and all(word in _ALONE or word in _FILLER for word in words):
        return _ALONE[alone[0]]
    return None
