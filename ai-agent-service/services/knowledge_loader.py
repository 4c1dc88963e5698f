"""The knowledge base: every PDF in a folder, split into chunks and searched with BM25 over Russian stems.

A reply's prompt carries only the few chunks relevant to the conversation, so its size stays flat however
large the base grows. The folder is watched (at most one stat per second): adding, replacing or removing a
PDF takes effect without a restart. With the cache on (PDF_CACHE_ENABLED), each PDF's extracted text is
kept in `.cache/` beside the PDFs under its content hash, so a restart reads no PDF it has read before.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import multiprocessing
import re
import textwrap
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import snowballstemmer
from loguru import logger

K1 = 1.5
B = 0.75
REFRESH_INTERVAL_S = 1.0
NOTHING_FOUND = "(нет подходящих сведений в базе знаний)"
CACHE_DIR = ".cache"
CACHE_VERSION = 1  # bump when read_pdf_pages changes what it extracts

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
    """.split()
)
# Words a client types for the same thing the documents say differently. "Сколько стоит" must find the
# chunks that show prices, which often carry nothing but "₸"; brands are written in both alphabets.
_SYNONYMS = {
    "цена": ("стоит", "стоят", "стоимость", "цена", "прайс", "расценки", "тенге", "тг", "₸"),
    "kaspi": ("kaspi", "каспи"),
    "1с": ("1с", "1c"),
    "excel": ("excel", "эксель", "ексель"),
    "whatsapp": ("whatsapp", "ватсап", "вацап", "вотсап"),
}
_WORD = re.compile(r"[^\W_]+|₸")
# (page number from 1, its (is_heading, text) paragraphs) for each page of a PDF
_Pages = list[tuple[int, list[tuple[bool, str]]]]
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


class KnowledgeBase:
    def __init__(self, path: Path, chunk_chars: int = 800, *, cache_enabled: bool = False) -> None:
        self.path = Path(path)
        self.chunk_chars = chunk_chars
        self.cache = _PageCache(self.path / CACHE_DIR) if cache_enabled else None
        self._lock = threading.Lock()
        self._stamps: dict[str, tuple[int, int]] | None = None
        self._chunks_by_file: dict[str, tuple[tuple[int, int], list[_Entry]]] = {}
        self._index = _Bm25Index([])
        self._checked_at = 0.0
        self.refresh()

    @property
    def chunk_count(self) -> int:
        return len(self._index.chunks)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """Everything indexed, in file-name and page order; the same tuple until the base is re-indexed."""
        return self._index.chunks

    def search(self, query: str, limit: int = 4) -> list[Chunk]:
        """Up to `limit` chunks sharing terms with `query`, best first; [] when no term matches."""
        if time.monotonic() - self._checked_at >= REFRESH_INTERVAL_S and self._lock.acquire(blocking=False):
            # While another thread re-indexes, searches keep using the current index instead of waiting.
            try:
                self._refresh_locked()
            finally:
                self._lock.release()
        return self._index.search(query, limit)

    def refresh(self) -> bool:
        """Re-index if a PDF was added, changed or removed; True when it did."""
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        self._checked_at = time.monotonic()
        stamps = self._scan()
        if stamps == self._stamps:
            return False
        # Unchanged files keep their chunks: adding one PDF does not re-read a large base.
        unchanged = {name: self._chunks_by_file[name][1] for name in stamps if self._is_cached(name, stamps)}
        chunks = unchanged | self._read_files([name for name in stamps if name not in unchanged])
        current = {name: (stamp, chunks[name]) for name, stamp in stamps.items()}
        index = _Bm25Index([entry for name in sorted(current) for entry in current[name][1]])
        self._chunks_by_file, self._stamps, self._index = current, stamps, index
        logger.info(
            "Knowledge base {}: {} PDF file(s), {} chunks indexed", self.path, len(stamps), len(index.chunks)
        )
        return True

    def _scan(self) -> dict[str, tuple[int, int]]:
        try:
            entries = sorted(self.path.iterdir())
        except OSError as exc:
            if self._stamps != {}:  # warn once when the folder goes missing, not every second
                logger.warning("Knowledge base folder {} cannot be read: {}", self.path, exc)
            return {}
        stamps = {}
        for entry in entries:
            if entry.suffix.lower() != ".pdf":
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue  # removed between listing and stat
            if entry.is_file():
                stamps[entry.name] = (stat.st_mtime_ns, stat.st_size)
        return stamps

    def _is_cached(self, name: str, stamps: dict[str, tuple[int, int]]) -> bool:
        cached = self._chunks_by_file.get(name)
        return cached is not None and cached[0] == stamps[name]

    def _read_files(self, names: list[str]) -> dict[str, list[_Entry]]:
        cached = {name: self.cache.get(self.path / name) for name in names} if self.cache else {}
        to_read = [name for name in names if cached.get(name) is None]
        found = {name: self._chunks_of(name, pages) for name, pages in cached.items() if pages is not None}
        if not to_read:
            return found
        # In a short-lived child process, so pdfminer never stays in the service's memory (it is ~25 MB).
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {name: pool.submit(_read_pdf_pages, self.path / name) for name in to_read}
            for name, future in futures.items():
                pages = self._pages_of(name, future)
                if pages is not None and self.cache:
                    self.cache.put(self.path / name, pages)
                found[name] = self._chunks_of(name, pages or [])
        return found

    def _pages_of(self, name: str, pages_read: Future[_Pages]) -> _Pages | None:
        try:
            return pages_read.result()
        except Exception as exc:  # pdfminer raises many unrelated types for damaged files
            logger.warning("Knowledge base: skipping {}, it cannot be read as a PDF ({!r})", name, exc)
            return None

    def _chunks_of(self, name: str, pages: _Pages) -> list[_Entry]:
        started = time.perf_counter()
        chunks = [
            _Entry(Chunk(name, number, text), headings)
            for number, paragraphs in pages
            for text, headings in _split_into_chunks(paragraphs, self.chunk_chars)
        ]
        if not chunks:
            logger.warning("Knowledge base: {} has no extractable text (scanned images?)", name)
        logger.debug(
            "Knowledge base: {} read, {} pages, {} chunks, {:.2f}s",
            name,
            len(pages),
            len(chunks),
            time.perf_counter() - started,
        )
        return chunks


