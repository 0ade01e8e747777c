"""A real Celery worker for the imaging pipeline tests that depend on one."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from mhospital.health import HEARTBEAT_KEY
from tests.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.started = time.time()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_TASK_ALWAYS_EAGER": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mhospital", "worker", "--pool", "solo", "-n", f"{self.name}@%h"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The worker's heartbeat (mhospital.celery.Heartbeat) says it is consuming: the filesystem broker
        # has no broadcast for a ping.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
            beat = cache.get(HEARTBEAT_KEY)
            if beat and beat["hostname"].startswith(f"{self.name}@") and beat["at"] > self.started:
                return
            time.sleep(0.2)
        raise AssertionError("the Celery worker did not start within 60 s")

    def kill(self) -> None:
        """As a power cut or the OOM killer would: no chance to finish or acknowledge."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker(transactional_db, celery_inline) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    """A real `celery worker` process on the configured broker (Redis in CI, the filesystem locally),
    using the test database and media folder. Tasks are queued to it, not run inline."""
    from mhospital.celery import app

    app.conf.CELERY_TASK_ALWAYS_EAGER = False  # the key the app reads (see celery_inline)
    worker = Worker(f"pipeline-test-{os.getpid()}")
    worker.start()
    yield worker
    worker.stop()
