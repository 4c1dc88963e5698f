"""Signing in to the console in Chromium: the password, the lock-out, the way back to the asked page, and
nothing without a session or, for an action, without its CSRF token."""

import re

import httpx
from playwright.async_api import expect

from console.browser import PASSWORD, sign_in


async def test_the_owner_signs_in_and_sees_the_conversations(page):
    await sign_in(page)

    await page.wait_for_url("**/console/conversations")
    await expect(page.get_by_role("heading", name="Разговоры")).to_be_visible()
    await expect(page.get_by_role("link", name="Разговоры")).to_have_attribute("aria-current", "page")

    await page.get_by_role("button", name="Выйти").click()
    await expect(page.get_by_role("status")).to_have_text("Вы вышли из консоли.")
    await page.goto("/console/conversations")
    await expect(page.get_by_label("Пароль")).to_be_visible()


async def test_a_page_asked_for_without_a_session_opens_after_signing_in(page, customer):
    phone = "77014440101"
    await customer.write(phone, "Здравствуйте!", sender_name="Ерлан", business_name="ТОО Ерлан")
    await customer.wait_sent_to(phone, 1)

    await page.goto(f"/console/conversations/{phone}")
    await expect(page.get_by_label("Пароль")).to_be_visible()
    await sign_in(page, path=page.url)

    await page.wait_for_url(f"**/console/conversations/{phone}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Ерлан")


async def test_wrong_passwords_lock_the_sign_in_and_say_until_when(page):
    for attempt in range(1, 5):
        await sign_in(page, "не тот пароль")
        await expect(page.get_by_role("alert")).to_have_text(
            f"Неверный пароль. Осталось попыток до блокировки входа: {5 - attempt}."
        )
    await sign_in(page, "не тот пароль")
    locked = page.get_by_role("alert")
    await expect(locked).to_contain_text("Слишком много неверных паролей с вашего адреса.")
    await expect(locked).to_contain_text(re.compile(r"Вход закрыт до \d\d:\d\d \(ещё 15 мин\)"))

    await sign_in(page, PASSWORD)  # the right one too, from this address, until then
    await expect(page.get_by_role("alert")).to_contain_text("Вход закрыт до")


async def test_an_action_without_the_csrf_token_is_refused(console):
    refused = await console.request.post("/console/sign-out", max_redirects=0)

    assert refused.status == 403
    assert "Действие отклонено" in await refused.text()
    await console.reload()
    await expect(console.get_by_role("heading", name="Разговоры")).to_be_visible()  # still signed in


async def test_without_a_session_pages_and_actions_go_to_sign_in(system, customer):
    phone = "77014440102"
    await customer.write(phone, "Добрый день", sender_name="Айдос", business_name="ТОО Айдос")
    await customer.wait_sent_to(phone, 1)
    async with httpx.AsyncClient(base_url=system.agent.url) as anonymous:
        calls = await anonymous.get("/scheduled-calls", headers={"X-API-Key": "e2e-admin-key"})
        home = await anonymous.get("/console")
        pages = [
            await anonymous.get(path)
            for path in (
                "/console/conversations",
                f"/console/conversations/{phone}",
                "/console/calls",
                "/console/knowledge",
                "/console/prompts/sales_agent",
                "/console/health",
                "/console/try",
            )
        ]
        fragments = [
            await anonymous.get(path, headers={"HX-Request": "true"})
            for path in (
                "/console/conversations/rows",
                f"/console/conversations/{phone}/live",
                f"/console/try/chat?phone={phone}",
            )
        ]
        actions = [
            await anonymous.post(f"/console/conversations/{phone}/{action}", data={"csrf_token": "x"})
            for action in ("take-over", "hand-back", "reply", "classify", "calls", "follow-ups/stop")
        ]
        actions.append(await anonymous.post("/console/calls/1/cancel"))
        for path in (
            "/console/knowledge",
            "/console/knowledge/faq.pdf/replace",
            "/console/prompts/sales_agent",
            "/console/prompts/sales_agent/restore-file",
            "/console/health/dead-letters/incoming_messages/replay",
            "/console/try/messages",
            "/console/try/voice",
        ):
            actions.append(await anonymous.post(path, data={"csrf_token": "x"}))

    assert calls.status_code == 200  # the API keeps its key, nothing else
    assert home.headers["location"] == "/console/conversations"
    for answer in pages + actions:
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in?next=")
    for answer in fragments:
        assert answer.status_code == 401 and answer.headers["HX-Redirect"].startswith("/console/sign-in")


async def test_behind_an_https_proxy_the_session_cookie_is_secure(system):
    # The proxy speaks HTTPS to the browser and plain HTTP to the service; uvicorn trusts it from 127.0.0.1.
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with httpx.AsyncClient(base_url=system.agent.url, headers=headers) as proxy:
        form = await proxy.get("/console/sign-in")
        form_cookie = form.headers["set-cookie"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        signed_in = await proxy.post(
            "/console/sign-in",
            data={"password": PASSWORD, "csrf_token": token},
            headers={"Cookie": form_cookie.split(";")[0]},  # httpx keeps a Secure cookie off plain HTTP
        )

    assert "Secure" in form_cookie
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("console_session="))
    assert signed_in.status_code == 303
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


async def test_an_open_page_whose_session_ends_goes_to_sign_in_by_itself(console):
    await console.context.clear_cookies()  # as when the session runs out while the page stays open

    # The next refresh of the rows finds no session: the whole page goes to sign-in, and back after it.
    await console.wait_for_url("**/console/sign-in?next=/console/conversations*", timeout=15_000)
    await sign_in(console, path=console.url)
    await console.wait_for_url("**/console/conversations*")
    await expect(console.get_by_role("heading", name="Разговоры")).to_be_visible()
