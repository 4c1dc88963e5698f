"""How console pages are made: the Jinja2 templates, the navigation, the times shown in the business's zone,
the static files, and the answers to a refused or signed-out request. A page route ends with

    return render(request, "conversations.html", {"rows": rows}, runtime=runtime)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from config.runtime import Runtime
from console.session import HOME, ConsoleRefusal, SignInRequired, sign_in_url

HERE = Path(__file__).resolve().parent
# console.css, and htmx.min.js: htmx 2.0.11 (0BSD) as the npm registry's htmx.org package ships it.
STATIC_DIR = HERE / "static"
STATIC_FILES = {path.name: path for path in STATIC_DIR.iterdir() if path.is_file()}
templates = Jinja2Templates(directory=HERE / "templates")

# The navigation: (path, label). A page joins the console by adding itself here.
NAV = (
    ("/console/conversations", "Разговоры"),
    ("/console/calls", "Созвоны"),
    ("/console/knowledge", "База знаний"),
    ("/console/prompts", "Промпты"),
    ("/console/health", "Состояние"),
)
# Only on a sandbox install (SANDBOX_URL): the page that plays a customer (console/try_it.py).
SANDBOX_NAV = (("/console/try", "Как клиент"),)
# How often live parts (the conversation list, a conversation) ask for news, in seconds.
LIVE_EVERY_S = 3
# Pages show personal data: never cached, never framed, scripts only from the console itself.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Times:
    """Times as the business reads them: its own zone, and how long ago."""

    tz: Any
    now: datetime

    def at(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        local = moment.astimezone(self.tz)
        today = self.now.astimezone(self.tz).date()
        return local.strftime("%H:%M" if local.date() == today else "%d.%m.%Y %H:%M")

    def until(self, moment: datetime) -> str:
        """How long until `moment`, a started minute counted whole."""
        return duration(moment - self.now + timedelta(seconds=59))

    def ago(self, moment: datetime | None) -> str:
        """ "5 мин", "2 ч 10 мин", "3 дн" since `moment`."""
        if moment is None:
            return ""
        return duration(self.now - moment)


def duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} мин"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} ч {rest} мин" if rest else f"{hours} ч"
    return f"{minutes // (24 * 60)} дн"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    runtime: Runtime,
    status_code: int = 200,
) -> HTMLResponse:
    """The page with what every template may use: the navigation, the session's CSRF token and `times`."""
    session = getattr(request.state, "console_session", None)
    base = {
        "nav": NAV + (SANDBOX_NAV if runtime.settings.SANDBOX_URL else ()),
        "path": request.url.path,
        "csrf_token": session.csrf if session else "",
        "signed_in": session is not None and session.signed_in,
        "times": Times(runtime.agent.hours.tz, runtime.agent.clock()),
        "live_every": f"{LIVE_EVERY_S}s",
    }
    response = templates.TemplateResponse(request, template, base | context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/console/static/{name}")
async def static_file(name: str) -> FileResponse:
    path = STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such file")
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"})


async def sign_in_required(request: Request, exc: Exception) -> Response:
    """To the sign-in page; a live fragment asking (htmx) makes the whole page go there."""
    assert isinstance(exc, SignInRequired)
    if request.headers.get("HX-Request") == "true":
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        target = sign_in_url(page.path + (f"?{page.query}" if page.query else ""))
        return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": target})
    return RedirectResponse(sign_in_url(exc.next_path), status_code=status.HTTP_303_SEE_OTHER)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    context = {"message": exc.message, "back": exc.back}
    return render(
        request, "refused.html", context, runtime=request.app.state.runtime, status_code=exc.status_code
    )


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A console form that does not fit its route gets a page; the API keeps FastAPI's JSON answer."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/console"):
        return await request_validation_exception_handler(request, exc)
    message = "Форма заполнена неверно: " + "; ".join(str(error["msg"]) for error in exc.errors()[:3])
    back = urlsplit(request.headers.get("referer", "")).path or HOME
    return await refused(request, ConsoleRefusal(422, message, back=back))


EXCEPTION_HANDLERS = {
    SignInRequired: sign_in_required,
    ConsoleRefusal: refused,
    RequestValidationError: invalid_request,
}
