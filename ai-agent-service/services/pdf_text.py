"""Text of a PDF as (is_heading, text) paragraphs per page, read with pdfminer.

Imported only by the short-lived process that knowledge_base reads PDFs in: pdfminer and pdfplumber take
~25 MB that the service would otherwise keep for its whole life.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import median

import pdfplumber
from pdfminer.pdfdevice import PDFTextDevice
from pdfminer.pdffont import PDFUnicodeNotDefined
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager

# (position along the line, position across lines, end along the line, font size, text)
_Glyph = tuple[float, float, float, float, str]


class _GlyphCollector(PDFTextDevice):
    """Records each glyph's position and text.

    pdfplumber's own extract_text builds a rich object per character and takes ~0.1 s per page; this
    keeps only what line assembly needs and is about ten times faster, which matters for hundreds of pages.
    """

    def __init__(self, resources: PDFResourceManager) -> None:
        super().__init__(resources)
        self.glyphs: list[_Glyph] = []

    def render_char(self, matrix, font, fontsize, scaling, rise, cid, ncs, graphicstate) -> float:
        advance = font.char_width(cid) * fontsize * scaling
        try:
            text = font.to_unichr(cid)
        except PDFUnicodeNotDefined:
            return advance
        a, b, c, d, x, y = matrix
        # Measured in the text's own direction, so pages with /Rotate or turned text read like upright ones.
        scale = math.hypot(a, b) or 1.0
        along_x, along_y = a / scale, b / scale
        along = x * along_x + y * along_y
        across = y * along_x - x * along_y
        self.glyphs.append((along, across, along + advance * scale, fontsize * math.hypot(c, d) or 1.0, text))
        return advance


def read_pdf_pages(path: Path) -> list[tuple[int, list[tuple[bool, str]]]]:
    """(page number from 1, paragraphs) for each page."""
    pages = []
    with pdfplumber.open(path) as pdf:
        resources = PDFResourceManager(caching=True)
        for number, page in enumerate(pdf.pages, start=1):
            collector = _GlyphCollector(resources)
            PDFPageInterpreter(resources, collector).process_page(page.page_obj)
            pages.append((number, _paragraphs(collector.glyphs)))
    return pages


def _paragraphs(glyphs: list[_Glyph]) -> list[tuple[bool, str]]:
    """Glyphs in drawing order → lines (by baseline) → (is_heading, text) paragraphs.

    A paragraph ends at a larger than usual gap between lines or where the font size changes; lines set in
    a larger font than the page's body text are headings.
    """
    lines = _lines(glyphs)
    if not lines:
        return []
    body_size = median(size for _, size, _ in lines)
    baselines = [y for y, _, _ in lines]
    gaps = [above - below for above, below in zip(baselines, baselines[1:], strict=False) if above > below]
    usual_gap = median(gaps) if gaps else 0.0
    paragraphs: list[tuple[bool, list[str]]] = []
    previous_y = 0.0
    for y, size, text in lines:
        is_heading = size > body_size * 1.1
        gap = previous_y - y
        if not paragraphs or paragraphs[-1][0] != is_heading or gap <= 0 or gap > usual_gap * 1.3:
            paragraphs.append((is_heading, []))
        paragraphs[-1][1].append(text)
        previous_y = y
    return [(is_heading, "\n".join(texts)) for is_heading, texts in paragraphs]


def _lines(glyphs: list[_Glyph]) -> list[tuple[float, float, str]]:
    """(baseline y, font size, text) per line; a gap wider than a fifth of the font size is a space."""
    lines: list[tuple[float, float, str]] = []
    parts: list[str] = []
    line_y = line_size = 0.0
    previous_end: float | None = None

    def end_line() -> None:
        text = " ".join("".join(parts).split())
        if text:
            lines.append((line_y, line_size, text))

    for x, y, end, size, text in glyphs:
        if previous_end is None or abs(y - line_y) > max(size, line_size) / 2:
            end_line()
            parts, line_y, line_size = [], y, size
        elif x - previous_end > size * 0.2:
            parts.append(" ")
        parts.append(text)
        previous_end, line_size = end, max(line_size, size)
    end_line()
    return lines
