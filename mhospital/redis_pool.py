"""One Redis connection pool per process for Django's cache, whichever thread asks.

Django keeps a cache object per thread, each with its own pool, and under ASGI every request's
synchronous code runs in a thread of its own: each request opened a new connection to Redis (for its
session, its rate limits, a drain's nudge) and closed it when the thread ended. redis-py's pools are safe
to share between threads and start afresh in a forked process.
"""

import threading
from typing import Any, ClassVar

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: ClassVar[dict[tuple[str, str], "SharedConnectionPool"]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "SharedConnectionPool":
        key = (url, repr(sorted(kwargs.items())))
        with cls._shared_lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
