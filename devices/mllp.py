"""The MLLP listener: analysers that speak HL7 v2 only over TCP send their ORU^R01 messages here.

MLLP frames each message as \\x0b message \\x1c\\x0d, and the sender waits for the ACK (framed the same way)
before it sends the next; one connection carries any number of messages. There are no tokens: the message's
sending application and facility (MSH-3, MSH-4) must be those of an active registered device
(devices.results.mllp_receive), which then is exactly like a device posting to /api/v1/device/hl7.

The listener runs asyncio in a thread of its own; storing runs in worker threads, each with Django's
database connection of its own. Nothing a peer sends may take it down: bytes outside a frame are skipped,
a frame that is not HL7 is answered AR, and a frame larger than DEVICE_MAX_REQUEST_BYTES is answered AR and
the connection closed (there is no telling where the next message starts).
"""

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

from django.conf import settings
from django.db import close_old_connections
from django.utils import translation
from django.utils.translation import gettext as _

from devices import hl7

log = logging.getLogger(__name__)

START, END = b"\x0b", b"\x1c\x0d"
READ_SIZE = 65536

Handler = Callable[[bytes, str], bytes]


@contextmanager
def _django() -> Iterator[None]:
    """Database work in a listener thread: a usable connection (closed when its age is up, as a request's
    would be) and the platform's language for the ACK's sentences and the audit."""
    close_old_connections()
    try:
        with translation.override(settings.LANGUAGE_CODE):
            yield
    finally:
        close_old_connections()


def answer_frame(data: bytes, peer: str) -> bytes:
    """The framed ACK to one framed message: never raises (an internal fault is answered AR, and logged)."""
    from devices.results import mllp_receive

    try:
        with _django():
            ack = mllp_receive(data=data, peer=peer).ack
    except Exception:
        log.exception("MLLP message from %s could not be taken", peer)
        header = hl7.header_read(hl7.text_of(data))
        error = hl7.AckError("", "207", _("The platform could not take the message now: send it again later."))
        ack = hl7.ack_build(header=header, code="AR", errors=[error])
    return START + ack.encode() + END


def _too_large(buffer: bytes, limit: int) -> bytes:
    header = hl7.header_read(hl7.text_of(buffer[:4096]).split("\r", 1)[0])
    reason = _("The message is larger than %(limit)s bytes, the most one message may be; the connection is closed.") % {
        "limit": limit
    }
    return START + hl7.ack_build(header=header, code="AR", errors=[hl7.AckError("", "207", reason)]).encode() + END


class MllpListener:
    """An MLLP server on (host, port); port 0 picks a free one (`.port` once started)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        max_frame: int | None = None,
        idle_timeout: float | None = None,
        threads: int | None = None,
        handler: Handler = answer_frame,
    ) -> None:
        self.host, self.port = host, port
        self.max_frame = max_frame or settings.DEVICE_MAX_REQUEST_BYTES
        self.idle_timeout = idle_timeout or settings.MLLP_LISTENER_IDLE_TIMEOUT
        self.handler = handler
        self.pool = ThreadPoolExecutor(threads or settings.MLLP_LISTENER_THREADS, thread_name_prefix="mllp")
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Listen in a background thread; returns once the socket is bound (raises OSError if it cannot)."""
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, self.host, self.port))
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, name="mllp-listener", daemon=True)
        self.thread.start()

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop taking connections, give open ones up to `grace` seconds to finish their message, close."""

        async def shutdown() -> None:
            assert self.server is not None
            self.server.close()
            if self.connections:
                _done, pending = await asyncio.wait(self.connections, timeout=grace)
                for task in pending:
                    task.cancel()

        if self.thread is not None:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=grace + 5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        address = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{address[0]}:{address[1]}"
        try:
            await self._frames(reader, writer, peer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("MLLP connection from %s failed", peer)
        finally:
            self.connections.discard(task)
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        """Answer each complete frame in order; skip bytes outside frames; refuse one that grows too large."""
        buffer = bytearray()
        scanned = 0  # where to look for the end of the frame from, so a large frame is not searched again
        loop = asyncio.get_running_loop()
        while True:
            chunk = await asyncio.wait_for(reader.read(READ_SIZE), timeout=self.idle_timeout)
            if not chunk:
                return
            buffer += chunk
            while buffer:
                start = buffer.find(START)
                if start < 0:
                    buffer.clear()  # noise between frames (keep-alive bytes, a stray newline)
                    break
                if start:
                    del buffer[:start]
                    scanned = 0
                end = buffer.find(END, max(1, scanned - 1))
                if end < 0:
                    scanned = len(buffer)
                    if len(buffer) - 1 > self.max_frame:
                        log.warning(
                            "MLLP frame from %s passed %s bytes: refused, connection closed", peer, self.max_frame
                        )
                        writer.write(_too_large(bytes(buffer[1:]), self.max_frame))
                        await writer.drain()
                        return
                    break
                restart = buffer.rfind(START, 1, end)
                if restart > 0:  # the sender gave up on a message and began another
                    del buffer[:restart]
                    scanned = 0
                    continue
                if end - 1 > self.max_frame:
                    writer.write(_too_large(bytes(buffer[1:end]), self.max_frame))
                    await writer.drain()
                    return
                frame = bytes(buffer[1:end])
                del buffer[: end + len(END)]
                scanned = 0
                answer = await loop.run_in_executor(self.pool, self.handler, frame, peer)
                writer.write(answer)
                await writer.drain()
