"""/healthz: database, channel layer and worker status, as JSON for load balancers and people."""

import asyncio
import time
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

HEARTBEAT_KEY = "mhospital:worker-heartbeat"


def worker_heartbeat_write(hostname: str) -> None:
    cache.set(HEARTBEAT_KEY, {"hostname": hostname, "at": time.time()}, timeout=None)


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        # The kind of failure only: /healthz is public, and messages can carry host names and users.
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    backend = type(layer).__name__
    nonce = uuid.uuid4().hex

    async def round_trip() -> bool:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.check", "nonce": nonce})
        message = await asyncio.wait_for(layer.receive(channel), timeout=3)
        return bool(message.get("nonce") == nonce)

    try:
        ok = async_to_sync(round_trip)()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "backend": backend, "error": type(exc).__name__}
    return {"ok": ok, "backend": backend}


def _worker() -> dict[str, Any]:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    if not beat:
        return {"ok": False, "error": "no worker heartbeat yet"}
    age = time.time() - beat["at"]
    # Three missed beats means the worker is gone or stuck.
    ok = age < 3 * settings.WORKER_HEARTBEAT_SECONDS
    return {"ok": ok, "hostname": beat["hostname"], "age_seconds": round(age, 1)}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "channel_layer": _channel_layer(), "worker": _worker()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)
