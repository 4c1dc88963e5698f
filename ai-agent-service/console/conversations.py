"""The conversations page: every chat, newest activity first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.deps import RuntimeDep, SessionDep
from console.pages import render
from console.session import SignedIn
from models import Contact

router = APIRouter(include_in_schema=False)


@router.get("/console/conversations")
async def conversations(
    request: Request, _: SignedIn, runtime: RuntimeDep, session: SessionDep
) -> HTMLResponse:
    contacts = await session.scalars(
        select(Contact).order_by(Contact.last_message_at.desc().nulls_last(), Contact.id).limit(100)
    )
    return render(request, "conversations.html", {"contacts": contacts.all()}, runtime=runtime)
