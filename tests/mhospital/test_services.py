"""With DATABASE_URL and REDIS_URL set (CI), the suite really runs on PostgreSQL and Redis."""

import os
import threading

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from tests.conftest import need


@pytest.mark.needs_postgres
def test_the_database_is_postgresql(db) -> None:  # type: ignore[no-untyped-def]
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 130000


@pytest.mark.needs_redis
def test_cache_channel_layer_and_broker_are_redis() -> None:
    need("Redis (REDIS_URL)", bool(os.environ.get("REDIS_URL")))
    from django.utils.module_loading import import_string

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    cache.set("mhospital:test", "через Redis", 30)
    assert cache.get("mhospital:test") == "через Redis"

    # Two instances of the configured layer stand for two ASGI server processes: a message crosses between them.
    layer, config = (settings.CHANNEL_LAYERS["default"][key] for key in ("BACKEND", "CONFIG"))
    assert layer.startswith(("channels_redis.", "mhospital.channel_layers."))
    sender, receiver = import_string(layer)(**config), import_string(layer)(**config)

    async def cross() -> dict[str, str]:
        channel = await receiver.new_channel()
        await sender.send(channel, {"type": "test.message", "text": "hello from another process"})
        message = await receiver.receive(channel)
        for layer in (sender, receiver):  # the core layer's pools, or the pub/sub layer's connection
            close_pools = getattr(layer, "close_pools", None)
            await (close_pools() if close_pools is not None else layer.flush())
        return message

    assert async_to_sync(cross)()["text"] == "hello from another process"


@pytest.mark.needs_redis
def test_requests_share_the_processs_redis_connections(client) -> None:  # type: ignore[no-untyped-def]
    """Under ASGI each request runs in a thread of its own; its cache (sessions, rate limits) must not open
    a connection to Redis of its own each time, or a busy server spends its time connecting."""
    need("Redis (REDIS_URL)", bool(os.environ.get("REDIS_URL")))
    import redis
    from django.core.cache import caches

    def connections_made() -> int:
        return int(redis.Redis.from_url(settings.REDIS_URL).info("stats")["total_connections_received"])

    def one_request() -> None:
        assert caches["default"].get("mhospital:absent") is None  # a new thread: a new cache object

    one_request()
    before = connections_made()
    for _ in range(20):
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert connections_made() - before <= 2  # the counting ones
