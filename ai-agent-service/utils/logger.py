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
            exc = record["exception"].value
            if exc is not None and any(secret in str(exc) for secret in masked):
                # Tracebacks print str(exc); a secret inside the exception text must not reach a sink.
                record["exception"] = None
                record["message"] += " [exception text withheld: it contained a secret]"

    logger.remove()
    logger.configure(patcher=mask_secrets)
    logger.add(sys.stdout, format=LOG_FORMAT, level=level)
    logger.add(
        str(log_dir / "app_{time:YYYY-MM-DD}.log"),
        rotation="00:00",
        retention="30 days",
        level="DEBUG",
        encoding="utf-8",
        enqueue=True,
    )
