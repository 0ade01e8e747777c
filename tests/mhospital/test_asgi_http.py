"""The HTTP handler (mhospital/asgi_http.py): a streamed download stops when the client goes away, as under
Django's own ASGI handler, and is closed when the server gives up on it; a failing view is a 500 page rather
than a dropped connection."""

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from diagnostics.streaming import streamed
from mhospital.asgi_http import OneTripASGIHandler
from tests.mhospital.asgi_scope import http_scope

PIECES = 500
made: list[int] = []
closed = threading.Event()


def _pieces() -> Iterator[bytes]:
    try:
        for number in range(PIECES):
            made.append(number)
            time.sleep(0.01)  # a file read from storage
            yield b"x" * 65536
    finally:
        closed.set()


def _download(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(streamed(request, _pieces(), thread_sensitive=False))


def _broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


@csrf_exempt
def _echo(request: HttpRequest) -> HttpResponse:
    """What the view read of the body: its length and digest, and whether it was spooled to disk."""
    kept_in = type(request._stream).__name__  # type: ignore[attr-defined]
    body = request.body
    return HttpResponse(f"{len(body)} {hashlib.sha256(body).hexdigest()} {kept_in}")


urlpatterns = [path("download", _download), path("broken", _broken), path("echo", _echo)]


def _get(app: OneTripASGIHandler, url: str) -> ApplicationCommunicator:
    return ApplicationCommunicator(app, http_scope("GET", url))


@pytest.fixture
def handler(settings: Any) -> OneTripASGIHandler:
    settings.ROOT_URLCONF = __name__
    made.clear()
    closed.clear()
    return OneTripASGIHandler()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_download_stops_when_the_client_goes_away(handler: OneTripASGIHandler) -> None:
    download = _get(handler, "/download")
    await download.send_input({"type": "http.request", "body": b""})
    start = await download.receive_output(10)
    assert start["type"] == "http.response.start" and start["status"] == 200
    first = await download.receive_output(10)
    assert first["body"] == b"x" * 65536 and first["more_body"]

    await download.send_input({"type": "http.disconnect"})
    await download.wait(10)

    assert closed.wait(10), "the download's files were left open"
    assert len(made) < PIECES // 5, f"{len(made)} of {PIECES} pieces were read for a client that had gone"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_failing_view_answers_500(handler: OneTripASGIHandler, settings: Any) -> None:
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    broken = _get(handler, "/broken")
    await broken.send_input({"type": "http.request", "body": b""})
    start = await broken.receive_output(10)
    body = await broken.receive_output(10)

    assert start["status"] == 500
    assert b"a bug" not in body["body"]  # the error page, not the traceback


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_request_the_server_gives_up_on_leaves_the_next_one_unharmed(handler: OneTripASGIHandler) -> None:
    """A server shutting down cancels the requests in flight: the download's files are closed, and the
    handler goes on serving."""
    download = _get(handler, "/download")
    await download.send_input({"type": "http.request", "body": b""})
    assert (await download.receive_output(10))["status"] == 200
    await download.receive_output(10)
    download.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await download.future
    assert closed.wait(10), "the download's files were left open"

    made.clear()
    closed.clear()
    again = _get(handler, "/download")
    await again.send_input({"type": "http.request", "body": b""})
    assert (await again.receive_output(10))["status"] == 200
    assert (await again.receive_output(10))["body"] == b"x" * 65536
    await again.send_input({"type": "http.disconnect"})
    await again.wait(10)
    assert closed.wait(10)


async def _post_in_chunks(handler: OneTripASGIHandler, body: bytes, chunk: int) -> str:
    echo = ApplicationCommunicator(handler, http_scope("POST", "/echo"))
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        await echo.send_input({"type": "http.request", "body": piece, "more_body": start + chunk < len(body)})
    start_message = await echo.receive_output(10)
    assert start_message["status"] == 200
    answer = (await echo.receive_output(10))["body"].decode()
    await echo.wait(10)
    return answer


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("limit", "kept_in"), [(2**20, "BytesIO"), (100_000, "SpooledTemporaryFile")])
async def test_a_body_sent_in_pieces_reaches_the_view_whole(
    handler: OneTripASGIHandler, settings: Any, limit: int, kept_in: str
) -> None:
    """In memory while it fits FILE_UPLOAD_MAX_MEMORY_SIZE, past it spooled as Django spools it."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = limit
    body = bytes(range(256)) * 1200  # 300 KB
    answer = await _post_in_chunks(handler, body, 65536)
    assert answer == f"{len(body)} {hashlib.sha256(body).hexdigest()} {kept_in}"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_body_sent_a_few_bytes_at_a_time_goes_to_disk_before_its_pieces_fill_memory(
    handler: OneTripASGIHandler, settings: Any
) -> None:
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = b"0123456789" * 3000  # 30 KB in 3,000 pieces: each piece kept in memory costs its object too
    answer = await _post_in_chunks(handler, body, 10)
    assert answer == f"{len(body)} {hashlib.sha256(body).hexdigest()} SpooledTemporaryFile"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_client_gone_before_its_body_ended_gets_nothing_and_the_handler_goes_on(
    handler: OneTripASGIHandler,
) -> None:
    gone = ApplicationCommunicator(handler, http_scope("POST", "/echo"))
    await gone.send_input({"type": "http.request", "body": b"x" * 1000, "more_body": True})
    await gone.send_input({"type": "http.disconnect"})
    await gone.wait(10)
    assert await gone.receive_nothing()
    assert await _post_in_chunks(handler, b"after", 65536) == f"5 {hashlib.sha256(b'after').hexdigest()} BytesIO"
