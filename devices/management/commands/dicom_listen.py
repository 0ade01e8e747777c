from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.dicom_listener import listener_start, listener_stop
from devices.management.commands._listening import allowed_list, run_until_stopped
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
        allowed = allowed_list(
            Device.objects.filter(active=True, hospital__is_active=True).exclude(ae_title=""), "ae_title"
        )
        try:
            server = listener_start(host=host, port=port, ae_title=ae_title)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        bound_host, bound_port = server.server_address[:2]
        whom = f"Allowed to send: {allowed}." if allowed else "No device may send yet: add one in the admin."
        run_until_stopped(
            self.stdout,
            started=f"DICOM C-STORE listener: AE title {ae_title} on {bound_host}:{bound_port}. {whom} "
            "Ctrl-C stops it.",
            stopping=f"DICOM listener stopping: open associations get up to {options['grace']:g} s.",
            stop=lambda: listener_stop(server, grace=options["grace"]),
        )
        self.stdout.write("DICOM listener stopped.")
