"""Personal data in the logs: at INFO a client's number is masked and no words of the conversation (the
client's, the model's) are written; DEBUG, for a developer's machine, may carry them."""

import sys

from loguru import logger

from service_kit.logs import setup_logging
from tests.conftest import incoming

PHONE = "77015550123"
QUESTION = "Сколько стоит хранение паллеты на складе в Алматы?"
MODEL_REPLY = "Хранение паллеты стоит по тарифу, расскажите про объём?"
REASONING = "клиент спрашивает про хранение паллеты"


async def handle_one_message_logged_at(level, tmp_path, capsys, settings, api, gemini, queues) -> str:
    gemini.moderator = lambda prompt: {"isClient": True, "confidence": 0.9, "reasoning": REASONING}
    gemini.sales = lambda prompt: {
        "reply": MODEL_REPLY,
        "stance": "asking",
        "agreed_to_call": False,
        "proposed_call_time": None,
        "confirmed_call_time": False,
    }
    setup_logging(level, settings.secret_values(), log_dir=tmp_path)
    try:
        await queues.publish_incoming(incoming(QUESTION, phone=PHONE, business="ТОО Склад"))
        assert await queues.wait_for(queues.outgoing_queue.name)
        await logger.complete()
    finally:
        logger.remove()
        logger.add(sys.stderr)
    files = list(tmp_path.glob("*.log"))
    assert len(files) == 1
    return files[0].read_text(encoding="utf-8") + capsys.readouterr().out


async def test_info_logs_mask_the_number_and_carry_no_words_of_the_conversation(
    tmp_path, capsys, settings, api, gemini, queues
):
    logged = await handle_one_message_logged_at("INFO", tmp_path, capsys, settings, api, gemini, queues)

    assert "7701***0123" in logged and "classified: client" in logged
    assert PHONE not in logged
    for words in ("паллеты", "Сколько стоит", "расскажите про объём", REASONING):
        assert words not in logged, words


async def test_debug_logs_may_carry_the_number_and_the_models_reasoning(
    tmp_path, capsys, settings, api, gemini, queues
):
    logged = await handle_one_message_logged_at("DEBUG", tmp_path, capsys, settings, api, gemini, queues)

    assert PHONE in logged and REASONING in logged
