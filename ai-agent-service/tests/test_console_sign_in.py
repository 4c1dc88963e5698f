"""The console's doors: nothing without a signed-in session, a session only for the right password, a
lock-out after repeated wrong ones that holds across replicas, sessions that expire, and no action without
the session's CSRF token."""

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr

import console
from app import create_app
from tests.conftest import ADMIN_KEY
from tests.console_client import MovableClock, browser, csrf_of, sign_in

PASSWORD = "пароль-консоли-42"
MAX_FAILURES = 3


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


async def running_apps(stack: AsyncExitStack, settings, clock: MovableClock, count: int) -> list[FastAPI]:
    """`count` replicas of the service over one database, each with its own process state."""
    console = {
        "CONSOLE_PASSWORD": SecretStr(PASSWORD),
        "CONSOLE_MAX_FAILED_SIGN_INS": MAX_FAILURES,
        "CONSOLE_LOCKOUT_MINUTES": 15,
        "CONSOLE_SESSION_HOURS": 8,
    }
    apps = []
    for _ in range(count):
        app = create_app(settings.model_copy(update=console), clock=clock)
        await stack.enter_async_context(app.router.lifespan_context(app))
        apps.append(app)
    return apps


@pytest.fixture
async def app(settings, db, broker, gemini, queues, clock) -> AsyncIterator[FastAPI]:
    async with AsyncExitStack() as stack:
        [app] = await running_apps(stack, settings, clock, 1)
        yield app


@pytest.mark.parametrize(
    "path",
    ["/console/conversations", "/console/conversations?q=%2B7701", "/console"],
)
async def test_a_page_without_a_session_sends_the_browser_to_sign_in(app, path):
    async with browser(app) as client:
        answer = await client.get(path)
        if path == "/console":
            answer = await client.get(answer.headers["location"])

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=/console/conversations")


async def test_a_live_fragment_without_a_session_sends_the_whole_page_to_sign_in(app):
    async with browser(app) as client:
        answer = await client.get(
            "/console/conversations",
            headers={"HX-Request": "true", "HX-Current-URL": "http://agent.test/console/conversations?q=7"},
        )

    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/console/sign-in?next=/console/conversations%3Fq%3D7"


async def test_the_right_password_opens_the_asked_page_with_a_strict_httponly_cookie(app):
    async with browser(app) as client:
        answer = await sign_in(client, PASSWORD, next_path="/console/conversations?q=Айгерим")
        page = await client.get(answer.headers["location"])

    assert answer.status_code == 303
    assert unquote(answer.headers["location"]) == "/console/conversations?q=Айгерим"
    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert f"Max-Age={8 * 3600}" in cookie
    assert page.status_code == 200 and "Разговоры" in page.text and "Выйти" in page.text


async def test_over_https_the_session_cookie_is_secure(app):
    async with browser(app, scheme="https") as client:
        answer = await sign_in(client, PASSWORD)

    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("console_session="))
    assert "Secure" in cookie


async def test_the_admin_key_is_the_password_only_when_console_password_is_unset(
    settings, db, broker, gemini, queues, clock
):
    async with AsyncExitStack() as stack:
        [own_password] = await running_apps(stack, settings, clock, 1)
        fallback = create_app(settings, clock=clock)
        await stack.enter_async_context(fallback.router.lifespan_context(fallback))
        async with browser(own_password) as a, browser(fallback) as b:
            refused = await sign_in(a, ADMIN_KEY)
            accepted = await sign_in(b, ADMIN_KEY)

    assert refused.status_code == 401
    assert accepted.status_code == 303 and accepted.headers["location"] == "/console/conversations"


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/", "//evil.example/", "/contacts", "/console\\@x"]
)
async def test_signing_in_never_leads_off_the_console(app, next_path):
    async with browser(app) as client:
        answer = await sign_in(client, PASSWORD, next_path=next_path)

    assert answer.headers["location"] == "/console/conversations"


async def test_a_sign_in_without_its_form_token_counts_nothing_and_signs_nobody_in(app):
    async with browser(app) as client:
        await client.get("/console/sign-in")
        forged = await client.post("/console/sign-in", data={"password": PASSWORD, "csrf_token": "x"})
        page = await client.get("/console/conversations")

    assert forged.status_code == 403 and "Форма входа устарела" in forged.text
    assert page.status_code == 303


