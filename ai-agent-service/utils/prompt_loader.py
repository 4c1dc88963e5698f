"""Prompt templates from prompts/*.txt, re-read when the file changes so editing a prompt needs no restart."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from loguru import logger


class PromptError(Exception):
    """A prompt file is missing, unreadable, lacks a placeholder, or a render misses a value."""


class PromptTemplate:
    """A prompt with `{name}` placeholders: `constants` are filled in the same way in every render (the
    business's name), the other placeholders by each render's values; the file must have them all.

    Substitution is literal (no str.format): prompts contain JSON examples with braces of their own.
    """

    def __init__(
        self, path: Path, placeholders: set[str], constants: Mapping[str, str] | None = None
    ) -> None:
        self.path = Path(path)
        self.constants = dict(constants or {})
        self.placeholders = frozenset(placeholders) | self.constants.keys()
        self._text, self._stamp = self._load()
        self._edited: str | None = None  # a version saved in the console, which takes the file's place

    @property
    def text(self) -> str:
        if self._edited is not None:
            return self._edited
        self._reload_if_changed()
        return self._text

    @property
    def file_text(self) -> str:
        """The file's text, edited in the console or not."""
        self._reload_if_changed()
        return self._text

    def missing_from(self, text: str) -> set[str]:
        """The placeholders `text` lacks to take this prompt's place."""
        return {name for name in self.placeholders if "{" + name + "}" not in text}

    def use_edited(self, text: str | None) -> None:
        """From now on renders `text` instead of the file (None: the file again); PromptError if it lacks a
        placeholder."""
        missing = self.missing_from(text) if text is not None else set()
        if missing:
            raise PromptError(f"{self.path.name}: the edited version lacks {_braced(missing)}")
        self._edited = text

    def render(self, **values: object) -> str:
        values = {**self.constants, **values}
        missing = self.placeholders - values.keys()
        if missing:
            raise PromptError(f"{self.path.name}: no value given for {_braced(missing)}")
        text = self.text
        if not values:
            return text
        # One pass over the text, so a value that itself contains "{name}" (a client can type anything)
        # is never expanded again.
        pattern = re.compile("|".join(re.escape("{" + name + "}") for name in values))
        return pattern.sub(lambda match: str(values[match.group(0)[1:-1]]), text)

    def _load(self) -> tuple[str, tuple[int, int]]:
        try:
            stat = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PromptError(f"Prompt file {self.path} cannot be read: {exc}") from exc
        missing = self.missing_from(text)
        if missing:
            raise PromptError(f"Prompt file {self.path} lacks the placeholder {_braced(missing)}")
        return text, (stat.st_mtime_ns, stat.st_size)

    def _reload_if_changed(self) -> None:
        stamp = _stamp_of(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a broken edit is reported once, not on every render
        try:
            self._text, self._stamp = self._load()
        except PromptError as exc:
            logger.error("{}; keeping the last good version", exc)
            return
        logger.info("Prompt {} reloaded", self.path.name)


def _stamp_of(path: Path) -> tuple[int, int] | None:
    # Size as well as mtime: two writes within the file system's timestamp granularity share an mtime.
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _braced(names: set[str] | frozenset[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names))
