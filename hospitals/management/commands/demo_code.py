from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.demo import demo_totp_key


class Command(BaseCommand):
    help = "Print the current second-factor code of a demo user (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_code is for demo installations only.")
        username = options["username"]
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None or device.key != demo_totp_key(username):
            raise CommandError(f"{username} is not a demo user with the demo authenticator.")
        self.stdout.write(f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}")
