"""The pub/sub layer's per-channel inbox delivers like the asyncio.Queue it replaces."""

import asyncio

import pytest

from mhospital.channel_layers import Inbox, SweptInMemoryChannelLayer


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


@pytest.mark.asyncio
async def test_the_in_memory_layer_still_drops_expired_messages_and_delivers_the_rest() -> None:
    layer = SweptInMemoryChannelLayer(expiry=0.2, capacity=10)
    stale, live = await layer.new_channel(), await layer.new_channel()
    await layer.send(stale, {"type": "stale"})
    await layer.send(live, {"type": "first"})
    assert await layer.receive(live) == {"type": "first"}  # sweeps now, with nothing expired yet
    await asyncio.sleep(1.1)  # past the message's expiry and the sweep's second
    await layer.send(live, {"type": "second"})
    assert await layer.receive(live) == {"type": "second"}  # this receive's sweep drops the stale one
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stale), 0.2)
