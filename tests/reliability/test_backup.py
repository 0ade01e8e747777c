"""Backup and restore: `manage.py backup` of a working platform, `manage.py restore` into a fresh database and
storage in another process, and every record, file and the audit chain found there."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from diagnostics.models import Instance
from hospitals.models import AuditEntry
from patients.models import Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, dicom_for, store_now

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "MHOSPITAL_VAR_DIR")
# What the restored platform holds, read by a process of its own.
PROBE = """
import hashlib, json
from django.core.files.storage import default_storage
from diagnostics.models import Instance
from hospitals.audit import audit_verify
from hospitals.models import AuditEntry
from patients.models import Patient
print(json.dumps({
    "patients": sorted(Patient.objects.values_list("record_number", "family_name")),
    "files": {i.sop_instance_uid: hashlib.sha256(default_storage.open(i.file.name).read()).hexdigest()
              for i in Instance.objects.all()},
    "audit": AuditEntry.objects.count(),
    "audit_problems": list(audit_verify()),
}))
"""


def _manage(*args: str, database: str, media: Path, var: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(DATABASE_URL=database, MEDIA_ROOT=str(media), MHOSPITAL_VAR_DIR=str(var))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as the tests' own, for the restore."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    import psycopg

    db = connection.settings_dict
    name = f"mh_restore_{uuid.uuid4().hex[:12]}"
    admin = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    port = f":{db['PORT']}" if db.get("PORT") else ""
    yield f"postgres://{db['USER']}@{db['HOST']}{port}/{name}"
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_fresh_database_with_every_record_and_file(
    tmp_path: Path, network_a: Network, login, fresh_database: str
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional, family_name="Резервова")
    other = PatientFactory(hospital=network_a.regional)
    consultation_make(patient)
    stored = [store_now(patient, dicom_for(patient)), store_now(other, dicom_for(other, "MR_small.dcm"))]
    clinician = login(StaffFactory(hospital=network_a.regional).user)
    assert clinician.get(f"/patients/{patient.pk}/").status_code == 200  # an audited read

    call_command("backup", str(tmp_path / "backup"))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["counts"]["patients.patient"] == 2
    assert {s.instance.file.name for s in stored} <= set(manifest["files"])  # and the previews rendered of them
    expected_audit = AuditEntry.objects.count()
    assert AuditEntry.objects.filter(object_type="platform.backup", action="export").count() == 1

    media = tmp_path / "restored-media"
    restored = _manage("restore", str(tmp_path / "backup"), database=fresh_database, media=media, var=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "counts, checksums and the audit chain verified" in restored.stdout

    probe = _manage("shell", "--no-imports", "-c", PROBE, database=fresh_database, media=media, var=tmp_path)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["patients"] == sorted(
        [list(row) for row in Patient.objects.values_list("record_number", "family_name")]
    )
    assert found["files"] == {
        s.instance.sop_instance_uid: hashlib.sha256(Instance.objects.get(pk=s.instance.pk).file.read()).hexdigest()
        for s in stored
    }
    # Every entry came back and still verifies; the restore added its own.
    assert found["audit_problems"] == [] and found["audit"] == expected_audit + 1

    # A second restore into the same (now full) database is refused and changes nothing.
    again = _manage("restore", str(tmp_path / "backup"), database=fresh_database, media=media, var=tmp_path)
    assert again.returncode != 0 and "already holds records" in again.stderr


@pytest.mark.django_db(transaction=True)
def test_a_damaged_backup_is_refused_by_name(tmp_path: Path, network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    store_now(patient, dicom_for(patient))
    call_command("backup", str(tmp_path / "backup"))
    with pytest.raises(CommandError, match="already holds a backup"):
        call_command("backup", str(tmp_path / "backup"))

    manifest_path = tmp_path / "backup" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    name = next(iter(manifest["files"]))
    manifest["files"][name] = "0" * 64  # the archive's file no longer matches what the backup recorded
    manifest_path.write_text(json.dumps(manifest))
    media = tmp_path / "restored-media"
    restored = _manage(
        "restore", str(tmp_path / "backup"), database=f"sqlite:///{tmp_path / 'r.sqlite3'}", media=media, var=tmp_path
    )
    assert restored.returncode != 0
    assert name in restored.stderr and "SHA-256 differs" in restored.stderr
