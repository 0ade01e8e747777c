"""The audit trail: one row per audited action, append-only, and tampering is caught."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client

from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import AuditEntry, Staff, User
from tests.conftest import Network, StaffFactory, need


@pytest.fixture
def tula_admin(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user


@pytest.fixture
def tula_nurse(network_a: Network) -> Staff:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN)


def _staff_form(**overrides: str) -> dict[str, str]:
    return {"first_name": "Olga", "last_name": "Sidorova", "role": "clinician", "job_title": "", **overrides}


# Each case: (description, what the admin does, the action and outcome the single new row must carry).
CASES: list[tuple[str, Callable[[Client, Staff, Network], object], str, str]] = [
    ("staff list", lambda c, s, n: c.get("/staff/"), Action.LIST, Outcome.SUCCESS),
    ("staff view", lambda c, s, n: c.get(f"/staff/{s.pk}/"), Action.VIEW, Outcome.SUCCESS),
    ("staff update", lambda c, s, n: c.post(f"/staff/{s.pk}/", _staff_form()), Action.UPDATE, Outcome.SUCCESS),
    (
        "staff update, bad name",
        lambda c, s, n: c.post(f"/staff/{s.pk}/", _staff_form(last_name="<script>x</script>")),
        Action.UPDATE,
        Outcome.INVALID,
    ),
    (
        "staff create",
        lambda c, s, n: c.post("/staff/new/", {**_staff_form(), "username": "o.sidorova"}),
        Action.CREATE,
        Outcome.SUCCESS,
    ),
    ("deactivate", lambda c, s, n: c.post(f"/staff/{s.pk}/deactivate/"), Action.UPDATE, Outcome.SUCCESS),
    ("reset second factor", lambda c, s, n: c.post(f"/staff/{s.pk}/reset-second-factor/"), Action.UPDATE, "success"),
    ("audit search", lambda c, s, n: c.get("/audit/?action=login"), Action.LIST, Outcome.SUCCESS),
    (
        "other hospital's staff",
        lambda c, s, n: c.get(f"/staff/{StaffFactory(hospital=n.central).pk}/"),
        Action.VIEW,
        Outcome.NOT_FOUND,
    ),
    ("logout", lambda c, s, n: c.post("/accounts/logout/"), Action.LOGOUT, Outcome.SUCCESS),
]


@pytest.mark.parametrize(("case", "act", "action", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_each_audited_action_writes_exactly_one_row(
    case: str, act, action: str, outcome: str, tula_admin: User, tula_nurse: Staff, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    before = AuditEntry.objects.count()
    act(client, tula_nurse, network_a)
    rows = list(AuditEntry.objects.order_by("id")[before:])
    assert len(rows) == 1, [str(r) for r in rows]
    assert (rows[0].action, rows[0].outcome) == (action, outcome)
    assert rows[0].actor_username == tula_admin.username
    assert rows[0].actor_hospital_id == network_a.regional.pk
    assert rows[0].request_id and rows[0].ip == "127.0.0.1"


def test_a_clinician_reaching_for_admin_pages_is_recorded(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional).user
    response = login(clinician).get("/audit/")
    assert response.status_code == 403
    assert "Only hospital admins read the audit trail." in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome, entry.actor_username) == ("permission_denied", "denied", clinician.username)


def _write_trail(n: int) -> list[AuditEntry]:
    return [audit_record(request=None, action=Action.VIEW, object_type="test", object_id=i) for i in range(n)]


def test_the_orm_refuses_to_change_or_remove_entries(db) -> None:  # type: ignore[no-untyped-def]
    entry = _write_trail(1)[0]
    entry.detail = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(detail="rewritten")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().detail == ""


def _tamper(sql: str, params: list[object]) -> None:
    """What an intruder with database access would do: bypass the ORM and the trigger."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE hospitals_auditentry DISABLE TRIGGER hospitals_auditentry_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE hospitals_auditentry ENABLE TRIGGER hospitals_auditentry_append_only")


def test_verify_audit_passes_on_an_intact_trail(db, capsys) -> None:  # type: ignore[no-untyped-def]
    _write_trail(5)
    call_command("verify_audit")
    assert "Audit trail intact: 5 entries." in capsys.readouterr().out


