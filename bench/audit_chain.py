"""Cost of the hash-chained audit trail against its peer, a plain insert of the same row.

    .venv/bin/python bench/audit_chain.py [--rows N]                        # SQLite (WAL) in a temporary folder
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital .venv/bin/python bench/audit_chain.py   # PostgreSQL
    DATABASE_URL=... .venv/bin/python bench/audit_chain.py --writers 8 --seconds 10   # appends from 8 processes at once

Every audited request appends one row: the chain adds a locked read and an update of the chain head and a
SHA-256 to each insert. `verify_audit` reads the whole trail back. Prints one Markdown table row per figure.
"""

import argparse
import multiprocessing
import os
import statistics
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
    parser.add_argument("--writers", type=int, default=0, help="processes appending at once (PostgreSQL); 0: one")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the writers append")
    args = parser.parse_args()

    created_test_db = connection.vendor != "sqlite"
    if created_test_db:
        # A scratch database of its own (never the test suite's), dropped below.
        connection.settings_dict["TEST"]["NAME"] = "mhospital_audit_scratch"  # never a database in use
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    try:
        if args.writers:
            concurrent(args.writers, args.seconds)
        else:
            run(args.rows)
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


def _append_for(kind: str, seconds: float, results: "multiprocessing.Queue[list[float]]") -> None:
    """One writer: append for `seconds`, chained or plain, and report each append's time."""
    from hospitals.audit import Action, audit_record
    from hospitals.models import AuditEntry

    took: list[float] = []
    end = time.perf_counter() + seconds
    while (started := time.perf_counter()) < end:
        if kind == "chained":
            audit_record(request=None, action=Action.VIEW, object_type="bench", object_id=len(took), detail=kind)
        else:  # the peer: the same row, no chain head, no hash (a sequence number no writer shares)
            AuditEntry(
                seq=10_000_000 * (os.getpid() % 1000 + 1) + len(took),
                at=timezone.now(),
                action=Action.VIEW,
                outcome="success",
                object_type="bench",
                object_id=str(len(took)),
                detail=kind,
                prev_hash="",
                hash="",
            ).save()
        took.append(time.perf_counter() - started)
    results.put(took)


def concurrent(writers: int, seconds: float) -> None:
    """Appends per second and their latency with `writers` processes appending at once: the chain head is
    one row every append locks until its commit, so this is the trail's ceiling under load."""
    from django.db import connections

    db = f"{connection.vendor} {getattr(connection, 'pg_version', '')}".strip()
    for kind in ("chained", "plain"):
        connections.close_all()  # each writer opens its own: none shared, nor the pool's
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper has it
        results: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        workers = [
            multiprocessing.get_context("fork").Process(target=_append_for, args=(kind, seconds, results))
            for _ in range(writers)
        ]
        for worker in workers:
            worker.start()
        took = [t for _ in workers for t in results.get()]
        for worker in workers:
            worker.join()
        p95 = statistics.quantiles(took, n=20)[-1] * 1e3
        print(
            f"| audit append, {kind}, {writers} writers at once | {db} | {len(took)} | "
            f"{len(took) / seconds:,.0f} rows/s | p50 {statistics.median(took) * 1e3:.1f} ms, p95 {p95:.1f} ms |"
        )


if __name__ == "__main__":
    main()
