"""The console as a browser sees it, for the console's tests: the running app over ASGI at a movable
moment, a client per address, and signing in the way the sign-in form does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from app import create_app
from tests.conftest import WEDNESDAY_3PM, fixed_clock

PASSWORD = "консоль"  # the console password of console_app
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class MovableClock:
    now: datetime = WEDNESDAY_3PM

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@asynccontextmanager
async def browser(
    app: FastAPI, address: str = "10.1.0.1", *, scheme: str = "http"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from `address` that keeps cookies and does not follow redirects (tests look at them)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://agent.test") as client:
        yield client


def form_token(page: httpx.Response) -> str:
    match = FORM_TOKEN.search(page.text)
    assert match, page.text
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, password: str, next_path: str = "") -> httpx.Response:
    """Opens the sign-in form and sends it with `password`."""
    form = await client.get("/console/sign-in", params={"next": next_path} if next_path else None)
    fields = {"password": password, "csrf_token": form_token(form)}
    return await client.post("/console/sign-in", data=fields | ({"next": next_path} if next_path else {}))


async def csrf_of(client: httpx.AsyncClient, path: str = "/console/conversations") -> str:
    """The CSRF token a signed-in page carries in its forms."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return form_token(page)


@asynccontextmanager
async def console_app(settings, **update: object) -> AsyncIterator[FastAPI]:
    """The agent, started, with the console's PASSWORD and `update` on `settings`, at the fixtures' clock."""
    configured = settings.model_copy(update={"CONSOLE_PASSWORD": SecretStr(PASSWORD), **update})
    app = create_app(configured, clock=fixed_clock())
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def signed_in(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the console of `app`."""
    async with browser(app) as client:
        await sign_in(client, PASSWORD)
        yield client
