"""The knowledge base: every PDF in a folder, read and indexed (services/knowledge_index.py), kept current.

The folder is watched (at most one stat per second): adding, replacing or removing a PDF takes effect
without a restart. PDFs are read in a short-lived spawned process, so pdfminer never stays in the
service's memory. With the cache on (PDF_CACHE_ENABLED), each PDF's extracted text is kept in `.cache/`
beside the PDFs under its content hash, so a restart reads no PDF it has read before.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from services.knowledge_index import Bm25Index, Chunk, IndexedChunk, split_into_chunks

REFRESH_INTERVAL_S = 1.0
CACHE_DIR = ".cache"
CACHE_VERSION = 1  # bump when read_pdf_pages changes what it extracts
# (page number from 1, its (is_heading, text) paragraphs) for each page of a PDF
_Pages = list[tuple[int, list[tuple[bool, str]]]]


@dataclass(frozen=True)
class KnowledgeFile:
    """One PDF as the index holds it (the console's knowledge-base page lists them)."""

    name: str
    size: int  # bytes
    pages: int  # pages read; 0 when it could not be read as a PDF
    chunks: int
    indexed_at: datetime


class KnowledgeBase:
    def __init__(
        self,
        path: Path,
        chunk_chars: int = 800,
        *,
        cache_enabled: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = Path(path)
        self.chunk_chars = chunk_chars
        self.clock = clock  # when a file was indexed, as the service tells time
        self.cache = _PageCache(self.path / CACHE_DIR) if cache_enabled else None
        self._lock = threading.Lock()
        self._stamps: dict[str, tuple[int, int]] | None = None
        self._chunks_by_file: dict[str, tuple[tuple[int, int], list[IndexedChunk]]] = {}
        self._files: dict[str, KnowledgeFile] = {}
        self._index = Bm25Index([])
        self._checked_at = 0.0
        self.refresh()

    @property
    def chunk_count(self) -> int:
        return len(self._index.chunks)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """Everything indexed, in file-name and page order; the same tuple until the base is re-indexed."""
        return self._index.chunks

    @property
    def files(self) -> list[KnowledgeFile]:
        """The PDFs indexed, by name."""
        return [self._files[name] for name in sorted(self._files)]

    def search(self, query: str, limit: int = 4) -> list[Chunk]:
        """Up to `limit` chunks sharing terms with `query`, best first; [] when no term matches."""
        if time.monotonic() - self._checked_at >= REFRESH_INTERVAL_S and self._lock.acquire(blocking=False):
            # While another thread re-indexes, searches keep using the current index instead of waiting.
            try:
                self._refresh_locked()
            finally:
                self._lock.release()
        return self._index.search(query, limit)

    def refresh(self, read: dict[str, _Pages] | None = None) -> bool:
        """Re-index if a PDF was added, changed or removed; True when it did. `read`: pages of files already
        read (an upload checked them), which are not read again."""
        with self._lock:
            return self._refresh_locked(read or {})

    def _refresh_locked(self, read: dict[str, _Pages] | None = None) -> bool:
        self._checked_at = time.monotonic()
        stamps = self._scan()
        if stamps == self._stamps:
            return False
        # Unchanged files keep their chunks: adding one PDF does not re-read a large base.
        unchanged = {name: self._chunks_by_file[name][1] for name in stamps if self._is_cached(name, stamps)}
        fresh, pages = self._read_files([name for name in stamps if name not in unchanged], read or {})
        chunks = unchanged | fresh
        current = {name: (stamp, chunks[name]) for name, stamp in stamps.items()}
        index = Bm25Index([entry for name in sorted(current) for entry in current[name][1]])
        now = self.clock()
        files = {name: self._files[name] for name in unchanged if name in self._files}
        for name, page_count in pages.items():
            files[name] = KnowledgeFile(name, stamps[name][1], page_count, len(chunks[name]), now)
        self._chunks_by_file, self._stamps, self._index, self._files = current, stamps, index, files
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

    def _read_files(
        self, names: list[str], read: dict[str, _Pages]
    ) -> tuple[dict[str, list[IndexedChunk]], dict[str, int]]:
        """The chunks of each file, and how many pages each had."""
        cached: dict[str, _Pages | None] = {name: read[name] for name in names if name in read}
        if self.cache:
            for name, pages in cached.items():
                self.cache.put(self.path / name, pages)
            cached |= {name: self.cache.get(self.path / name) for name in names if name not in cached}
        to_read = [name for name in names if cached.get(name) is None]
        found = {name: self._chunks_of(name, pages) for name, pages in cached.items() if pages is not None}
        page_counts = {name: len(pages) for name, pages in cached.items() if pages is not None}
        if not to_read:
            return found, page_counts
        # A fresh (spawned) child for this batch only: pdfminer (~25 MB) never stays in the service's memory,
        # and nothing of the parent's threads (a fork would copy their held locks) reaches it.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_read_pdf_pages, self.path / name) for name in to_read}
            for name, future in futures.items():
                pages = self._pages_of(name, future)
                if pages is not None and self.cache:
                    self.cache.put(self.path / name, pages)
                found[name] = self._chunks_of(name, pages or [])
                page_counts[name] = len(pages or [])
        return found, page_counts

    def _pages_of(self, name: str, pages_read: Future[_Pages]) -> _Pages | None:
        try:
            return pages_read.result()
        except Exception as exc:  # pdfminer raises many unrelated types for damaged files
            logger.warning("Knowledge base: skipping {}, it cannot be read as a PDF ({!r})", name, exc)
            return None

    def _chunks_of(self, name: str, pages: _Pages) -> list[IndexedChunk]:
        started = time.perf_counter()
        chunks = [
            IndexedChunk(Chunk(name, number, text), headings)
            for number, paragraphs in pages
            for text, headings in split_into_chunks(paragraphs, self.chunk_chars)
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
