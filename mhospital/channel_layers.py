"""channels-redis with its connection pool sized and bounded per process.

redis-py's asyncio pool either grows without limit (7.x) or, once capped, raises "Too many connections"
instead of waiting (8.x caps it at 100 by default), which fails channels-redis at a few hundred sockets.
Here the pool is a BlockingConnectionPool of CHANNELS_REDIS_CONNECTIONS: a burst waits for a free
connection (up to CHANNELS_REDIS_POOL_TIMEOUT seconds) and Redis sees a known number of clients.
"""

from typing import Any

from channels_redis.core import RedisChannelLayer
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