class _PageCache:
    """Extracted pages per PDF content hash, as JSON files; a folder that cannot be written disables it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._warned = False

    def get(self, pdf: Path) -> _Pages | None:
        try:
            stored = json.loads(self._file(pdf).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if stored.get("version") != CACHE_VERSION:
            return None
        return [
            (number, [(bool(h), text) for h, text in paragraphs]) for number, paragraphs in stored["pages"]
        ]

    def put(self, pdf: Path, pages: _Pages) -> None:
        try:
            self.folder.mkdir(exist_ok=True)
            target = self._file(pdf)
            partial = target.with_suffix(".tmp")
            partial.write_text(json.dumps({"version": CACHE_VERSION, "pages": pages}, ensure_ascii=False))
            partial.replace(target)  # a reader never sees half a file
        except OSError as exc:
            if not self._warned:
                logger.warning(
                    "Knowledge base: PDF cache {} cannot be written ({}); reading PDFs each start",
                    self.folder,
                    exc,
                )
                self._warned = True

    def _file(self, pdf: Path) -> Path:
        return self.folder / f"{hashlib.sha256(pdf.read_bytes()).hexdigest()}.json"


def _read_pdf_pages(path: Path) -> _Pages:
    """(page number from 1, paragraphs) for each page; runs in the reading child process."""
    from services.pdf_text import read_pdf_pages

    return read_pdf_pages(path)


@dataclass(frozen=True)
class _Entry:
    chunk: Chunk
    # The headings the chunk starts with. Their words count twice: a section titled "Тариф Старт" is more
    # about that tariff than a list that mentions it in passing.
    headings: str


class _Bm25Index:
    def __init__(self, entries: list[_Entry]) -> None:
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


def _split_into_chunks(paragraphs: list[tuple[bool, str]], limit: int) -> list[tuple[str, str]]:
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
