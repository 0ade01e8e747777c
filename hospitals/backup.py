"""Backup and restore of the whole platform: the database's records and the stored files, with a manifest.

A backup is a folder of three files: `database.exactjson.gz` (Django's dumpdata of every record, times to
the microsecond (hospitals/exactjson.py), foreign keys to
content types by natural key, so it loads into any freshly migrated database, SQLite or PostgreSQL),
`media.tar` (every file in the platform's storage, by its storage name) and `manifest.json` (when, the
migrations it was taken at, the count of every model's rows and each file's SHA-256). A restore loads it
into an empty database and storage and checks both against the manifest. Sessions are not kept: after a
restore everyone signs in again.
"""

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.core.files.base import File
from django.core.files.storage import Storage, default_storage
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from hospitals.audit import Action, audit_record, audit_verify
from hospitals.models import AuditEntry, Hospital

FORMAT = 1
DATABASE, MEDIA, MANIFEST = "database.exactjson.gz", "media.tar", "manifest.json"
# Rebuilt by `migrate` in the target (content types, permissions) or not worth keeping (sessions).
NOT_KEPT = ("contenttypes", "auth.permission", "sessions")
CHUNK = 2**20


class BackupError(Exception):
    """A backup that cannot be written or restored, and why."""


@dataclass
class Summary:
    records: int
    files: int
    bytes: int


def backup_write(*, folder: Path) -> Summary:
    """Write a backup of the database and the stored files into folder (which must not hold one already)."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / MANIFEST).exists():
        raise BackupError(f"{folder} already holds a backup; choose an empty folder.")
    # The backup reads every patient's record: the trail says so, and the entry travels in the backup.
    audit_record(request=None, action=Action.EXPORT, object_type="platform.backup", detail=f"backup to {folder}")
    outer = connection.in_atomic_block
    with transaction.atomic():  # one consistent view of the records, whatever is written meanwhile
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counts = _counts()
        call_command(
            "dumpdata",
            natural_foreign=True,
            format="exactjson",
            exclude=list(NOT_KEPT),
            output=str(folder / DATABASE),
            verbosity=0,
        )
    files, size = _media_write(default_storage, folder / MEDIA)
    manifest = {
        "format": FORMAT,
        "created": timezone.now().isoformat(),
        "database": connection.vendor,
        "migrations": _migrations(),
        "counts": counts,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return Summary(records=sum(counts.values()), files=len(files), bytes=size)


def backup_restore(*, folder: Path) -> Summary:
    """Load a backup into this (migrated, empty) database and storage, and check it against its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} holds no readable backup manifest: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Backup format {manifest.get('format')!r} is not the {FORMAT} this version reads.")
    newer = {app: name for app, name in manifest["migrations"].items() if name > _migrations().get(app, "")}
    if newer:
        raise BackupError(f"The backup was taken at later migrations than this code has: {newer}.")
    if Hospital.objects.exists() or AuditEntry.objects.exists():
        raise BackupError("This database already holds records: restore only into an empty, migrated database.")
    # Rows the migrations wrote (reference tables) give way to the backup's own, so that the database holds
    # exactly what was backed up; flush lets content types and permissions be made again for the loading.
    call_command("flush", interactive=False, verbosity=0)
    with transaction.atomic():
        call_command("loaddata", str(folder / DATABASE), verbosity=0)
        found = _counts()
        differ = {label: (n, found.get(label, 0)) for label, n in manifest["counts"].items() if found.get(label) != n}
        if differ:
            raise BackupError(f"Rows after loading differ from the backup's (expected, found): {differ}")
    problems = list(audit_verify())
    if problems:
        raise BackupError(f"The restored audit trail does not verify: {problems[:5]}")
    restored = _media_read(default_storage, folder / MEDIA, manifest["files"])
    audit_record(
        request=None,
        action=Action.CREATE,
        object_type="platform.backup",
        detail=f"restored the backup of {manifest['created']} from {folder}",
    )
    return Summary(records=sum(found.values()), files=len(restored), bytes=sum(restored.values()))


def _counts() -> dict[str, int]:
    kept = [
        model
        for model in apps.get_models()
        if model._meta.app_label not in NOT_KEPT and model._meta.label_lower not in NOT_KEPT
    ]
    return {model._meta.label_lower: model._default_manager.count() for model in kept}


def _migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        latest[app] = max(latest.get(app, ""), name)
    return latest


def _names(storage: Storage, folder: str = "") -> Iterator[str]:
    directories, files = storage.listdir(folder)
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for directory in sorted(directories):
        yield from _names(storage, f"{folder}/{directory}" if folder else directory)


def _media_write(storage: Storage, path: Path) -> tuple[dict[str, str], int]:
    """Every stored file into one tar archive: the SHA-256 of each, and their bytes in all."""
    digests: dict[str, str] = {}
    size = 0
    with tarfile.open(path, "w") as archive:
        for name in _names(storage):
            with storage.open(name, "rb") as source:
                digest = hashlib.sha256()
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    digest.update(chunk)
                source.seek(0)
                member = tarfile.TarInfo(name)
                member.size = storage.size(name)
                archive.addfile(member, source)
            digests[name] = digest.hexdigest()
            size += member.size
    return digests, size


def _media_read(storage: Storage, path: Path, expected: dict[str, str]) -> dict[str, int]:
    """Put each file back under its own name; every one must match its SHA-256 in the manifest. Files are
    streamed (a DICOM file may be a gigabyte): hashed from the archive first, then copied into storage."""
    restored: dict[str, int] = {}
    with tarfile.open(path, "r") as archive:
        for member in archive:
            if not member.isfile() or member.name not in expected:
                raise BackupError(f"{path} holds {member.name!r}, which the manifest does not list.")
            if _member_digest(archive, member) != expected[member.name]:
                raise BackupError(f"{member.name} in {path} is not the file the backup recorded (SHA-256 differs).")
            if storage.exists(member.name):
                storage.delete(member.name)
            source = archive.extractfile(member)
            assert source is not None
            saved = storage.save(member.name, File(source, name=member.name))
            if saved != member.name:
                raise BackupError(f"Storage put {member.name} under another name ({saved}).")
            restored[member.name] = member.size
    missing = sorted(set(expected) - set(restored))
    if missing:
        raise BackupError(f"{len(missing)} file(s) of the manifest are missing from {path}: {missing[:5]}")
    return restored


def _member_digest(archive: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    source = archive.extractfile(member)
    assert source is not None
    digest = hashlib.sha256()
    for chunk in iter(lambda: source.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()
