"""The prompts page: the three prompts (sales, moderator, follow-up) to read and edit, each save a new version
in the database (services/prompt_versions.py) that the bot uses from its next reply; a save that drops a
placeholder the prompt needs is refused naming it; any earlier version, or the file, can be restored."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import RuntimeDep, SessionDep
from config.runtime import Runtime
from console.pages import render
from console.session import ConsoleRefusal, CsrfChecked, SignedIn
from models import PromptVersion
from services.prompt_versions import (
    PlaceholdersMissing,
    apply_live_versions,
    save_version,
    template_of,
    versions_of,
)

router = APIRouter(include_in_schema=False)
PromptName = Annotated[Literal["sales_agent", "moderator", "follow_up"], Path()]
PromptText = Annotated[str, Form(min_length=1, max_length=100_000)]
VersionId = Annotated[int, Path(ge=1)]
TITLES = {
    "sales_agent": "Продавец (ответы клиентам)",
    "moderator": "Модератор (клиент или нет)",
    "follow_up": "Дожим (касания молчащим клиентам)",
}
NOTICES = {
    "saved": "Сохранено: бот использует новую версию со следующего ответа.",
    "restored": "Версия восстановлена: бот использует её со следующего ответа.",
}


@router.get("/console/prompts")
async def prompts_page(request: Request, _: SignedIn, runtime: RuntimeDep) -> RedirectResponse:
    return RedirectResponse("/console/prompts/sales_agent", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/console/prompts/{name}")
async def prompt_page(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep, name: PromptName, done: str = ""
) -> HTMLResponse:
    template = template_of(runtime.prompts, name)
    context = {
        "name": name,
        "titles": TITLES,
        "text": template.text,
        "placeholders": sorted(template.placeholders),
        "versions": await versions_of(session, name),
        "notice": NOTICES.get(done, ""),
    }
    return render(request, "prompts.html", context, runtime=runtime)


@router.post("/console/prompts/{name}")
async def save_prompt(
    _: CsrfChecked, runtime: RuntimeDep, name: PromptName, text: PromptText
) -> RedirectResponse:
    await _save(runtime, name, text.replace("\r\n", "\n"), None)
    return _back(name, "saved")


@router.post("/console/prompts/{name}/versions/{version_id}/restore")
async def restore_version(
    _: CsrfChecked, runtime: RuntimeDep, name: PromptName, version_id: VersionId
) -> RedirectResponse:
    async with runtime.sessions() as session:
        version = await session.get(PromptVersion, version_id)
    if version is None or version.prompt != name:
        raise ConsoleRefusal(404, "Такой версии нет.", back=_page(name))
    await _save(runtime, name, version.text, f"восстановлена версия {version_id}")
    return _back(name, "restored")


@router.post("/console/prompts/{name}/restore-file")
async def restore_file(_: CsrfChecked, runtime: RuntimeDep, name: PromptName) -> RedirectResponse:
    template = template_of(runtime.prompts, name)
    await _save(runtime, name, template.file_text, f"восстановлен файл {template.path.name}")
    return _back(name, "restored")


async def _save(runtime: Runtime, name: str, text: str, note: str | None) -> None:
    try:
        async with runtime.sessions.begin() as session:
            await save_version(session, runtime.prompts, name, text, runtime.agent.clock(), note)
    except PlaceholdersMissing as exc:
        braced = ", ".join("{" + missing + "}" for missing in exc.names)
        word = "подстановки" if len(exc.names) == 1 else "подстановок"
        raise ConsoleRefusal(
            422, f"Не сохранено: в тексте нет обязательной {word} {braced}.", back=_page(name)
        ) from exc
    await apply_live_versions(runtime.sessions, runtime.prompts)


def _page(name: str) -> str:
    return f"/console/prompts/{name}"


def _back(name: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{_page(name)}?done={done}", status_code=status.HTTP_303_SEE_OTHER)
