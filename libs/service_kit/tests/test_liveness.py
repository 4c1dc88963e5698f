"""Stopping the worker loops: each ends, even one whose first cancel a library turned into an error of its
own that the loop's `except Exception` survived."""

import asyncio
from datetime import UTC, datetime

from service_kit.liveness import Liveness


class ChannelClosed(Exception):
    """What a broker client may raise instead of letting a cancel through."""


async def a_loop_whose_first_cancel_becomes_an_error(rounds: list[str]) -> None:
    while True:
        try:
            try:
                await asyncio.sleep(3600)  # e.g. opening a channel
            except asyncio.CancelledError:
                if not rounds:
                    raise ChannelClosed("connection was not opened") from None
                raise
        except ChannelClosed:
            rounds.append("survived a cancel")
        await asyncio.sleep(0.05)  # the loop's wait for its next round


async def test_stopping_ends_a_loop_that_survived_its_first_cancel():
    liveness = Liveness(clock=lambda: datetime(2026, 12, 8, 6, tzinfo=UTC))
    rounds: list[str] = []
    task = liveness.start_loop("poller", a_loop_whose_first_cancel_becomes_an_error(rounds), stall_after=60)
    await asyncio.sleep(0)

    await asyncio.wait_for(liveness.stop_loops(), timeout=5)

    assert task.cancelled() and rounds == ["survived a cancel"]
