"""Forgetting a person with the whole system running: the agent's POST /contacts/{phone}/forget erases the
conversation there, and the gateway, told over the broker, erases its message logs of the number."""

import asyncio

import httpx

from system import ADMIN_KEY, fetch

PHONE = "77011110901"


async def gateway_rows(system) -> int:
    sql = "SELECT count(*) AS n FROM message_logs WHERE phone_number = $1"
    return (await fetch(system.gateway.database_url, sql, PHONE))[0]["n"]


async def test_forget_on_the_agent_erases_the_person_in_both_services(system, customer):
    await customer.write(PHONE, "Добрый день! Сколько стоит тариф Старт?", business_name="ТОО Забвение")
    await customer.wait_sent_to(PHONE, 1)
    assert await gateway_rows(system) >= 1

    async with httpx.AsyncClient(base_url=system.agent.url, headers={"X-API-Key": ADMIN_KEY}) as agent:
        response = await agent.post(f"/contacts/{PHONE}/forget")
    assert response.status_code == 200 and response.json()["erased"]["contacts"] == 1

    for _ in range(100):
        if await gateway_rows(system) == 0:
            break
        await asyncio.sleep(0.1)
    assert await gateway_rows(system) == 0
    sql = "SELECT count(*) AS n FROM contacts WHERE phone_number = $1"
    assert (await fetch(system.agent.database_url, sql, PHONE))[0]["n"] == 0
