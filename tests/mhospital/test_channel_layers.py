"""The pub/sub layer's per-channel inbox delivers like the asyncio.Queue it replaces."""

import asyncio

import pytest

from mhospital.channel_layers import Inbox


@pytest.mark.asyncio
async def test_messages_come_out_in_order_and_a_getter_waits_for_the_next() -> None:
    inbox = Inbox()
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert [await inbox.get(), await inbox.get()] == ["a", "b"]
    assert inbox.empty()
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    inbox.put_nowait("c")
    assert await asyncio.wait_for(waiting, 1) == "c"


@pytest.mark.asyncio
async def test_each_message_goes_to_one_getter_first_come_first_served() -> None:
    inbox = Inbox()
    first, second = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == [1, 2]


@pytest.mark.asyncio
async def test_a_getter_cancelled_after_it_was_woken_leaves_the_message_to_the_next() -> None:
    inbox = Inbox()
    first, second = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("only")  # wakes the first getter
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()


@pytest.mark.asyncio
async def test_a_cancelled_getter_is_forgotten() -> None:
    inbox = Inbox()
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    inbox.put_nowait("kept")
    assert inbox.qsize() == 1
    assert await inbox.get() == "kept"
