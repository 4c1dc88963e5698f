"""The spec's loguru setup (stdout + daily files kept 30 days), with secrets masked in every record."""

import logging
import sys
import traceback
from pathlib import Path

from loguru import logger

STDOUT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan> - <level>{message}</level>"
)
MASK = "***"


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class _InterceptHandler(logging.Handler):
    """Routes stdlib logging (uvicorn, httpx, aio-pika) through loguru so it is masked too."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str, secrets: list[str], log_dir: str | Path = "logs") -> None:
    # Short values would mask ordinary words; real tokens and keys are long.
    masked = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def patch(record) -> None:
        record["message"] = redact(record["message"], masked)
        caught = record["exception"]
        if caught is not None:
            # A traceback is rendered by the sink, after this patcher: render it here instead, so that an
            # exception text carrying a secret (an httpx error with a URL, say) is masked like the message.
            rendered = "".join(traceback.format_exception(caught.type, caught.value, caught.traceback))
            record["message"] += "\n" + redact(rendered.rstrip(), masked)
            record["exception"] = None

    logger.remove()
    logger.configure(patcher=patch)
    # diagnose=False: loguru's annotated tracebacks print local variables, e.g. request headers.
    logger.add(sys.stdout, format=STDOUT_FORMAT, level=level, diagnose=False)
    logger.add(
        str(Path(log_dir) / "app_{time:YYYY-MM-DD}.log"),
        rotation="00:00",
        retention="30 days",
        level="DEBUG",
        encoding="utf-8",
        diagnose=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # One INFO line per HTTP request to Wappi would drown the log at a 5 s polling interval.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = [_InterceptHandler()]
        logging.getLogger(name).propagate = False
