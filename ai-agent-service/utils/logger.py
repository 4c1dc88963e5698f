"""The spec's loguru setup (stdout + daily files kept 30 days) with secrets masked in every record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from loguru import logger

LOG_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan> - <level>{message}</level>"
)
MASK = "***"


def setup_logging(level: str, secrets: list[str], log_dir: Path = Path("logs")) -> None:
    masked = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def mask_secrets(record: Any) -> None:
        for secret in masked:
            if secret in record["message"]:
                record["message"] = record["message"].replace(secret, MASK)
        if record["exception"] is not None:
            texts = _exception_chain_texts(record["exception"].value)
            if any(secret in text for text in texts for secret in masked):
                # Tracebacks print every chained exception's text; a secret in one must not reach a sink.
                record["exception"] = None
                record["message"] += " [exception text withheld: it contained a secret]"

    logger.remove()
    logger.configure(patcher=mask_secrets)
    # diagnose=False: loguru would otherwise print the values of variables in every traceback frame,
    # among them HTTP headers with the Gemini key.
    logger.add(sys.stdout, format=LOG_FORMAT, level=level, diagnose=False)
    logger.add(
        str(log_dir / "app_{time:YYYY-MM-DD}.log"),
        rotation="00:00",
        retention="30 days",
        level="DEBUG",
        encoding="utf-8",
        enqueue=True,
        diagnose=False,
    )


def _exception_chain_texts(exc: BaseException | None) -> list[str]:
    texts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return texts
