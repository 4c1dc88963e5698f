"""Finding the parts of the agent's prompts by the spec's section markers."""

from __future__ import annotations

import re

# A blank line followed by an upper-case header ("ТЕКУЩАЯ ДАТА И ВРЕМЯ:", "ТВОЙ ОТВЕТ (...)") ends a section.
_NEXT_HEADER = re.compile(r"\n[ \t]*\n(?=[ \t]*[А-ЯЁA-Z][А-ЯЁA-Z0-9 ]{3,}(?::|\s*\())")
_ROLE_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(Клиент|Бот|Менеджер|Оператор)\s*:\s*(.*)$")


def section(text: str, marker: str, ends: tuple[str, ...] = (), *, stop_at_header: bool = True) -> str | None:
    """Text after `marker` up to the first of `ends` (or the next header); None when the marker is absent.

    A marker without a trailing colon names a header line ("ИСТОРИЯ ПЕРЕПИСКИ (последние 20 сообщений):"),
    so the rest of that line is skipped.
    """
    start = text.find(marker)
    if start < 0:
        return None
    rest = text[start + len(marker) :]
    if not marker.endswith(":"):
        rest = rest.split("\n", 1)[1] if "\n" in rest else ""
    end = len(rest)
    for end_marker in ends:
        found = rest.find(end_marker)
        if found >= 0:
            end = min(end, found)
    if stop_at_header:
        header = _NEXT_HEADER.search(rest)
        if header:
            end = min(end, header.start())
    return rest[:end].strip()


def line_value(text: str, label: str) -> str | None:
    """The value on the line "label value", e.g. line_value(prompt, "Название компании:")."""
    match = re.search(re.escape(label) + r"[ \t]*(.*)", text)
    return match.group(1).strip() if match else None


def history_lines(history: str) -> list[tuple[str | None, str]]:
    """(role, text) per non-empty history line; role is None for lines without a "Клиент:"/"Бот:" prefix."""
    lines = []
    for raw in history.splitlines():
        if not raw.strip():
            continue
        match = _ROLE_LINE.match(raw)
        lines.append((match.group(1), match.group(2).strip()) if match else (None, raw.strip()))
    return lines
