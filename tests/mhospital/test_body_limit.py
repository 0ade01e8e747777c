"""Oversized request bodies are refused while they arrive, declared or not, before they fill the disk."""

import asyncio
from typing import Any

import pytest

from hospitals.models import AuditEntry
from tests.mhospital.asgi_scope import http_scope

CHUNK = 64 * 1024


async def _call(path: str, chunks: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """Send up to `chunks` body chunks to the real ASGI application; the status, the body and how many
    chunks the application took."""
    from mhospital.asgi import application

    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked > chunks:
            await asyncio.sleep(3600)  # the client has nothing more to say
        return {"type": "http.request", "body": b"\0" * CHUNK, "more_body": asked < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope("POST", path, headers)
    await asyncio.wait_for(application(scope, receive, send), timeout=30)
    asked = min(asked, chunks)  # a last call only listens for the client going away
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, asked


@pytest.mark.django_db(transaction=True)
def test_a_body_sent_in_chunks_without_a_length_is_cut_off_at_the_limit(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAX_REQUEST_BYTES = 10 * CHUNK
    status, body, asked = asyncio.run(_call("/patients/new/", chunks=1000, headers=[]))
    assert status == 413 and b"limit of" in body
    assert asked == 11  # stopped reading one chunk past the limit, not after 1,000


@pytest.mark.django_db(transaction=True)
def test_dicomweb_takes_larger_bodies_than_pages(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAX_REQUEST_BYTES = 10 * CHUNK
    settings.DICOMWEB_MAX_REQUEST_BYTES = 100 * CHUNK
    _, _, asked = asyncio.run(_call("/dicom-web/studies", chunks=50, headers=[]))
    assert asked == 50  # read to the end, whatever DICOMweb then makes of it


@pytest.mark.django_db(transaction=True)
def test_a_declared_huge_length_is_refused_unread_and_audited(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAX_REQUEST_BYTES = 10 * CHUNK
    huge = str(2 * 2**30).encode()
    status, body, asked = asyncio.run(_call("/patients/new/", chunks=1000, headers=[(b"content-length", huge)]))
    assert status == 413 and b"2048 MB" in body
    assert asked == 0
    assert AuditEntry.objects.filter(object_type="upload", outcome="invalid").exists()
