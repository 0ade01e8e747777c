"""What the listener commands share: the first lines they print, and running until SIGTERM or Ctrl-C."""

import signal
import threading
from collections.abc import Callable
from types import FrameType

from django.core.management.base import OutputWrapper
from django.db.models import QuerySet

from devices.models import Device


def allowed_list(devices: QuerySet[Device], field: str) -> str:
    """The active devices that may send, named by `field` (their AE title, their HL7 sender), up to 20."""
    allowed = [f"{getattr(d, field)} ({d.hospital})" for d in devices.select_related("hospital")[:21]]
    if len(allowed) > 20:
        allowed[20:] = ["..."]
    return ", ".join(allowed)


def run_until_stopped(stdout: OutputWrapper, *, started: str, stopping: str, stop: Callable[[], None]) -> None:
    """Say `started`, wait for SIGTERM or SIGINT, say `stopping`, call `stop` (the previous handlers are put
    back in any case)."""
    stopped = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    stdout.write(started)
    stdout.flush()
    try:
        while not stopped.wait(timeout=1.0):
            pass
        stdout.write(stopping)
        stdout.flush()
        stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
