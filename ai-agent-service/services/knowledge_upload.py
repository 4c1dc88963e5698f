"""Adding or replacing a PDF of the knowledge base (the console's upload): the file is checked before it
takes the place of anything — a PDF by its first bytes, within the size limit, readable, and with text to
find (a scan without a text layer would give the bot nothing) — then moved into the folder in one step, and
the index rebuilt. What is refused says why, in Russian, for the operator."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from services.knowledge_base import KnowledgeBase, KnowledgeFile

PDF_MAGIC = b"%PDF-"
# A name the folder keeps as given: letters (any alphabet), digits, dot, dash, underscore, space.
_SAFE_NAME = re.compile(r"^[\w][\w .\-]{0,120}\.pdf$", re.IGNORECASE)
_UPLOADING_SUFFIX = ".uploading"  # not .pdf: the folder's watcher ignores a half-checked file


class PdfRefused(Exception):
    """The upload is not taken; `reason` says why, for the operator."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UploadRules:
    max_mb: float  # CONSOLE_MAX_PDF_MB

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)


def checked_name(filename: str | None) -> str:
    """The file's own name (no folders), if the folder may keep it as it is."""
    name = Path((filename or "").replace("\\", "/")).name.strip()
    if not name.lower().endswith(".pdf"):
        raise PdfRefused("Можно загрузить только PDF-файл (имя должно оканчиваться на .pdf).")
    if not _SAFE_NAME.match(name):
        raise PdfRefused(
            "Имя файла может содержать только буквы, цифры, пробел, точку, дефис и подчёркивание "
            "(до 120 знаков)."
        )
    return name


def check_content(content: bytes, rules: UploadRules) -> None:
    """What can be told without reading the PDF: its size and its first bytes."""
    if len(content) > rules.max_bytes:
        raise PdfRefused(f"Файл больше допустимого размера ({rules.max_mb:g} МБ).")
    if not content.startswith(PDF_MAGIC):
        raise PdfRefused("Это не PDF: файл не начинается с заголовка PDF.")


async def store_pdf(base: KnowledgeBase, name: str, content: bytes, rules: UploadRules) -> KnowledgeFile:
    """Checks `content` and puts it in the knowledge base as `name` (replacing a PDF of that name), then
    re-indexes; raises PdfRefused, leaving the base as it was."""
    check_content(content, rules)
    staged = base.path / f".{secrets.token_hex(8)}{_UPLOADING_SUFFIX}"
    try:
        await asyncio.to_thread(staged.write_bytes, content)
        pages = await _read_in_child(staged)
        if not any(text.strip() for _, paragraphs in pages for _, text in paragraphs):
            raise PdfRefused(
                "В PDF нет текста, который можно извлечь: похоже, это скан (картинки страниц). "
                "Загрузите PDF с текстовым слоем (например, после распознавания текста)."
            )
        await asyncio.to_thread(os.replace, staged, base.path / name)
    finally:
        staged.unlink(missing_ok=True)
    await asyncio.to_thread(base.refresh, {name: pages})
    return next(file for file in base.files if file.name == name)


async def _read_in_child(path: Path) -> list:
    """The PDF's pages, read in a spawned process as the knowledge base reads them (pdfminer stays out of
    the service's memory); a file pdfminer cannot read is refused."""
    try:
        return await asyncio.to_thread(_read_once, path)
    except Exception as exc:  # pdfminer raises many unrelated types for damaged files
        raise PdfRefused("Файл повреждён или не читается как PDF.") from exc


def _read_once(path: Path) -> list:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_read_pdf_pages, path).result()


def _read_pdf_pages(path: Path) -> list:
    from services.pdf_text import read_pdf_pages

    return read_pdf_pages(path)
