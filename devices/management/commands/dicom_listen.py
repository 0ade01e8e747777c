import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.dicom_listener import listener_start, listener_stop
from devices.models import Device, validate_ae_title


class Command(BaseCommand):
    help = (
        "Run the DICOM C-STORE listener: modalities registered as active devices push images to it. "
        "Stops gracefully on SIGTERM or Ctrl-C (open associations may finish)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", help="address to listen on (default: DICOM_LISTENER_HOST)")
        parser.add_argument("--port", type=int, help="TCP port, 0 for any free one (default: DICOM_LISTENER_PORT)")
        parser.add_argument(
            "--ae-title", help="the listener's own (called) AE title (default: DICOM_LISTENER_AE_TITLE)"
        )
        parser.add_argument(
            "--grace", type=float, default=30.0, help="seconds open associations get to finish on shutdown (30)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.DICOM_LISTENER_HOST
        port = settings.DICOM_LISTENER_PORT if options["port"] is None else options["port"]
        ae_title = options["ae_title"] or settings.DICOM_LISTENER_AE_TITLE
        try:
            validate_ae_title(ae_title)
        except ValidationError as exc:
            raise CommandError(f"The listener's AE title {ae_title!r} is not valid: {' '.join(exc.messages)}") from None
        devices = Device.objects.filter(active=True, hospital__is_active=True).exclude(ae_title="")
        allowed = [f"{d.ae_title} ({d.hospital})" for d in devices.select_related("hospital")[:21]]
        if len(allowed) > 20:
            allowed[20:] = ["..."]
        try:
            server = listener_start(host=host, port=port, ae_title=ae_title)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None

        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        bound_host, bound_port = server.server_address[:2]
        whom = f"Allowed to send: {', '.join(allowed)}." if allowed else "No device may send yet: add one in the admin."
        self.stdout.write(
            f"DICOM C-STORE listener: AE title {ae_title} on {bound_host}:{bound_port}. {whom} Ctrl-C stops it."
        )
        self.stdout.flush()
        try:
            while not stop.wait(timeout=1.0):
                pass
            self.stdout.write(f"DICOM listener stopping: open associations get up to {options['grace']:g} s.")
            self.stdout.flush()
            listener_stop(server, grace=options["grace"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("DICOM listener stopped.")
