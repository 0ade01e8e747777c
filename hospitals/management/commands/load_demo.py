from typing import Any

from django.core.management.base import BaseCommand
from django.utils import translation

from hospitals.demo import DEMO_PASSWORD, demo_load


class Command(BaseCommand):
    help = "Load the demo hospitals and staff (safe to run again) and print the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override("en"):  # the console and README speak English
            logins = demo_load()
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password for all: {DEMO_PASSWORD})"))
        for login in logins:
            line = f"  {login.username:22} {login.role:20}  {login.hospital}"
            if login.totp_secret:
                line += f"\n  {'':22} second factor: authenticator key {login.totp_secret}"
            self.stdout.write(line)
        self.stdout.write(
            "\nSpecialists and admins confirm sign-in with a six-digit code: add the key to an authenticator app,\n"
            "or print the current code with:  .venv/bin/python manage.py demo_code USERNAME\n"
        )
