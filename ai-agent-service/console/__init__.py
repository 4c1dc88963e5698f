"""The operator console at /console: server-rendered pages in Russian (Jinja2, htmx for the live parts),
behind a password sign-in (console/auth.py, console/session.py). Routes take the runtime and a database
session like the API's (api/deps.py) and declare SignedIn or CsrfChecked; a new page adds its router below
and its entry to console.pages.NAV."""

from fastapi import APIRouter

from console import (
    actions,
    calls,
    conversation,
    conversations,
    health,
    knowledge,
    pages,
    prompts,
    sign_in,
    try_it,
)
from console.pages import EXCEPTION_HANDLERS

ROUTERS = (
    pages.router,
    sign_in.router,
    conversations.router,
    conversation.router,
    actions.router,
    calls.router,
    knowledge.router,
    prompts.router,
    health.router,
    try_it.router,
)
router = APIRouter(include_in_schema=False)
for part in ROUTERS:
    router.include_router(part)

__all__ = ["EXCEPTION_HANDLERS", "ROUTERS", "router"]
