"""Logging: the spec's stdout format and daily file, with secrets masked."""

import logging
import sys

from loguru import logger

from utils.logger import setup_logging


def test_secrets_are_masked_in_stdout_and_in_the_log_file(tmp_path, capsys):
    token = "wappi-token-abcdef"
    try:
        setup_logging("INFO", [token, "gemini-key-123456"], log_dir=tmp_path)
        logger.info("calling Wappi with {} and gemini-key-123456", token)
        logging.getLogger("httpx").warning("header Authorization: %s", token)
        logger.complete()
        files = list(tmp_path.glob("app_*.log"))
        written = files[0].read_text(encoding="utf-8")
    finally:
        logger.remove()
        logger.add(sys.stderr)
        logging.basicConfig(handlers=[], force=True)
    out = capsys.readouterr().out
    assert token not in out and token not in written and "gemini-key-123456" not in written
    assert "calling Wappi with *** and ***" in out
    assert "header Authorization: ***" in written
    assert " | INFO     | " in out
