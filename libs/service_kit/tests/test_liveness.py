"""Stopping the worker loops: a loop that ends on cancel is awaited; one stuck past its cancel is left
behind after the wait instead of keeping the service from stopping."""

import asyncio
from datetime import UTC, datetime

from service_kit.liveness import Liveness


async def a_loop_that_stops_when_cancelled(stopped: list[str]) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        stopped.append("polite")


async def a_loop_that_ignores_its_cancel(release: asyncio.Event) -> None:
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue  # e.g. stuck in a call that swallows the cancel


async def test_stopping_waits_for_the_loops_but_not_for_ever_on_one_that_ignores_its_cancel():
    liveness = Liveness(clock=lambda: datetime(2026, 12, 8, 6, tzinfo=UTC))
    stopped: list[str] = []
    release = asyncio.Event()
    polite = liveness.start_loop("polite", a_loop_that_stops_when_cancelled(stopped), stall_after=60)
    stuck = liveness.start_loop("stuck", a_loop_that_ignores_its_cancel(release), stall_after=60)
    await asyncio.sleep(0)

    await asyncio.wait_for(liveness.stop_loops(wait_s=0.2), timeout=5)

    assert polite.done() and stopped == ["polite"]
    assert not stuck.done()
    release.set()
    await stuck
