"""Channel layers tuned for thousands of sockets per process: channels-redis (core and pub/sub), and
Channels' in-memory layer for one process.

The core layer: its connection pool sized and bounded per process. redis-py's asyncio pool either grows
without limit (7.x) or, once capped, raises "Too many connections" instead of waiting (8.x caps it at 100
by default), which fails channels-redis at a few hundred sockets. Here the pool is a BlockingConnectionPool
of CHANNELS_REDIS_CONNECTIONS: a burst waits for a free connection (up to CHANNELS_REDIS_POOL_TIMEOUT
seconds) and Redis sees a known number of clients.

The pub/sub layer: each socket's channel waits on an inbox that holds nothing while it is empty. The layer
gives every channel an asyncio.Queue, which is four deques (its items, getters, putters and a "finished"
event's waiters) of about 650 bytes each, kept for the socket's lifetime: 2.5 KB of a call socket's ~40
(bench/BENCHMARKS.md, issue 6).
"""

import asyncio
import time
from collections import deque
from typing import Any

from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close
from redis import asyncio as aioredis


class PooledRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args: Any, max_connections: int = 64, pool_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections, self.pool_timeout = max_connections, pool_timeout

    def create_pool(self, index: int) -> aioredis.BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address")
        return aioredis.BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )


class Inbox:
    """The part of asyncio.Queue the pub/sub layer uses (put_nowait, get), unbounded like the layer's, its
    messages and waiters in containers that exist only while there are any. Getters are served first come,
    first served; a getter cancelled after it was woken passes the message on, as asyncio.Queue does."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: deque[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = deque()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_next()  # woken, then cancelled: the message goes to the next getter
                raise
            finally:
                if not self._getters:
                    self._getters = None
        return self.get_nowait()

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                break
        if not self._getters:
            self._getters = None


class _InboxLoopLayer(RedisPubSubLoopLayer):
    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = Inbox()
        await self._get_shard(channel).subscribe(channel)


class InboxPubSubChannelLayer(RedisPubSubChannelLayer):
    """channels-redis' pub/sub layer with an Inbox per channel instead of an asyncio.Queue."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _InboxLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer


class SweptInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer (one process: `make run`), its sweep for expired messages run at most once a
    second. The layer sweeps every channel's queue and every group on each receive, so with a thousand
    sockets each message handled cost a pass over a thousand queues: most of the event loop's time under the
    signalling bench (bench/BENCHMARKS.md, issue 6). Messages expire after a minute and group places after a
    day: swept once a second, they go at most a second later."""

    sweep_seconds = 1.0
    _swept = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept >= self.sweep_seconds:
            self._swept = now
            super()._clean_expired()