def test_verify_audit_catches_an_edited_row(db, capsys) -> None:  # type: ignore[no-untyped-def]
    entries = _write_trail(5)
    _tamper("UPDATE hospitals_auditentry SET actor_username = %s WHERE seq = %s", ["someone-else", entries[2].seq])
    with pytest.raises(CommandError, match="tampered"):
        call_command("verify_audit")
    assert f"Entry {entries[2].seq} was edited" in capsys.readouterr().err


def test_verify_audit_catches_a_rehashed_edit(db, capsys) -> None:  # type: ignore[no-untyped-def]
    """An intruder who also recomputes the edited row's hash still breaks the link to the next row."""
    from hospitals.audit import entry_hash

    entries = _write_trail(4)
    forged = AuditEntry.objects.get(seq=entries[1].seq)
    forged.detail = "forged"
    _tamper(
        "UPDATE hospitals_auditentry SET detail = %s, hash = %s WHERE seq = %s",
        ["forged", entry_hash(forged), forged.seq],
    )
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"Entry {entries[2].seq} does not follow" in capsys.readouterr().err


@pytest.mark.parametrize("removed", ["middle", "last"])
def test_verify_audit_catches_a_removed_row(removed: str, db, capsys) -> None:  # type: ignore[no-untyped-def]
    entries = _write_trail(5)
    victim = entries[2] if removed == "middle" else entries[-1]
    _tamper("DELETE FROM hospitals_auditentry WHERE seq = %s", [victim.seq])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "removed" in capsys.readouterr().err


