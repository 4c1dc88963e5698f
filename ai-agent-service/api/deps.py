"""What routes need, as typed dependency aliases; everything comes from app.state (built by app.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncSession

from config.queue import Broker
from config.settings import Settings
from services.message_consumer import AgentDeps


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.agent.session_factory() as session:
        yield session


def get_agent(request: Request) -> AgentDeps:
    return request.app.state.agent


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_broker(request: Request) -> Broker:
    return request.app.state.agent.broker


# Declared as a security scheme, so the OpenAPI docs show an Authorize button for it.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


def require_api_key(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
) -> None:
    expected = settings.ADMIN_API_KEY.get_secret_value().encode()
    # compare_digest: the time taken does not tell how much of a guessed key was right.
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected):
        client = request.client.host if request.client else "unknown"
        # The presented value is never logged: it may be a real key sent to the wrong service.
        logger.warning(
            "Refused {} {} from {}: {} X-API-Key",
            request.method,
            request.url.path,
            client,
            "missing" if x_api_key is None else "wrong",
        )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Missing or invalid X-API-Key header")


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def get_page(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
AgentDep = Annotated[AgentDeps, Depends(get_agent)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
BrokerDep = Annotated[Broker, Depends(get_broker)]
PageDep = Annotated[Page, Depends(get_page)]
ApiKey = Depends(require_api_key)
