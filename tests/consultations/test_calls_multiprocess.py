"""Two ASGI server processes on two ports, sharing PostgreSQL (or the SQLite file) and channels-redis: the
specialist's page talks to one, the clinician's to the other, and the call works across them."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.test import Client

from consultations.models import Call
from tests.conftest import database_url, need, verified_login
from tests.consultations.conftest import Sides

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_servers() -> Iterator[list[str]]:
    """Two uvicorn processes of the application, each its own port and process; yields their ws:// bases."""
    need("Redis (REDIS_URL) for channels-redis", bool(os.environ.get("REDIS_URL")))
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,  # the session's auth hash is keyed with it
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "CHANNELS_PREFIX": f"calls-mp-{os.getpid()}",
    }
    ports = [_free_port(), _free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "mhospital.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    try:
        for process, port in zip(processes, ports, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the ASGI server did not start within 60 s"
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.2)
        yield [f"ws://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _cookie(user: Any) -> str:
    client = verified_login(Client(), user)
    return f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}"


async def _next(ws: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


def test_a_call_connects_across_two_server_processes(two_servers: list[str], sides: Sides) -> None:
    path = f"/ws/consultations/{sides.consultation.pk}/call/"
    cookies = {"specialist": _cookie(sides.specialist), "clinician": _cookie(sides.clinician)}

    async def call() -> int:
        headers = {"Origin": "http://127.0.0.1"}
        async with (
            websockets.connect(
                two_servers[0] + path, additional_headers={**headers, "Cookie": cookies["specialist"]}
            ) as specialist,
            websockets.connect(
                two_servers[1] + path, additional_headers={**headers, "Cookie": cookies["clinician"]}
            ) as clinician,
        ):
            await _next(specialist, "welcome")
            await _next(clinician, "welcome")
            await specialist.send(json.dumps({"v": 1, "type": "invite", "lifetime": 30}))
            call_id = (await _next(specialist, "ringing"))["call"]["id"]
            assert (await _next(clinician, "invite"))["from"]["id"] == sides.specialist.pk
            await clinician.send(json.dumps({"v": 1, "type": "accept"}))
            assert (await _next(specialist, "accept"))["call"]["state"] == "active"
            offer = {"type": "offer", "sdp": "v=0 from the first process"}
            await specialist.send(json.dumps({"v": 1, "type": "signal", "description": offer}))
            assert (await _next(clinician, "signal"))["description"] == offer
            candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.2 50000 typ host", "sdpMid": "0"}
            await clinician.send(json.dumps({"v": 1, "type": "signal", "candidate": candidate}))
            relayed = await _next(specialist, "signal")
            assert relayed["candidate"] == candidate and relayed["from"]["id"] == sides.clinician.pk
            await specialist.send(json.dumps({"v": 1, "type": "hangup", "reason": "hangup"}))
            assert (await _next(clinician, "hangup"))["call"]["state"] == "ended"
            return int(call_id)

    call_id = asyncio.run(call())
    assert Call.objects.get(pk=call_id).state == Call.State.ENDED
