"""The knowledge base's index: PDF paragraphs split into chunks, searched with BM25 over Russian stems.

A reply's prompt carries only the few chunks relevant to the conversation, so its size stays flat however
large the base grows. Reading the PDFs and watching their folder is services/knowledge_base.py's job.
"""

from __future__ import annotations

import heapq
import math
import re
import textwrap
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

K1 = 1.5
B = 0.75
NOTHING_FOUND = "(нет подходящих сведений в базе знаний)"
# Function words, question words and greetings: they say nothing about which chunk answers a question.
_STOPWORDS = frozenset(
    """
    а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже для до его ее
    если есть еще же за здесь и из или им их к как какая какие какой каким когда кто ли либо мне мной мы на
    над нам нас не него нее нет ни них но ну о об однако он она они оно от по под при про с со так также там
    то того тоже той только том ту тут у уже чем через что чтобы эта эти это этого этой этом эту я
    сколько почему зачем можно нужно будет будут вообще очень свой свои своя наш наши ваш ваши вашей вашего
    мой моя мое мои меня мою себя себе тебя тебе ты хотел хотела хочу хотим подскажите скажите пожалуйста
    здравствуйте привет добрый день спасибо
    бе ба ма ме па пе мен сіз сізде сіздің сізге біз бізде және бар жоқ қанша қандай қалай сәлем сәлеметсіз
    рахмет үшін туралы бойынша керек
    """.split()
)
# Words a client types for the same thing the documents say differently. "Сколько стоит" (Kazakh "қанша
# тұрады", "бағасы") must find the chunks that show prices, which often carry nothing but "₸"; brands are
# written in both alphabets.
_SYNONYMS = {
    "цена": (
        *("стоит", "стоят", "стоимость", "цена", "прайс", "расценки", "тенге", "тг", "₸"),
        *("баға", "бағасы", "бағалары", "тұрады", "теңге"),
    ),
    "доставка": ("доставка", "жеткізу", "жеткізуге", "жеткізіп"),
    "склад": ("склад", "қойма", "қоймасы", "қоймалар"),
    "скидка": ("скидка", "жеңілдік", "жеңілдіктер"),
    "оплата": ("оплата", "төлем", "төлеу"),
    "kaspi": ("kaspi", "каспи"),
    "1с": ("1с", "1c"),
    "excel": ("excel", "эксель", "ексель"),
    "whatsapp": ("whatsapp", "ватсап", "вацап", "вотсап"),
}
_WORD = re.compile(r"[^\W_]+|₸")
_STEMMER = snowballstemmer.stemmer("russian")
_STEMMER_LOCK = threading.Lock()  # the stemmer keeps state between calls; searches may run in threads


@dataclass(frozen=True)
class Chunk:
    source: str
    page: int
    text: str


def tokenize(text: str) -> list[str]:
    """Lowercased, ё→е, stopwords dropped, Russian-stemmed, synonyms merged, 1-character terms dropped."""
    terms = (_term(word) for word in _WORD.findall(text.lower().replace("ё", "е")) if word not in _STOPWORDS)
    return [term for term in terms if len(term) > 1]


def _stem(word: str) -> str:
    with _STEMMER_LOCK:
        return _STEMMER.stemWord(word)


_SYNONYM_OF_STEM = {_stem(form): canonical for canonical, forms in _SYNONYMS.items() for form in forms}


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    stem = _stem(word)
    return _SYNONYM_OF_STEM.get(stem, stem)


def format_chunks(chunks: Iterable[Chunk]) -> str:
    blocks = [f"[{chunk.source}, стр. {chunk.page}]\n{chunk.text}" for chunk in chunks]
    return "\n\n".join(blocks) if blocks else NOTHING_FOUND


@dataclass(frozen=True)
class IndexedChunk:
    chunk: Chunk
    # The headings the chunk starts with. Their words count twice: a section titled "Тариф Старт" is more
    # about that tariff than a list that mentions it in passing.
    headings: str


class Bm25Index:
    def __init__(self, entries: list[IndexedChunk]) -> None:
        self.chunks = tuple(entry.chunk for entry in entries)
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = []
        for number, entry in enumerate(entries):
            counts = Counter(tokenize(entry.chunk.text) + tokenize(entry.headings))
            lengths.append(sum(counts.values()))
            for term, frequency in counts.items():
                self._postings[term].append((number, frequency))
        average = sum(lengths) / len(lengths) if lengths else 0.0
        # The length part of BM25's denominator, per chunk, computed once.
        self._length_norm = [K1 * (1 - B + B * length / average) if average else K1 for length in lengths]
        total = len(entries)
        self._idf = {
            term: math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
            for term, postings in self._postings.items()
        }

    def search(self, query: str, limit: int) -> list[Chunk]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(tokenize(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for number, frequency in self._postings[term]:
                scores[number] += idf * frequency * (K1 + 1) / (frequency + self._length_norm[number])
        best = heapq.nsmallest(max(limit, 0), scores.items(), key=lambda item: (-item[1], item[0]))
        return [self.chunks[number] for number, _ in best]


def split_into_chunks(paragraphs: list[tuple[bool, str]], limit: int) -> list[tuple[str, str]]:
    """Packs (is_heading, text) paragraphs into (text, leading headings) chunks of at most `limit` characters.

    A heading starts a new chunk, so one section answers one question. A section too long for one chunk is
    split between paragraphs (else lines, else words), and its heading is repeated at the top of each
    continuation so that the rest of the section is still found by the heading's words.
    """
    chunks: list[tuple[str, str]] = []
    current: list[str] = []
    leading: list[str] = []  # headings at the top of the current chunk
    heading = ""

    def close() -> None:
        chunks.append(("\n".join(current), "\n".join(leading)))

    for is_heading, paragraph in paragraphs:
        if is_heading and len(current) > len(leading):
            close()
            current, leading = [], []
        if is_heading:
            heading = paragraph if len(paragraph) <= limit // 4 else ""
        for unit in _units(paragraph, limit):
            if current and len("\n".join([*current, unit])) > limit:
                close()
                repeat = heading and not is_heading and len(heading) + 1 + len(unit) <= limit
                current = [heading] if repeat else []
                leading = list(current)
            current.append(unit)
            if is_heading and len(current) == len(leading) + 1:
                leading.append(unit)
    if current:
        close()
    return chunks


def _units(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    units: list[str] = []
    for line in paragraph.split("\n"):
        units.extend(textwrap.wrap(line, limit, break_on_hyphens=False) if len(line) > limit else [line])
    return units
