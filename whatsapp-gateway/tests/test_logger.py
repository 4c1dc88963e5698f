"""Logging: the spec's stdout format and daily file, with secrets masked."""

import logging

from loguru import logger


def files_text(log_dir) -> str:
    """Every log file's lines: the daily rotation may fall inside a test and start a second file."""
    return "".join(path.read_text(encoding="utf-8") for path in sorted(log_dir.glob("app_*.log")))


def test_secrets_are_masked_in_stdout_and_in_the_log_file(production_logging, capsys):
    token = "wappi-token-abcdef"
    log_dir = production_logging([token, "gemini-key-123456"])
    logger.info("calling Wappi with {} and gemini-key-123456", token)
    logging.getLogger("httpx").warning("header Authorization: %s", token)
    logger.complete()
    written = files_text(log_dir)
    out = capsys.readouterr().out
    assert token not in out and token not in written and "gemini-key-123456" not in written
    assert "calling Wappi with *** and ***" in out
    assert "header Authorization: ***" in written
    assert " | INFO     | " in out


def test_a_secret_inside_an_exception_is_masked_in_its_traceback(production_logging, capsys):
    key = "gemini-key-in-a-url-42"
    log_dir = production_logging([key])

    def call_with_key_in_url() -> None:
        headers = {"x-goog-api-key": key}  # a local that an annotated traceback would print
        raise ConnectionError(f"GET https://example.test/v1/models?key={key} failed ({len(headers)})")

    try:
        call_with_key_in_url()
    except ConnectionError:
        logger.exception("Gemini call failed")
    logger.complete()
    written = files_text(log_dir)
    out = capsys.readouterr().out
    assert "Gemini call failed" in written and "Traceback" in written
    assert "?key=*** failed" in written and "?key=*** failed" in out
    assert key not in written and key not in out
