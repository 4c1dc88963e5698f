"""FastAPI dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from sandbox.background import Background
from sandbox.state import SandboxState


def get_state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def get_background(request: Request) -> Background:
    return request.app.state.background


StateDep = Annotated[SandboxState, Depends(get_state)]
BackgroundDep = Annotated[Background, Depends(get_background)]
