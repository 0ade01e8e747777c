"""Cost of the hash-chained audit trail against its peer, a plain insert of the same row.

    .venv/bin/python bench/audit_chain.py [--rows N]                        # SQLite (WAL) in a temporary folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital .venv/bin/python bench/audit_chain.py   # PostgreSQL

Every audited request appends one row: the chain adds a locked read and an update of the chain head and a
SHA-256 to each insert. `verify_audit` reads the whole trail back. Prints one Markdown table row per figure.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")
if not os.environ.get("DATABASE_URL"):
    os.environ["MHOSPITAL_VAR_DIR"] = tempfile.mkdtemp(prefix="mhospital-bench-")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    rows = parser.parse_args().rows

    created_test_db = connection.vendor != "sqlite"
    if created_test_db:
        # A scratch database of its own (never the test suite's), dropped below.
        connection.settings_dict["TEST"]["NAME"] = "mhospital_audit_scratch"  # never a database in use
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    try:
        run(rows)
    finally:
        if created_test_db:
            connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def run(rows: int) -> None:
    from hospitals.audit import Action, audit_record, audit_verify
    from hospitals.models import AuditEntry

    started = time.perf_counter()
    for i in range(rows):
        audit_record(request=None, action=Action.VIEW, object_type="bench", object_id=i, detail="chained")
    chained = time.perf_counter() - started

    started = time.perf_counter()
    problems = sum(1 for _ in audit_verify())
    verify = time.perf_counter() - started

    started = time.perf_counter()
    for i in range(rows):  # the peer: the same row, no chain head lock, no hash
        AuditEntry(
            seq=10_000_000 + i,
            at=timezone.now(),
            action=Action.VIEW,
            outcome="success",
            object_type="bench",
            object_id=str(i),
            detail="plain",
            prev_hash="",
            hash="",
        ).save()
    plain = time.perf_counter() - started

    db = f"{connection.vendor} {getattr(connection, 'pg_version', '')}".strip()
    print(
        f"| audit append, chained | {db} | {rows} | {rows / chained:,.0f} rows/s | {chained / rows * 1e3:.2f} ms/row |"
    )
    print(f"| peer: plain insert | {db} | {rows} | {rows / plain:,.0f} rows/s | {plain / rows * 1e3:.2f} ms/row |")
    print(f"| ratio chained / plain time | {db} | {rows} | {chained / plain:.2f}x | |")
    print(f"| verify_audit | {db} | {rows} | {rows / verify:,.0f} rows/s | {problems} breaks found |")


if __name__ == "__main__":
    main()
