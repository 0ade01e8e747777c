"""Redis goes away while images arrive, and comes back: every image a modality was told is stored gets
processed, once. The database is the record of what is pending; the periodic sweep queues it again.

The web server, the worker and Redis are processes of their own (Redis a private one on a port of its own,
so that stopping it disturbs nothing else); the test reads the shared test database."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from knox.models import AuthToken

from diagnostics.models import Instance
from tests.conftest import Network, PatientFactory, StaffFactory, database_url, dicom_for, need

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Redis:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder, self.process = port, folder, None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        _wait(lambda: _answers(self.port), "Redis")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(done, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} not ready within {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, Redis, dict[str, str]]]:
    """A private Redis, an ASGI server and a Celery worker on it, sharing the test database and media."""
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    need("redis-server", bool(shutil.which("redis-server")))
    redis = Redis(_free_port(), tmp_path)
    redis.start()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "IMAGING_STUCK_MINUTES": "0",  # the sweep, as it runs ten minutes after the outage
        "LOG_LEVEL": "WARNING",
    }
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "mhospital.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mhospital", "worker", "--pool", "solo", "-n", f"outage-{port}@%h"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _answers(port), "the ASGI server")
        yield f"http://127.0.0.1:{port}", redis, env
    finally:
        for process in (server, worker, redis.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _stow(base: str, token: str, data: bytes) -> requests.Response:
    body = b"\r\n--B\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--B--"
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=B',
        "Accept": "application/dicom+json",
    }
    return requests.post(f"{base}/dicom-web/studies", data=body, headers=headers, timeout=60)


def _all_ready(count: int) -> bool:
    return Instance.objects.filter(status=Instance.Status.READY).count() == count


def test_images_accepted_while_redis_is_down_are_processed_once_it_is_back(
    platform: tuple[str, Redis, dict[str, str]], network_a: Network
) -> None:
    base, redis, env = platform
    clinician = StaffFactory(hospital=network_a.regional).user
    _, token = AuthToken.objects.create(clinician)
    patient = PatientFactory(hospital=network_a.regional)

    before = _stow(base, token, dicom_for(patient))
    assert before.status_code == 200, before.text
    _wait(lambda: _all_ready(1), "the image stored before the outage")

    redis.kill()
    during = [_stow(base, token, dicom_for(patient, sample)) for sample in ("MR_small.dcm", "CT_small.dcm")]
    # Stored and answered as stored: the modality has no reason to send them again.
    assert [answer.status_code for answer in during] == [200, 200], [answer.text[:300] for answer in during]
    assert Instance.objects.count() == 3
    assert Instance.objects.filter(status=Instance.Status.QUEUED).count() == 2

    redis.start()
    sweep = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c",
         "from diagnostics.services import instances_requeue_stuck; print(instances_requeue_stuck())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert sweep.stdout.strip().splitlines()[-1] == "2"
    _wait(lambda: _all_ready(3), "the images accepted during the outage", timeout=120)
    assert sorted(Instance.objects.values_list("attempts", flat=True)) == [1, 1, 1]  # each processed once
