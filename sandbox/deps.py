"""FastAPI dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from sandbox.state import SandboxState


def get_state(request: Request) -> SandboxState:
    return request.app.state.sandbox


StateDep = Annotated[SandboxState, Depends(get_state)]
