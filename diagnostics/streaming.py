"""Streaming a large response (a study, a zip) under ASGI without holding it in memory."""

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest


def streamed(
    request: HttpRequest, pieces: Iterator[bytes], *, thread_sensitive: bool = True
) -> Iterable[bytes] | AsyncIterator[bytes]:
    """Under ASGI Django reads a synchronous iterator to its end before sending anything (a whole study in
    memory), so there the pieces are handed over one at a time from a worker thread. `thread_sensitive`
    False lets pieces be made beside other requests, for producers that touch no database."""
    if not isinstance(request, ASGIRequest):
        return pieces

    async def relay() -> AsyncIterator[bytes]:
        step = sync_to_async(_next, thread_sensitive=thread_sensitive)
        making: asyncio.Future[bytes | None] | None = None
        try:
            while True:
                making = asyncio.ensure_future(step(pieces))
                # Shielded: when the client goes away the piece being made in its thread is let finish, as a
                # running generator cannot be closed.
                piece = await asyncio.shield(making)
                if piece is None:
                    break
                if piece:
                    yield piece
        finally:
            if making is not None and not making.done():
                await asyncio.wait([making])
            close = getattr(pieces, "close", None)
            if close is not None:
                await sync_to_async(close, thread_sensitive=thread_sensitive)()

    return relay()


def _next(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)