async def test_wrong_passwords_lock_the_address_out_on_every_replica_and_say_until_when(
    settings, db, broker, gemini, queues, clock
):
    async with AsyncExitStack() as stack:
        first, second = await running_apps(stack, settings, clock, 2)
        async with browser(first, "10.2.0.1") as a, browser(second, "10.2.0.1") as b:
            wrong = [await sign_in(client, "угадал?") for client in (a, b, a)]
            clock.advance(minutes=1)
            right_but_locked = await sign_in(b, PASSWORD)
            async with browser(first, "10.2.0.2") as elsewhere:
                other_address = await sign_in(elsewhere, PASSWORD)
            clock.advance(minutes=14, seconds=1)
            after_the_lockout = await sign_in(a, PASSWORD)

    assert [answer.status_code for answer in wrong] == [401, 401, 429]
    assert "Осталось попыток до блокировки входа: 2" in wrong[0].text
    assert "Осталось попыток до блокировки входа: 1" in wrong[1].text
    # Locked at 15:00 Astana for CONSOLE_LOCKOUT_MINUTES: until 15:15, shown a minute later as 14 min away.
    assert right_but_locked.status_code == 429
    assert "Вход закрыт до 15:15 (ещё 14 мин)" in right_but_locked.text
    assert other_address.status_code == 303
    assert after_the_lockout.status_code == 303


async def test_a_right_password_clears_the_count_of_wrong_ones(app):
    async with browser(app) as client:
        for _ in range(MAX_FAILURES - 1):
            await sign_in(client, "нет")
        await sign_in(client, PASSWORD)
        client.cookies.clear()  # another browser at the same address
        again = [await sign_in(client, "нет") for _ in range(MAX_FAILURES - 1)]

    assert [answer.status_code for answer in again] == [401] * (MAX_FAILURES - 1)


async def test_wrong_passwords_far_apart_never_lock_anyone_out(app, clock):
    async with browser(app) as client:
        answers = []
        for _ in range(MAX_FAILURES * 2):
            answers.append(await sign_in(client, "нет"))
            clock.advance(minutes=16)

    assert {answer.status_code for answer in answers} == {401}


async def test_a_session_ends_after_console_session_hours(app, clock):
    async with browser(app) as client:
        await sign_in(client, PASSWORD)
        clock.advance(hours=7, minutes=59)
        still_in = await client.get("/console/conversations")
        clock.advance(minutes=1)
        expired = await client.get("/console/conversations")

    assert still_in.status_code == 200
    assert expired.status_code == 303 and expired.headers["location"].startswith("/console/sign-in")


async def test_a_forged_or_foreign_cookie_is_no_session(app, settings, clock):
    async with browser(app) as client:
        client.cookies.set("console_session", "eyJjc3JmIjoieCJ9.forged", path="/console")
        forged = await client.get("/console/conversations")
        # The sign-in form's own cookie is signed too, but it is not a session.
        await client.get("/console/sign-in")
        form_cookie = client.cookies.get("console_sign_in", path="/console")
        client.cookies.set("console_session", form_cookie, path="/console")
        form_as_session = await client.get("/console/conversations")

    assert forged.status_code == 303 and form_as_session.status_code == 303


async def test_an_action_needs_the_sessions_csrf_token(app):
    async with browser(app) as client:
        await sign_in(client, PASSWORD)
        token = await csrf_of(client)
        without = await client.post("/console/sign-out")
        wrong = await client.post("/console/sign-out", data={"csrf_token": token[:-2] + "xx"})
        still_in = await client.get("/console/conversations")
        by_header = await client.post("/console/sign-out", headers={"X-CSRF-Token": token})
        signed_out = await client.get("/console/conversations")

    assert without.status_code == 403 and "Действие отклонено" in without.text
    assert wrong.status_code == 403
    assert still_in.status_code == 200
    assert by_header.status_code == 303 and by_header.headers["location"] == "/console/sign-in?signed_out=1"
    assert signed_out.status_code == 303


async def test_an_action_without_a_session_goes_to_sign_in(app):
    async with browser(app) as client:
        answer = await client.post("/console/sign-out", data={"csrf_token": "x"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/conversations"


async def test_console_pages_are_never_cached_nor_framed(app):
    async with browser(app) as client:
        await sign_in(client, PASSWORD)
        page = await client.get("/console/conversations")
        script = await client.get("/console/static/htmx.min.js")
        missing = await client.get("/console/static/..%2Fauth.py")

    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and script.text.startswith("var htmx=")
    assert missing.status_code == 404


async def test_every_console_route_but_the_sign_in_needs_a_session(app):
    open_to_all = {("GET", "/console"), ("GET", "/console/sign-in"), ("POST", "/console/sign-in")}
    open_to_all.add(("GET", "/console/static/{name}"))
    checked = []
    async with browser(app) as client:
        for route in (route for part in console.ROUTERS for route in part.routes):
            assert isinstance(route, APIRoute) and route.path.startswith("/console")
            for method in route.methods - {"HEAD"}:
                if (method, route.path) in open_to_all:
                    continue
                path = re.sub(r"\{[^}]+\}", "77010000001", route.path)
                answer = await client.request(method, path, data={"csrf_token": "x", "text": "x"})
                checked.append((method, route.path, answer.status_code, answer.headers.get("location", "")))

    assert len(checked) >= 12
    assert [c for c in checked if c[2] != 303 or not c[3].startswith("/console/sign-in?next=")] == []
