"""What routes need, as typed dependency aliases over the runtime app.py built (app.state.runtime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from config.runtime import Runtime
from service_kit.api import api_key_dependency
from services.follow_up_scheduler import FollowUpDeps
from services.message_consumer import AgentDeps


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


def _agent(runtime: RuntimeDep) -> AgentDeps:
    return runtime.agent


def _follow_ups(runtime: RuntimeDep) -> FollowUpDeps:
    return runtime.follow_ups


class Page(BaseModel):
    limit: int = Field(default=50, ge=1, le=500, description="Items per page")
    offset: int = Field(default=0, ge=0, description="Items to skip")


SessionDep = Annotated[AsyncSession, Depends(_session)]
AgentDep = Annotated[AgentDeps, Depends(_agent)]
FollowUpsDep = Annotated[FollowUpDeps, Depends(_follow_ups)]
PageDep = Annotated[Page, Query()]
ApiKey = api_key_dependency(lambda request: get_runtime(request).settings.ADMIN_API_KEY.get_secret_value())
