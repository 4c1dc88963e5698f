"""The console's doors on HTTP: every page needs a signed-in session (else the browser goes to the sign-in
page), every action also the session's CSRF token (else 403). Routes declare what they need:

    async def page(request: Request, session: SignedIn): ...        # a page or a live fragment
    async def action(request: Request, session: CsrfChecked): ...   # a POST that changes something

A form sends the token as its `csrf_token` field, htmx as the X-CSRF-Token header (base.html sets it)."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from api.deps import RuntimeDep
from console.auth import ConsoleAuth, ConsoleSession

SESSION_COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
HOME = "/console/conversations"


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page (and back to `next` after it)."""

    def __init__(self, next_path: str):
        self.next_path = next_path


class ConsoleRefusal(Exception):
    """A console request refused with a page saying why (in Russian), e.g. a missing CSRF token, and a link
    `back` to where the operator came from."""

    def __init__(self, status_code: int, message: str, *, back: str = HOME):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.back = back


def console_auth(runtime: RuntimeDep) -> ConsoleAuth:
    return runtime.console


ConsoleAuthDep = Annotated[ConsoleAuth, Depends(console_auth)]


def signed_in(request: Request, auth: ConsoleAuthDep) -> ConsoleSession:
    session = auth.read(request.cookies.get(SESSION_COOKIE), signed_in=True)
    if session is None:
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(asked if request.method == "GET" else HOME)
    request.state.console_session = session  # the templates put its CSRF token in every form
    return session


SignedIn = Annotated[ConsoleSession, Depends(signed_in)]


async def csrf_checked(request: Request, session: SignedIn) -> ConsoleSession:
    presented = request.headers.get(CSRF_HEADER) or (await request.form()).get(CSRF_FIELD)
    if not same_token(presented, session.csrf):
        raise ConsoleRefusal(
            403,
            "Действие отклонено: у формы нет действительного ключа защиты. "
            "Обновите страницу и повторите действие.",
        )
    return session


CsrfChecked = Annotated[ConsoleSession, Depends(csrf_checked)]


def same_token(presented: object, expected: str) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(presented.encode(), expected.encode())


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: float) -> None:
    """HttpOnly, SameSite=Strict, for /console only; Secure when the request came over HTTPS (told by a
    trusted proxy's X-Forwarded-Proto as uvicorn reads it: FORWARDED_ALLOW_IPS)."""
    response.set_cookie(
        name,
        value,
        max_age=int(max_age),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/console", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def sign_in_url(next_path: str) -> str:
    return f"/console/sign-in?next={quote(safe_next(next_path), safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if not next_path or not next_path.startswith("/console") or next_path.startswith("//"):
        return HOME
    if "\\" in next_path or any(ord(char) < 32 for char in next_path):
        return HOME
    return next_path
