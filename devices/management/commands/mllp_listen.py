from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.management.commands._listening import allowed_list, run_until_stopped
from devices.mllp import MllpListener
from devices.models import Device


class Command(BaseCommand):
    help = (
        "Run the MLLP listener: analysers registered as active devices with an HL7 sender (MSH-3^MSH-4) send "
        "HL7 v2 ORU^R01 results to it. Stops gracefully on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", help="address to listen on (default: MLLP_LISTENER_HOST)")
        parser.add_argument("--port", type=int, help="TCP port, 0 for any free one (default: MLLP_LISTENER_PORT)")
        parser.add_argument("--grace", type=float, default=10.0, help="seconds open connections get on shutdown (10)")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.MLLP_LISTENER_HOST
        port = settings.MLLP_LISTENER_PORT if options["port"] is None else options["port"]
        allowed = allowed_list(
            Device.objects.filter(active=True, hospital__is_active=True).exclude(hl7_sender=""), "hl7_sender"
        )
        listener = MllpListener(host=host, port=port)
        try:
            listener.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from None
        whom = f"Allowed to send: {allowed}." if allowed else "No device may send yet: set one's HL7 sender."
        run_until_stopped(
            self.stdout,
            started=f"MLLP listener on {host}:{listener.port}. {whom} Ctrl-C stops it.",
            stopping=f"MLLP listener stopping: open connections get up to {options['grace']:g} s.",
            stop=lambda: listener.stop(grace=options["grace"]),
        )
        self.stdout.write("MLLP listener stopped.")
