from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hospitals.backup import BackupError, backup_write


class Command(BaseCommand):
    help = (
        "Back up the platform into an empty folder: every database record (database.json.gz), every stored "
        "file (media.tar) and a manifest of counts and SHA-256 sums. Restore with `manage.py restore`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="where to write the backup (created; must hold none)")

    def handle(self, *args: Any, folder: Path, **options: Any) -> None:
        try:
            summary = backup_write(folder=folder)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up {summary.records} records and {summary.files} files ({summary.bytes} bytes) to {folder}."
            )
        )
