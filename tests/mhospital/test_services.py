"""With DATABASE_URL and REDIS_URL set (CI), the suite really runs on PostgreSQL and Redis."""

import os

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
    from channels_redis.core import RedisChannelLayer

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    cache.set("mhospital:test", "через Redis", 30)
    assert cache.get("mhospital:test") == "через Redis"

    # Two layer instances stand for two ASGI server processes: a message crosses between them.
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    sender, receiver = RedisChannelLayer(**config), RedisChannelLayer(**config)

    async def cross() -> dict[str, str]:
        channel = await receiver.new_channel()
        await sender.send(channel, {"type": "test.message", "text": "hello from another process"})
        message = await receiver.receive(channel)
        await sender.close_pools()
        await receiver.close_pools()
        return message

    assert async_to_sync(cross)()["text"] == "hello from another process"
