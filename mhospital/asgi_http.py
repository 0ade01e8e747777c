"""Django's ASGI handler, with each request's synchronous work done in one trip to a thread.

Every view, and every middleware of the project, is synchronous. Django's own ASGIHandler still moves a
request between the event loop and a thread several times: for the request_started signal, for the
middleware chain and view, and for the response's close. It also starts a new thread for each request and
runs a second task that watches for the client going away. Together that cost about 2.7 ms of CPU per
request, a third of what a small refused API request cost in all (bench/BENCHMARKS.md).

Here the body is read in the event loop, as Django does. Then one trip to a thread covers the rest: the
request_started signal, the whole middleware chain (loaded synchronous, as under WSGI), the view, and
closing the response, which sends request_finished and returns the database connection. The response is
then sent from the event loop. The threads are kept for later requests, each for one request at a time.
A streaming response (a study's download, a zip) is sent as Django sends one: it stops when the client goes
away, and it is closed afterwards in the thread that made it.
"""

import asyncio
import io
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

# Threads kept idle for the next requests; past this many, one is let go when its request ends.
IDLE_THREADS_KEPT = 32
# What a piece of body kept in a list costs beyond its bytes: a bytes object's header and the list's slot.
_PIECE_OVERHEAD = sys.getsizeof(b"") + 8


class OneTripASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # Single-thread executors: a request's thread-sensitive calls all run on its one thread (Django's
        # database connections belong to the thread that opened them).
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP only, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="django")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        except BaseException:
            # The request failed, or the server gave up on it (shutting down): its thread may still be busy,
            # so it is let go rather than handed to the next request.
            executor.shutdown(wait=False)
            raise
        if len(self._idle) < IDLE_THREADS_KEPT:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self._stream(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            body_file.close()

    async def read_body(self, receive: Any) -> IO[bytes]:
        """The body as a file: in memory while it fits FILE_UPLOAD_MAX_MEMORY_SIZE, as Django's is, but there
        as one piece, its chunks joined once at the end. Django writes each chunk into a spool whose buffer
        grows by copying, and every read of it goes through the spool's wrapper; a STOW-RS request reads its
        parts back out of it twice. Past the limit the body goes to disk, as under Django's handler."""
        chunks: list[bytes] = []
        size = 0
        spool: IO[bytes] | None = None
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise RequestAborted()
                chunk = message.get("body", b"")
                if spool is not None:
                    spool.write(chunk)
                elif chunk:
                    chunks.append(chunk)
                    # Each piece kept costs its object too: a body sent a few bytes at a time goes to disk
                    # before its pieces, not its bytes, fill the limit.
                    size += len(chunk) + _PIECE_OVERHEAD
                    if size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
                        spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
                        spool.writelines(chunks)
                        chunks.clear()
                if not message.get("more_body", False):
                    break
        except BaseException:
            if spool is not None:
                spool.close()
            raise
        if spool is not None:
            spool.seek(0)
            return spool
        # A BytesIO made from bytes shares them until written to: the join is the only copy.
        return io.BytesIO(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """The response, made in the request's thread; closed there too unless it still has to stream."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)  # a request, or the response refusing it
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        assert response is not None
        if not response.streaming:
            response.close()  # its content is made; request_finished returns the database connection
        return response

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Send a streaming response until it ends or the client goes away, then close it in its thread."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((sending, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sending.cancel()  # does nothing to a task that has ended
            listening.cancel()
            await asyncio.wait((sending, listening))
            # Django closes only its own wrapper of an asynchronous iterator: the iterator itself (the
            # files being read, a thread-sensitive relay) is closed here, while the request's thread is there.
            aclose = getattr(getattr(response, "_iterator", None), "aclose", None)
            if aclose is not None:
                await aclose()
            await sync_to_async(response.close, thread_sensitive=True)()
            failures = [task.exception() for task in (sending, listening) if not task.cancelled()]
        for failure in failures:
            # The client going away (RequestAborted) only ends the response; anything else is raised, as
            # Django raises it: a failure of the response's own, or an unexpected message from the server.
            if failure is not None and not isinstance(failure, RequestAborted):
                raise failure
