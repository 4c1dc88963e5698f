"""The spec's loguru setup (stdout + daily files kept 30 days, both at LOG_LEVEL), with secrets masked in
every record, tracebacks included, phone numbers masked at INFO and above (personal data: only DEBUG may
carry them), and the standard library's loggers (uvicorn, httpx, aio-pika) routed through it."""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loguru import logger

STDOUT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan> - <level>{message}</level>"
)
MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; real tokens and keys are long
# A phone is a run of 10 to 15 digits (E.164 without the +); one inside a word (a hex id) is not one.
PHONE_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{2,7}(\d{4})(?![0-9A-Za-z])")
INFO_LEVEL_NO = 20


def mask_phones(text: str) -> str:
    """77011234567 -> 7701***4567: enough to tell two clients apart in a log, not to call them."""
    return PHONE_LIKE.sub(r"\1" + MASK + r"\2", text)


def phone_hash(phone: str) -> str:
    """What a log says instead of a forgotten person's number: enough to match two lines, not to recover
    the number (masking would still show 8 of its digits)."""
    return hashlib.sha256(phone.encode("utf-8")).hexdigest()[:12]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str, secrets: Iterable[str], log_dir: Path = Path("logs")) -> None:
    masked = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def mask(record: Any) -> None:
        record["message"] = redact(record["message"], masked)
        caught = record["exception"]
        if caught is not None:
            # A traceback is rendered by the sink, after this patcher: render it here instead, so that an
            # exception text carrying a secret (an httpx error with a URL, say) is masked like the message.
            rendered = "".join(traceback.format_exception(caught.type, caught.value, caught.traceback))
            record["message"] += "\n" + redact(rendered.rstrip(), masked)
            record["exception"] = None
        if record["level"].no >= INFO_LEVEL_NO:
            record["message"] = mask_phones(record["message"])

    logger.remove()
    logger.configure(patcher=mask)
    # diagnose=False: loguru's annotated tracebacks print local variables, e.g. request headers.
    logger.add(sys.stdout, format=STDOUT_FORMAT, level=level, diagnose=False)
    logger.add(
        str(Path(log_dir) / "app_{time:YYYY-MM-DD}.log"),
        rotation="00:00",
        retention="30 days",
        level=level,
        encoding="utf-8",
        diagnose=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # One INFO line per HTTP request would drown the log at a 5 s polling interval.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = [_InterceptHandler()]
        logging.getLogger(name).propagate = False
