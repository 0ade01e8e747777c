"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import gc
import os
import sys
import warnings

import django

from mhospital.memory import malloc_keep_freed

# Before anything large is allocated: each request's body is then kept for the next one (mhospital/memory.py).
malloc_keep_freed()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")
# WhiteNoise serves static files with a synchronous iterator; Django adapts it, correctly, and warns per file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
# Django must be set up before the routing below imports models.
django.setup(set_prefix=False)

from mhospital.asgi_http import OneTripASGIHandler  # noqa: E402

django_asgi_app = OneTripASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from mhospital.body_limit import BodyLimit  # noqa: E402
from mhospital.celery import app as celery_app  # noqa: E402
from mhospital.routing import websocket_urlpatterns  # noqa: E402
from mhospital.socket_auth import SocketAuthMiddleware  # noqa: E402

# Import every view, find Celery's result backend (a scan of every installed package's entry points) and
# make its producer pool (which imports the broker's transport; it connects only when a task is sent) now
# while the server starts, rather than in the first request each server process takes: that one would
# otherwise wait about two seconds, and the first to queue a task another tenth of one.
get_resolver().url_patterns  # noqa: B018
celery_app.backend  # noqa: B018
celery_app.producer_pool  # noqa: B018

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(SocketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# What the start made (modules, URL patterns, settings) lives as long as the process: out of the cyclic
# garbage collector's sight, which would otherwise walk all of it again at each full collection, every
# few requests that allocate as much as a STOW request does (a tenth of its CPU; bench/BENCHMARKS.md).
gc.freeze()
# A young-generation collection every 10,000 net allocations of containers rather than Python's 700: a STOW
# request of ten images holds thousands of parsed elements at once and set off some five collections, each
# walking all of them (0.6 ms of its CPU). What a request leaves to the collector is small (about 250
# objects: the request and its DRF wrapper, model instances and their files; the body is closed and freed
# by the handler), so waiting longer to collect it costs a few megabytes at most.
gc.set_threshold(10_000, 10, 10)

# The event loop (every socket, every relayed signal) shares the interpreter with the threads that run
# Django's synchronous work (views, the sockets' database work). While one of those computes, the loop
# waits for it at each I/O call it makes, up to the interpreter's switch interval each time (5 ms by
# default): under a call-signalling load that held relayed signals 25-27 ms at p99, 13-17 at 0.5 ms
# (bench/BENCHMARKS.md, issue 6).
sys.setswitchinterval(settings.ASGI_SWITCH_INTERVAL_MS / 1000)
