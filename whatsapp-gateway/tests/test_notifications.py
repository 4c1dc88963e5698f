"""Notifications to managers (outgoing kind "notification"): sent only to a number in the gateway's own
MANAGERS, even a whitelisted one; refused and dead-lettered with the reason to anyone else. Every other kind
stays refused to whitelisted numbers, managers' included."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service_kit.managers import parse_managers
from tests.conftest import ADMIN_KEY, collect, running_gateway, sent_by_bot, settled_row

KEY = {"X-API-Key": ADMIN_KEY}
CUSTOMER = "77011234567"
OWNER = "77752837306"  # a manager whose number is also whitelisted (seeded)
MANAGER = "77017654321"


@pytest.fixture
async def gateway_with_managers(settings, clean) -> AsyncIterator[httpx.AsyncClient]:
    managers = parse_managers("Айгерим:+7 775 283 73 06, Данияр:8 701 765 43 21")
    async with running_gateway(settings.model_copy(update={"MANAGERS": managers})) as (_, client):
        yield client


def notification(phone: str, outgoing_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "phone_number": phone,
        "message_text": "Новый звонок: Иван, завтра в 11:00, wa.me/77011234567",
        "outgoing_id": outgoing_id,
        "sent_by": "notification",
        "kind": "notification",
        **fields,
    }


@pytest.mark.usefixtures("gateway_with_managers")
async def test_a_notification_goes_to_a_manager_even_one_whose_number_is_whitelisted(
    sandbox, publish, queues, sessions
):
    await publish(queues.outgoing, notification(OWNER, "n-owner"))
    await publish(queues.outgoing, notification(MANAGER, "n-manager"))
    sent = await sent_by_bot(sandbox, 2)
    assert sorted(m["recipient"] for m in sent) == [MANAGER, OWNER]
    row = await settled_row(sessions, "n-owner")
    assert (row.queue_status, row.sent_by) == ("sent", "notification")


@pytest.mark.usefixtures("gateway_with_managers")
async def test_a_notification_to_anyone_but_a_manager_is_refused_and_dead_lettered_with_the_reason(
    sandbox, publish, queues, broker, sessions
):
    await publish(queues.outgoing, notification(CUSTOMER, "n-customer"))
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert (
        f"recipient {CUSTOMER} is not in MANAGERS: the gateway sends notifications to managers only"
        in dead[0]["_amqp"].headers["x-dlq-reason"]
    )
    assert await sent_by_bot(sandbox, 1, wait_s=0.5) == []
    assert (await settled_row(sessions, "n-customer")).queue_status == "refused"


@pytest.mark.usefixtures("gateway_with_managers")
@pytest.mark.parametrize("kind", [{"kind": "message"}, {}])
async def test_any_other_kind_to_a_whitelisted_manager_is_refused(sandbox, publish, queues, broker, kind):
    await publish(
        queues.outgoing,
        {"phone_number": OWNER, "message_text": "Добрый день!", "outgoing_id": "m-owner", **kind},
    )
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert f"{OWNER} is whitelisted" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert await sent_by_bot(sandbox, 1, wait_s=0.5) == []


async def test_without_managers_no_notification_goes_anywhere(gateway, sandbox, publish, queues, broker):
    await publish(queues.outgoing, notification(MANAGER, "n-nobody"))
    dead = await collect(broker, f"{queues.outgoing}.dlq", expect=1)
    assert "is not in MANAGERS" in dead[0]["_amqp"].headers["x-dlq-reason"]
    assert await sent_by_bot(sandbox, 1, wait_s=0.5) == []


async def test_the_manual_endpoint_sends_a_notification_to_a_manager_only(gateway_with_managers, sandbox):
    client = gateway_with_managers
    body = {"message_text": "Проверка уведомлений", "kind": "notification"}
    refused = await client.post("/test/send-message", headers=KEY, json={**body, "phone_number": CUSTOMER})
    accepted = await client.post("/test/send-message", headers=KEY, json={**body, "phone_number": OWNER})
    assert refused.status_code == 403 and "not in MANAGERS" in refused.json()["detail"]
    assert accepted.status_code == 202
    assert [(m["recipient"], m["body"]) for m in await sent_by_bot(sandbox, 1)] == [
        (OWNER, "Проверка уведомлений")
    ]
