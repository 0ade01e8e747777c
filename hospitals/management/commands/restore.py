from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hospitals.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into an empty database and storage (migrated here first), "
        "then check every record count, every file's SHA-256 and the audit trail's chain against it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="the backup's folder")

    def handle(self, *args: Any, folder: Path, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        try:
            summary = backup_restore(folder=folder)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {summary.records} records and {summary.files} files ({summary.bytes} bytes) from "
                f"{folder}; counts, checksums and the audit chain verified."
            )
        )
