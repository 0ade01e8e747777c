from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hospitals.audit import audit_verify
from hospitals.models import AuditEntry


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; exit non-zero naming every edited or removed entry."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = list(audit_verify())
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The audit trail was tampered with: {len(problems)} problem(s).")
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {AuditEntry.objects.count()} entries."))
