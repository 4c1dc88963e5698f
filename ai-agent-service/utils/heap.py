"""Giving freed memory back to the system after a burst. While a hundred messages are in flight, their
prompts, requests and answers take several MB of the C heap; glibc keeps those pages once they are freed,
so the process stays at its peak. When the last message in flight is done, malloc_trim hands them back
(about 1 ms, at most once per interval). Where the C library has no malloc_trim, nothing is done."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _malloc_trim() -> Callable[[], object]:
    library = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None
    if trim is None:
        return lambda: None
    return lambda: trim(0)


class HeapTrim:
    def __init__(self, min_interval_s: float = 5.0, trim: Callable[[], object] | None = None):
        self._min_interval_s = min_interval_s
        self._trim = trim or _malloc_trim()
        self._in_flight = 0
        self._last = -min_interval_s

    @contextmanager
    def working(self) -> Iterator[None]:
        """Around one message's handling: the last one done trims the heap."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and time.monotonic() - self._last >= self._min_interval_s:
                self._last = time.monotonic()
                self._trim()
