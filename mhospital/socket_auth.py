"""Who is on the other end of a WebSocket: Channels' AuthMiddlewareStack in one step.

Channels' stack is three middlewares (cookies, session, user), each with its own copy of the scope and a
coroutine that lives as long as the socket, the session and the user behind lazy wrappers, and a session
wrapper asked on every frame sent whether to save the session (on an HTTP response, which a socket never
sends). Kept for each of thousands of call sockets, that was about 3 KB of ~40 (bench/BENCHMARKS.md,
issue 6). This puts the same keys in the scope, "cookies", "session" (the session store) and "user" (by
Channels' own get_user, which checks the session's auth hash), once, and keeps no copy of its own.
"""

from importlib import import_module
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.http import parse_cookie

ASGIApp = Any


class SocketAuthMiddleware:
    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        cookie = next((value for name, value in scope["headers"] if name == b"cookie"), None)
        cookies = parse_cookie(cookie.decode("latin1")) if cookie is not None else {}
        session = import_module(settings.SESSION_ENGINE).SessionStore(cookies.get(settings.SESSION_COOKIE_NAME))
        scope = dict(scope, cookies=cookies, session=session)
        scope["user"] = await get_user(scope)
        # The inner application holds the scope from here; this frame, alive as long as the socket, lets go.
        application = self.inner(scope, receive, send)
        del scope, cookies, cookie, session
        return await application
