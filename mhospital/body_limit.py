"""A request body limit enforced while the body arrives, before Django reads it.

Django's ASGI handler spools the whole body (to disk past FILE_UPLOAD_MAX_MEMORY_SIZE) before any
middleware runs, so a Content-Length check in a Django middleware comes too late for a body sent in
chunks without one: a client could fill the server's disk. This wraps the ASGI application: a declared
length over the limit is answered 413 at once, and an undeclared one is cut off the moment it passes the
limit.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hospitals.middleware import body_limit_for

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Django's UploadLimitMiddleware answers and audits these with a page: let it, the body
            # is never read.
            await self.app(scope, _no_body(receive), send)
            return
        received = 0
        cut_off = False
        started = False

        async def counted() -> Message:
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, watched)
        if cut_off and not started:
            await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _no_body(receive: Receive) -> Receive:
    """An empty body, then silence: the unread bytes are never taken off the connection."""
    told = False

    async def empty() -> Message:
        nonlocal told
        if not told:
            told = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Future()  # Django listens for a disconnect while it answers; none will come
        raise AssertionError("unreachable")

    return empty


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "code": "too_large",
            "detail": f"The request body passed the limit of {limit // 2**20} MB and was cut off. "
            "Send fewer or smaller files per request.",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
