"""Signalling load from a separate process (issue 6): N concurrent calls through the call socket.

Each call: both sides open /ws/consultations/<pk>/call/ with a signed-in session; the specialist invites,
the clinician accepts; offer, answer, 16 candidates per side, one ICE restart (offer/answer again), hang-up.
Two rounds on the same sockets: paced (--rate messages/s over all calls) for latency, then unpaced for
saturation. Latency is send-to-receive of each relayed signal (the stamp travels inside the payload).
With --ramp, the paced round's calls start spread over that many seconds rather than all in its first
(500 invites at once queue behind each other's database work; spread over 20 s, all 500 calls still overlap).

    python bench/signalling_bench.py --url ws://127.0.0.1:8500 --sessions calls.json --calls 500 --pids 1234
"""

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import websockets

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" + "a=bench-padding:" + "x" * 2400 + "\r\n"
ORIGIN = {"Origin": "http://127.0.0.1"}


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total


class Pacer:
    def __init__(self, rate: float) -> None:
        self.interval, self.next = (1 / rate if rate else 0.0), 0.0

    async def __call__(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = self.next = max(self.next, now) + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Side:
    """One socket: a reader that files signals (with their latency) and queues everything else by type."""

    def __init__(self, ws: Any, stats: "Stats") -> None:
        self.ws, self.stats = ws, stats
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.signals: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "signal":
                    # The stamp rides in a field the server relays: a candidate's usernameFragment (the server
                    # passes on RTCIceCandidateInit's fields only), a description's SDP.
                    fragment = message.get("candidate", {}).get("usernameFragment", "")
                    stamp = (
                        float(fragment[1:])
                        if fragment.startswith("t")
                        else float(message.get("description", {}).get("sdp", "t=0").rsplit("t=", 1)[1])
                    )
                    self.stats.latencies.append(now - stamp)
                    self.signals.put_nowait(message)
                else:
                    if kind == "error":
                        self.stats.errors[message.get("code")] = self.stats.errors.get(message.get("code"), 0) + 1
                    self.queues.setdefault(kind, asyncio.Queue()).put_nowait(message)
        except websockets.ConnectionClosed:
            pass

    async def send(self, pace: Pacer, **message: Any) -> None:
        await pace()
        if "candidate" in message:  # stamped once paced: latency is the relay's, not the pacer's queue
            message["candidate"]["usernameFragment"] = f"t{time.monotonic()!r}"
        elif "description" in message:
            message["description"]["sdp"] = f"{SDP}t={time.monotonic()!r}"
        await self.ws.send(json.dumps({"v": 1, **message}))
        self.stats.sent += 1
        self.stats.signals_sent += message["type"] == "signal"

    async def expect(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self.queues.setdefault(kind, asyncio.Queue()).get()

    async def signals_in(self, n: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            for _ in range(n):
                await self.signals.get()


async def heartbeat(ws: Any) -> None:
    """As the browser does, from the moment the socket opens: a ping every few seconds (the server closes a
    socket silent for three heartbeat periods, 15 s by default)."""
    try:
        while True:
            await asyncio.sleep(4)
            await ws.send('{"v": 1, "type": "ping"}')
    except websockets.ConnectionClosed:
        pass


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sent = 0
        self.signals_sent = 0
        self.failed_calls = 0
        self.errors: dict[Any, int] = {}


def description(kind: str) -> dict[str, Any]:
    return {"type": kind, "sdp": f"{SDP}t={time.monotonic()!r}"}


def candidate(n: int) -> dict[str, Any]:
    return {
        "candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {50000 + n} typ host generation 0",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": f"t{time.monotonic()!r}",
    }


async def one_call(specialist: Side, clinician: Side, pace: Pacer, stats: Stats, start: float = 0.0) -> None:
    await asyncio.sleep(start)
    try:
        await specialist.send(pace, type="invite", lifetime=60)
        await clinician.expect("invite")
        await clinician.send(pace, type="accept")
        await specialist.expect("accept")
        for _ in range(2):  # the first negotiation, then the ICE restart
            await specialist.send(pace, type="signal", description=description("offer"))
            await clinician.signals_in(1)
            await clinician.send(pace, type="signal", description=description("answer"))
            await specialist.signals_in(1)

            async def trickle(side: Side) -> None:
                for n in range(16):
                    await side.send(pace, type="signal", candidate=candidate(n))

            await asyncio.gather(trickle(specialist), trickle(clinician))
            for side in (specialist, clinician):
                await side.signals_in(16)
        await specialist.send(pace, type="hangup", reason="hangup")
        await clinician.expect("hangup")
    except (TimeoutError, websockets.ConnectionClosed):
        stats.failed_calls += 1


async def round_(pairs: list[tuple[Side, Side]], rate: float, ramp: float = 0.0) -> dict[str, Any]:
    stats = Stats()
    for specialist, clinician in pairs:
        specialist.stats = clinician.stats = stats
    pace = Pacer(rate)
    started = time.monotonic()
    step = ramp / max(len(pairs), 1)
    await asyncio.gather(*(one_call(s, c, pace, stats, i * step) for i, (s, c) in enumerate(pairs)))
    took = time.monotonic() - started
    received = len(stats.latencies)
    ms = sorted(x * 1000 for x in stats.latencies) or [0.0]
    return {
        "rate": rate or "unpaced",
        "ramp_s": ramp,
        "seconds": round(took, 2),
        "messages_sent": stats.sent,
        "msg_per_s": round(stats.sent / took, 1),
        "signals_sent": stats.signals_sent,
        "signals_received": received,
        "lost": stats.signals_sent - received,
        "failed_calls": stats.failed_calls,
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
        "errors": stats.errors,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.sessions) as file:
        sessions = json.load(file)[: args.calls]
    pids = [int(p) for p in args.pids.split(",") if p]
    urls = args.url.split(",")
    result: dict[str, Any] = {"target": args.name, "calls": len(sessions), "sockets": 2 * len(sessions)}
    gate = asyncio.Semaphore(args.connect_concurrency)
    connect_errors: list[str] = []
    heartbeats: list[asyncio.Future[None]] = []

    async def open_(i: int, pk: int, cookie: str) -> Any:
        url = f"{urls[i % len(urls)]}/ws/consultations/{pk}/call/"
        async with gate:
            try:
                ws = await websockets.connect(
                    url, additional_headers={**ORIGIN, "Cookie": cookie}, open_timeout=60, max_size=2**20
                )
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
                assert welcome["type"] == "welcome", welcome
                heartbeats.append(asyncio.ensure_future(heartbeat(ws)))
                return ws
            except Exception as error:  # noqa: BLE001 - counted and reported
                connect_errors.append(f"{type(error).__name__}: {error}"[:200])
                return None

    # One socket first: the server imports and warms up before the baseline memory reading.
    warm = await open_(0, sessions[0][0], sessions[0][1])
    if warm is not None:
        await warm.close()
    await asyncio.sleep(1)
    before = rss_kb(pids) if pids else 0
    started = time.monotonic()
    opened = await asyncio.gather(
        *(
            open_(2 * i + side, pk, cookie)  # with two servers, the two sides of a call on different ones
            for i, (pk, spec, clin) in enumerate(sessions)
            for side, cookie in enumerate((spec, clin))
        )
    )
    result["open_all_s"] = round(time.monotonic() - started, 2)
    result["connect_errors"] = len(connect_errors)
    if connect_errors:
        result["connect_error_sample"] = connect_errors[:3]
    await asyncio.sleep(2)
    after = rss_kb(pids) if pids else 0
    ok = sum(1 for ws in opened if ws is not None)
    result["rss_mb_before"], result["rss_mb_after"] = round(before / 1024, 1), round(after / 1024, 1)
    result["kb_per_socket"] = round((after - before) / max(ok, 1), 1) if pids else None
    stats = Stats()
    pairs = [
        (Side(opened[2 * i], stats), Side(opened[2 * i + 1], stats))
        for i in range(len(sessions))
        if opened[2 * i] is not None and opened[2 * i + 1] is not None
    ]
    await asyncio.sleep(1)  # the presence events of the opening settle
    result["paced"] = await round_(pairs, args.rate, args.ramp)
    if not args.paced_only:
        result["unpaced"] = await round_(pairs, 0)
    for beat in heartbeats:
        beat.cancel()
    for ws in opened:
        if ws is not None:
            await ws.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="ws://host:port, comma-separated for several servers")
    parser.add_argument("--sessions", required=True, help="JSON from bench/seed_calls.py")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rate", type=float, default=300.0, help="paced round: messages per second, all calls")
    parser.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        help="paced round: the calls start spread over this many seconds (0: all at once, a flash crowd)",
    )
    parser.add_argument("--pids", default="", help="server process ids for the memory reading")
    parser.add_argument("--name", default="")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--paced-only", action="store_true", help="no saturation round (beside other load)")
    options = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(options))), flush=True)
