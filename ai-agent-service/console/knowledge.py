"""The knowledge-base page: the PDFs the bot answers from (pages, chunks, when indexed), uploading a new one
or replacing one (checked by services/knowledge_upload.py, then indexed at once), and "try a question": the
passages the bot would put in its prompt for a client's question, found the way a reply finds them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Path, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import RuntimeDep
from config.runtime import Runtime
from console.pages import render
from console.session import ConsoleRefusal, CsrfChecked, SignedIn
from services.ai_sales_agent import KNOWLEDGE_CHUNKS
from services.knowledge_base import KnowledgeBase
from services.knowledge_upload import PdfRefused, UploadRules, checked_name, store_pdf

router = APIRouter(include_in_schema=False)
PAGE = "/console/knowledge"
Question = Annotated[str, Query(max_length=500)]
FileName = Annotated[str, Path(max_length=130)]
NOTICES = {
    "added": "PDF «{name}» добавлен, база знаний переиндексирована.",
    "replaced": "PDF «{name}» заменён, база знаний переиндексирована.",
}


@router.get(PAGE)
async def knowledge_page(
    request: Request, _: SignedIn, runtime: RuntimeDep, q: Question = "", done: str = "", name: str = ""
) -> HTMLResponse:
    base = _base(runtime)
    passages = await asyncio.to_thread(base.search, q, KNOWLEDGE_CHUNKS) if q.strip() else []
    context = {
        "files": base.files,
        "question": q,
        "passages": passages,
        "notice": NOTICES[done].format(name=name) if done in NOTICES else "",
        "max_mb": runtime.settings.CONSOLE_MAX_PDF_MB,
    }
    return render(request, "knowledge.html", context, runtime=runtime)


@router.post(PAGE)
async def add_pdf(
    _: CsrfChecked, runtime: RuntimeDep, file: Annotated[UploadFile, File()]
) -> RedirectResponse:
    name = _refusing(lambda: checked_name(file.filename))
    if any(known.name == name for known in _base(runtime).files):
        message = f"PDF «{name}» уже есть: чтобы обновить его, нажмите «Заменить» в его строке."
        raise ConsoleRefusal(409, message, back=PAGE)
    await _store(runtime, name, file)
    return _back("added", name)


@router.post(PAGE + "/{name}/replace")
async def replace_pdf(
    _: CsrfChecked, runtime: RuntimeDep, name: FileName, file: Annotated[UploadFile, File()]
) -> RedirectResponse:
    if not any(known.name == name for known in _base(runtime).files):
        raise ConsoleRefusal(404, f"PDF «{name}» в базе знаний нет.", back=PAGE)
    _refusing(lambda: checked_name(file.filename))
    await _store(runtime, name, file)
    return _back("replaced", name)


async def _store(runtime: Runtime, name: str, file: UploadFile) -> None:
    rules = UploadRules(max_mb=runtime.settings.CONSOLE_MAX_PDF_MB)
    content = await file.read(rules.max_bytes + 1)  # one byte over says it is too large, without reading all
    try:
        await store_pdf(_base(runtime), name, content, rules)
    except PdfRefused as exc:
        raise ConsoleRefusal(422, f"PDF не принят: {exc.reason}", back=PAGE) from exc


def _refusing(check: Callable[[], str]) -> str:
    try:
        return check()
    except PdfRefused as exc:
        raise ConsoleRefusal(422, f"PDF не принят: {exc.reason}", back=PAGE) from exc


def _base(runtime: Runtime) -> KnowledgeBase:
    return runtime.knowledge.knowledge_base


def _back(done: str, name: str) -> RedirectResponse:
    return RedirectResponse(
        f"{PAGE}?{urlencode({'done': done, 'name': name})}", status_code=status.HTTP_303_SEE_OTHER
    )
