"""Signing in and out of the console: a password form (its own CSRF token in a short-lived cookie), the
lock-out after repeated wrong passwords from one address, the session cookie, sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response
from loguru import logger

from api.deps import RuntimeDep
from console.auth import SIGN_IN_FORM_LIFETIME
from console.pages import Times, render
from console.session import (
    HOME,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    ConsoleAuthDep,
    CsrfChecked,
    forget_cookie,
    safe_next,
    same_token,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
PASSWORD_LIMIT = 1000


@router.get("/console")
async def console_home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/console/sign-in")
async def sign_in_form(
    request: Request, runtime: RuntimeDep, auth: ConsoleAuthDep, next: str | None = None
) -> Response:
    if auth.read(request.cookies.get(SESSION_COOKIE), signed_in=True) is not None:
        return RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    return _form(request, runtime, auth, next_path=safe_next(next), notice=_notice(request))


@router.post("/console/sign-in")
async def sign_in(
    request: Request,
    runtime: RuntimeDep,
    auth: ConsoleAuthDep,
    password: Annotated[str, Form(max_length=PASSWORD_LIMIT)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    next_path = safe_next(next)
    form = auth.read(request.cookies.get(SIGN_IN_COOKIE), signed_in=False)
    if form is None or not same_token(csrf_token, form.csrf):
        # A form from elsewhere, or left open for over an hour: a fresh one, nothing counted.
        error = "Форма входа устарела. Введите пароль ещё раз."
        return _form(request, runtime, auth, next_path=next_path, error=error, status_code=403)
    address = _client_address(request)
    check = await auth.check_password(address, password)
    if check.accepted:
        logger.info("Console sign-in from {}", address)
        response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
        value, _ = auth.issue(signed_in=True)
        set_cookie(request, response, SESSION_COOKIE, value, auth.session_lifetime.total_seconds())
        forget_cookie(request, response, SIGN_IN_COOKIE)
        return response
    times = Times(runtime.agent.hours.tz, auth.clock())
    if check.locked_until is not None:
        logger.warning("Console sign-in from {} refused: locked out until {}", address, check.locked_until)
        error = (
            "Слишком много неверных паролей с вашего адреса. Вход закрыт до "
            f"{times.at(check.locked_until)} (ещё {times.until(check.locked_until)}). Попробуйте снова позже."
        )
        return _form(request, runtime, auth, next_path=next_path, error=error, status_code=429)
    logger.warning("Console sign-in from {}: wrong password", address)
    error = f"Неверный пароль. Осталось попыток до блокировки входа: {check.attempts_left}."
    return _form(request, runtime, auth, next_path=next_path, error=error, status_code=401)


@router.post("/console/sign-out")
async def sign_out(request: Request, _: CsrfChecked) -> Response:
    response = RedirectResponse("/console/sign-in?signed_out=1", status_code=status.HTTP_303_SEE_OTHER)
    forget_cookie(request, response, SESSION_COOKIE)
    return response


def _form(
    request: Request,
    runtime: RuntimeDep,
    auth: ConsoleAuthDep,
    *,
    next_path: str,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The sign-in page with a fresh form token in its own cookie (the session cookie is left alone)."""
    value, form = auth.issue(signed_in=False)
    context = {"form_token": form.csrf, "next": next_path, "notice": notice, "error": error}
    response = render(request, "sign_in.html", context, runtime=runtime, status_code=status_code)
    set_cookie(request, response, SIGN_IN_COOKIE, value, SIGN_IN_FORM_LIFETIME.total_seconds())
    return response


def _notice(request: Request) -> str | None:
    return "Вы вышли из консоли." if request.query_params.get("signed_out") else None


def _client_address(request: Request) -> str:
    # The connection's address, or the one a trusted proxy reported (uvicorn's FORWARDED_ALLOW_IPS).
    return (request.client.host if request.client else "unknown")[:64]