@pytest.mark.needs_postgres
def test_postgresql_itself_refuses_update_and_delete(db) -> None:  # type: ignore[no-untyped-def]
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    entry = _write_trail(1)[0]
    for sql in (
        "UPDATE hospitals_auditentry SET detail = 'x' WHERE seq = %s",
        "DELETE FROM hospitals_auditentry WHERE seq = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.seq])
    assert AuditEntry.objects.get().detail == ""


def test_audit_viewer_is_scoped_and_searchable(network_a: Network, network_b: Network, login) -> None:  # type: ignore[no-untyped-def]
    tula_admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    kostroma_clinician = StaffFactory(hospital=network_b.regional).user
    tula_clinician = StaffFactory(hospital=network_a.regional).user
    audit_record(request=None, user=kostroma_clinician, action=Action.VIEW, object_type="x", patient_id="KOS-1")
    audit_record(request=None, user=tula_clinician, action=Action.VIEW, object_type="x", patient_id="TUL-7")
    audit_record(request=None, user=tula_clinician, action=Action.EXPORT, object_type="x", patient_id="TUL-8")
    client = login(tula_admin)

    page = client.get("/audit/").content.decode()
    assert "TUL-7" in page and "TUL-8" in page
    assert "KOS-1" not in page  # another hospital's trail is not shown

    page = client.get("/audit/", {"patient": "TUL-8"}).content.decode()
    assert "TUL-8" in page and "TUL-7" not in page
    page = client.get("/audit/", {"action": "view", "user": tula_clinician.username}).content.decode()
    assert "TUL-7" in page and "TUL-8" not in page


def test_verify_audit_catches_a_row_written_around_the_application(db, capsys) -> None:  # type: ignore[no-untyped-def]
    entries = _write_trail(3)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO hospitals_auditentry (seq, at, action, outcome, object_type, object_id, patient_id,"
            " actor_username, actor_role, user_agent, request_id, detail, prev_hash, hash)"
            " VALUES (%s, %s, 'view', 'success', 'x', '', '', 'ghost', '', '', '', '', %s, %s)",
            [entries[-1].seq + 1, entries[-1].at, entries[-1].hash, "f" * 64],
        )
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"Entry {entries[-1].seq + 1} is not part of the chain" in capsys.readouterr().err


def test_the_chain_head_cannot_be_removed(db) -> None:  # type: ignore[no-untyped-def]
    from hospitals.models import AuditChainHead

    _write_trail(2)
    with pytest.raises(PermissionError):
        AuditChainHead.objects.get().delete()
    with pytest.raises(PermissionError):
        AuditChainHead.objects.all().delete()
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM hospitals_auditchainhead")
    assert AuditChainHead.objects.get().last_seq == 2


def test_a_probe_with_nul_characters_is_still_recorded(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    client = login(admin)
    assert client.get("/staff/", {"q": "Ива\x00нов"}).status_code == 200
    assert client.get("/audit/", {"user": "a\x00b"}).status_code == 200
    assert AuditEntry.objects.filter(action="list").count() == 2
    call_command("verify_audit")


def test_a_batch_of_rows_is_chained_like_rows_written_one_by_one(db, capsys) -> None:  # type: ignore[no-untyped-def]
    from hospitals.audit import audit_batch

    audit_record(request=None, action=Action.VIEW, object_type="before")
    with transaction.atomic(), audit_batch():
        for n in range(5):
            audit_record(request=None, action=Action.CREATE, object_type="batched", object_id=n)
        assert not AuditEntry.objects.filter(object_type="batched").exists()  # written when the batch closes
    audit_record(request=None, action=Action.VIEW, object_type="after")
    rows = list(AuditEntry.objects.order_by("seq").values_list("seq", "object_type"))
    assert [kind for _, kind in rows] == ["before", *["batched"] * 5, "after"]
    assert [seq for seq, _ in rows] == list(range(rows[0][0], rows[0][0] + 7))
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_a_batch_that_fails_writes_nothing(db) -> None:  # type: ignore[no-untyped-def]
    from hospitals.audit import audit_batch

    with pytest.raises(RuntimeError), transaction.atomic(), audit_batch():
        audit_record(request=None, action=Action.CREATE, object_type="batched")
        raise RuntimeError("the store failed")
    assert not AuditEntry.objects.filter(object_type="batched").exists()


# Several chains: an append does not wait for another transaction that holds a chain's head.


def _append_held_open(holding: threading.Event, release: threading.Event, held: list[AuditEntry]) -> None:
    """Another request: audits inside its transaction, then keeps the transaction open until released."""
    try:
        with transaction.atomic():
            held.append(audit_record(request=None, action=Action.UPDATE, object_type="held", object_id=1))
            holding.set()
            release.wait(10)
    finally:
        connection.close()


@contextmanager
def _chain_held_elsewhere(*, for_seconds: float = 10) -> Iterator[list[AuditEntry]]:
    """While the block runs, another transaction holds the chain it appended to (for at most `for_seconds`);
    the list gets that transaction's entry."""
    holding, release = threading.Event(), threading.Event()
    held: list[AuditEntry] = []
    other = threading.Thread(target=_append_held_open, args=(holding, release, held))
    timer = threading.Timer(for_seconds, release.set)
    other.start()
    try:
        assert holding.wait(10)
        timer.start()
        yield held
    finally:
        timer.cancel()
        release.set()
        other.join(10)


def _timed_append(object_type: str) -> tuple[AuditEntry, float]:
    started = time.monotonic()
    entry = audit_record(request=None, action=Action.VIEW, object_type=object_type, object_id=2)
    return entry, time.monotonic() - started


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_append_goes_to_another_chain_while_one_is_held_and_every_chain_verifies(capsys) -> None:  # type: ignore[no-untyped-def]
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    _write_trail(2)
    with _chain_held_elsewhere() as (held, *_):
        meanwhile, waited = _timed_append("meanwhile")
    assert waited < 2, f"the append waited {waited:.1f} s for the held chain"
    assert held.lane == 1 and meanwhile.lane != 1
    assert meanwhile.number == f"{meanwhile.lane}.1"
    # Once the first chain is free again, an append takes it, and the trail verifies chain by chain.
    after = audit_record(request=None, action=Action.VIEW, object_type="after", object_id=3)
    assert (after.lane, after.seq) == (1, held.seq + 1)
    call_command("verify_audit")
    assert "Audit trail intact: 5 entries." in capsys.readouterr().out

    # Tampering in the second chain is caught and named by its chain.
    _tamper("UPDATE hospitals_auditentry SET detail = %s WHERE id = %s", ["rewritten", meanwhile.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"Entry {meanwhile.number} was edited" in capsys.readouterr().err
    _tamper("DELETE FROM hospitals_auditentry WHERE id = %s", [meanwhile.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"Chain {meanwhile.lane} ends at entry {meanwhile.lane}.0 but {meanwhile.number} were written" in (
        capsys.readouterr().err
    )


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_when_every_chain_is_held_an_append_waits_for_the_first_and_follows_it(settings) -> None:  # type: ignore[no-untyped-def]
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    settings.AUDIT_CHAIN_LANES = 1
    with _chain_held_elsewhere(for_seconds=0.5) as (held, *_):
        waiting, waited = _timed_append("waiting")
    assert waited >= 0.4  # it waited for the holder's commit, and was chained after it
    assert (waiting.lane, waiting.seq, waiting.prev_hash) == (1, held.seq + 1, held.hash)
    call_command("verify_audit")
