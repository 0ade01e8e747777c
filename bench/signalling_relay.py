"""The floor for the signalling bench: the call socket's protocol in a bare `websockets` server, no Django,
no channel layer, no database. Rooms by consultation id, the session cookie as the person; it answers
welcome, relays invite/accept/signal/hangup to the peer (sender stamped, never echoed) and ping with pong.

    python bench/signalling_relay.py --port 8590
"""

import argparse
import asyncio
import json
from typing import Any

import websockets

rooms: dict[str, dict[str, Any]] = {}
PEER_SEES = {"invite": "invite", "accept": "accept", "decline": "decline", "cancel": "cancel", "hangup": "hangup"}


async def handle(ws: Any) -> None:
    path = ws.request.path
    cookie = ws.request.headers.get("Cookie", "")
    if not path.startswith("/ws/consultations/") or not cookie:
        await ws.close(4401)
        return
    room = rooms.setdefault(path, {})
    me = {"id": hash(cookie) & 0xFFFF, "name": cookie[-8:]}
    room[cookie] = ws
    await ws.send(json.dumps({"v": 1, "type": "welcome", "you": me, "peers": [], "call": None}))
    try:
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            peers = [peer for key, peer in room.items() if key != cookie]
            if kind == "ping":
                await ws.send('{"v": 1, "type": "pong"}')
            elif kind == "signal":
                relayed = {"v": 1, "type": "signal", "from": me}
                for key in ("description", "candidate"):
                    if key in message:
                        relayed[key] = message[key]
                text = json.dumps(relayed)
                for peer in peers:
                    await peer.send(text)
            elif kind in PEER_SEES:
                text = json.dumps({"v": 1, "type": PEER_SEES[kind], "from": me, "call": {"state": kind}})
                for peer in peers:
                    await peer.send(text)
                await ws.send(json.dumps({"v": 1, "type": "ringing" if kind == "invite" else "call"}))
            else:
                await ws.send(json.dumps({"v": 1, "type": "error", "code": "unknown_type"}))
    except websockets.ConnectionClosed:
        pass
    finally:
        if room.get(cookie) is ws:
            del room[cookie]


async def main(port: int) -> None:
    # No permessage-deflate, as the uvicorn runs of the bench (its zlib state costs ~100 KB a socket).
    async with websockets.serve(handle, "127.0.0.1", port, max_size=2**20, compression=None):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8590)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args().port))
