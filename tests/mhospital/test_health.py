"""/healthz reports the database, the channel layer and a real Celery worker's heartbeat."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.core.cache import cache
from django.test import Client

from mhospital.health import HEARTBEAT_KEY

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_without_a_worker_is_degraded(db) -> None:  # type: ignore[no-untyped-def]
    cache.delete(HEARTBEAT_KEY)
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] and body["channel_layer"]["ok"]
    assert body["worker"] == {"ok": False, "error": "no worker heartbeat yet"}


def test_healthz_sees_a_real_worker_and_notices_when_it_stops(db, settings) -> None:  # type: ignore[no-untyped-def]
    cache.delete(HEARTBEAT_KEY)
    settings.WORKER_HEARTBEAT_SECONDS = 1
    env = {**os.environ, "WORKER_HEARTBEAT_SECONDS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mhospital", "worker", "--pool", "solo", "-n", "healthz-test@%h"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, body = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            body = Client().get("/healthz").json()
            if body["worker"]["ok"]:
                break
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.5)
        assert body["status"] == "ok", body
        assert body["worker"]["hostname"].startswith("healthz-test@")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    time.sleep(3.5)  # three missed one-second beats
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"]["ok"] is False
