"""Work the sandbox does after answering a request: the HTTP client its pushes go out with, and the tasks
that carry pushes and auto-responders' answers out."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx

PUSH_TIMEOUT_S = 10.0


class Background:
    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=PUSH_TIMEOUT_S)
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)  # kept until done, or the loop could drop it mid-flight
        task.add_done_callback(self.tasks.discard)

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.http.aclose()
