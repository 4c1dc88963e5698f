"""Stopping the worker loops: each ends, even one whose first cancel a library turned into an error of its
own that the loop's `except Exception` survived."""

import asyncio
from datetime import UTC, datetime

from service_kit.liveness import Liveness, run_every


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


async def test_a_failed_round_is_tried_again_and_a_cancel_ends_the_loop():
    rounds: list[str] = []
    beats: list[int] = []
    third = asyncio.Event()

    async def one_round() -> None:
        rounds.append("round")
        if len(rounds) == 1:
            raise ConnectionError("database restarting")
        if len(rounds) == 3:
            third.set()

    loop = asyncio.create_task(
        run_every(0.01, one_round, what="Test round", heartbeat=lambda: beats.append(len(rounds)))
    )
    await asyncio.wait_for(third.wait(), timeout=10)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    assert loop.cancelled()
    assert beats[:3] == [1, 2, 3]  # the failed round beats too: the loop itself is alive
