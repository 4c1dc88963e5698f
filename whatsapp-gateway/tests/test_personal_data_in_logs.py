"""Personal data in the gateway's logs: at INFO a client's number is masked and neither the client's words
nor the bot's reply are written, on the way in (poller) and on the way out (sender)."""

import pytest
from loguru import logger

from tests.conftest import collect, inject, running_gateway, sent_by_bot, settled_row, wait_first_poll

pytestmark = pytest.mark.usefixtures("clean")
CUSTOMER = "77015550123"
QUESTION = "Сколько стоит хранение паллеты?"
REPLY = "Хранение паллеты стоит по тарифу"


async def test_info_logs_mask_the_number_and_carry_no_message_text(
    settings, sessions, broker, queues, sandbox, publish, production_logging, capsys
):
    log_dir = production_logging(settings.secret_values(), level="INFO")
    async with running_gateway(settings):
        await wait_first_poll(sessions)
        incoming = await inject(sandbox, phone=CUSTOMER, text=QUESTION)
        assert await collect(broker, queues.incoming, expect=1)
        body = {"phone_number": CUSTOMER, "message_text": REPLY, "reply_to_message_id": incoming["id"]}
        await publish(queues.outgoing, {**body, "outgoing_id": "out-logs", "sent_by": "reply"})
        assert await sent_by_bot(sandbox, 1)
        assert (await settled_row(sessions, "out-logs")).queue_status == "sent"
    await logger.complete()

    files = list(log_dir.glob("app_*.log"))
    logged = "".join(f.read_text(encoding="utf-8") for f in files) + capsys.readouterr().out
    assert "Sent out-logs to 7701***0123" in logged, logged
    assert CUSTOMER not in logged
    assert "паллеты" not in logged
