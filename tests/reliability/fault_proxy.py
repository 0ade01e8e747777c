"""A TCP proxy on 127.0.0.1 that breaks connections as a bad link does: delays, resets in the middle of a
request, and answers lost on their way back. Each connection's fate comes from a seeded random generator,
so a failing run can be replayed with its seed."""

import asyncio
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

FATES = ("pass", "delay", "cut_request", "cut_response")


@dataclass
class FaultProxy:
    upstream_port: int
    seed: int
    weights: tuple[int, ...] = (45, 15, 25, 15)  # per FATES
    max_cut: int = 48_000  # a request is cut after a random number of its bytes up to this
    fates: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        assert self._ready.wait(10), "the fault proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Stopped: no new connections, the open ones dropped, then the loop closed with nothing pending.
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        fate = self._random.choices(FATES, self.weights)[0]
        self.fates[fate] += 1
        cut_after = self._random.randint(0, self.max_cut)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return

        async def upstream() -> None:
            sent = 0
            while data := await client_reader.read(16_384):
                if fate == "delay":
                    await asyncio.sleep(self._random.uniform(0.02, 0.2))
                if fate == "cut_request" and sent + len(data) > cut_after:
                    server_writer.write(data[: cut_after - sent])
                    await server_writer.drain()
                    raise ConnectionResetError  # the link drops in the middle of the request
                server_writer.write(data)
                await server_writer.drain()
                sent += len(data)

        async def downstream() -> None:
            while data := await server_reader.read(16_384):
                if fate == "cut_response":
                    raise ConnectionResetError  # the server answered; the answer never arrives
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # either side ends or breaks: both go
        finally:
            for task in tasks:
                task.cancel()
            client_writer.transport.abort()
            server_writer.transport.abort()
