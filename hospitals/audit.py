"""The audit trail: the one helper every view and service calls, and the chain check.

Every row's hash covers its own fields and the previous row's hash, so editing
or removing a row breaks the chain from that row on (`manage.py verify_audit`).
The hash is an HMAC keyed by AUDIT_CHAIN_KEY, which lives in the environment,
not the database: someone who can write to the database cannot forge a chain.

The trail is AUDIT_CHAIN_LANES such chains, each with its own head row. An append
takes the first head no one else holds, so audited writes of the whole platform do
not queue on one row; alone, an append always takes the first chain.
"""

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models.sql import InsertQuery
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.ipv6 import clean_ipv6_address

from hospitals.models import AuditChainHead, AuditEntry, Staff
from hospitals.scoping import membership_remembered, request_membership

Action = AuditEntry.Action
Outcome = AuditEntry.Outcome

GENESIS_HASH = "0" * 64
_HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_username",
    "actor_role",
    "actor_hospital_id",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "detail",
    "prev_hash",
)


def entry_hash(entry: AuditEntry) -> str:
    values: dict[str, Any] = {name: getattr(entry, name) for name in _HASHED_FIELDS}
    values["at"] = entry.at.astimezone(UTC).isoformat()
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return salted_hmac("mhospital.audit", canonical, secret=settings.AUDIT_CHAIN_KEY, algorithm="sha256").hexdigest()


def _actor(user: Any, request: HttpRequest | None) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    if request is not None and user is getattr(request, "user", None):
        staff = request_membership(request)
    else:
        # Not the signed-in user (an ended session, a failed sign-in, a call socket's message): record the
        # role they held, even if their membership has since been deactivated; the active one if this unit
        # of work has read it already.
        staff = membership_remembered(user) or Staff.objects.filter(user=user).first()
    role = staff.role if staff is not None else ("platform_admin" if user.is_superuser else "")
    return {
        "actor_id": user.pk,
        "actor_username": user.get_username(),
        "actor_role": role,
        "actor_hospital_id": staff.hospital_id if staff is not None else None,
    }


def _ip(raw: str | None) -> str | None:
    """The address as the database will store it (hashing the raw text would break on IPv6), or None if junk."""
    try:
        address = ipaddress.ip_address(raw or "")
    except ValueError:
        return None
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


def _text(value: object, limit: int) -> str:
    # PostgreSQL text cannot hold NUL; a probe that sends one must still be recorded.
    return str(value).replace("\x00", "\ufffd")[:limit]


def _client(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "ip": _ip(request.META.get("REMOTE_ADDR")),
        "user_agent": _text(request.META.get("HTTP_USER_AGENT", ""), 300),
        "request_id": getattr(request, "request_id", ""),
    }


def audit_record(
    *,
    request: HttpRequest | None,
    action: str,
    outcome: str = Outcome.SUCCESS,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: object = "",
    patient_id: object = "",
    user: Any = None,
    detail: str = "",
) -> AuditEntry:
    """Append one audit row: who (from `user` or the request), what, on which object, with what outcome."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    actor = user if user is not None else getattr(request, "user", None)
    entry = AuditEntry(
        at=timezone.now(),
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=_text(object_id, 64),
        patient_id=_text(patient_id or "", 64),
        detail=_text(detail, 500),
        **_actor(actor, request),
        **_client(request),
    )
    batch = _batch.get()
    if batch is not None:
        batch.append(entry)  # chained and written when the batch closes
        return entry
    _append([entry])
    return entry


def audit_not_found(request: HttpRequest, action: str, object_type: str, object_id: object) -> Http404:
    """Audit a request for an object outside the user's scope (or absent); the caller raises the 404."""
    audit_record(
        request=request, action=action, outcome=Outcome.NOT_FOUND, object_type=object_type, object_id=object_id
    )
    return Http404()


def _append(entries: list[AuditEntry]) -> None:
    """Chain the entries after a chain's head and write them: one lock of the head however many.

    Every append waits for its head from its locked read until its commit, so what happens in between is
    kept to one statement: the rows and the head's move together. Inside a transaction no savepoint is
    taken: the rows audit what that transaction writes, and go or stay with it."""
    with transaction.atomic(savepoint=False):
        head = _head_locked()
        for entry in entries:
            entry.lane, entry.seq, entry.prev_hash = head.pk, head.last_seq + 1, head.last_hash
            entry.hash = entry_hash(entry)
            head.last_seq, head.last_hash = entry.seq, entry.hash
        connection = connections[AuditEntry.objects.db]
        if connection.vendor == "postgresql":  # a data-modifying WITH
            _write_with_head(connection, entries, head)
            return
        # The queryset refuses bulk_create to everyone else; appending chained rows is this module's job.
        models.QuerySet.bulk_create(AuditEntry.objects.all(), entries)
        head.save(update_fields=["last_seq", "last_hash"])


def _head_locked() -> AuditChainHead:
    """The first chain head that no other transaction holds, locked. When every chain made so far is held,
    the next chain is made (chains are made as they are first needed); when all are made and held, the first
    is waited for. Waits cannot go round in a circle: a transaction holding the first chain takes it again
    (its own lock is no obstacle to it) and never waits. SQLite, one writer at a time, always takes the first.
    """
    lanes = settings.AUDIT_CHAIN_LANES
    free = AuditChainHead.objects.select_for_update(skip_locked=True).filter(pk__lte=lanes).order_by("pk").first()
    if free is not None:
        return free
    made = set(AuditChainHead.objects.filter(pk__lte=lanes).values_list("pk", flat=True))
    head, _made = AuditChainHead.objects.select_for_update().get_or_create(
        pk=min(set(range(1, lanes + 1)) - made, default=1)
    )
    return head


def _write_with_head(connection: Any, entries: list[AuditEntry], head: AuditChainHead) -> None:
    """INSERT the entries and UPDATE the head in one statement (one round trip while the head is locked);
    the entries get their ids, as bulk_create gives them."""
    query = InsertQuery(AuditEntry)
    rows: list[models.Model] = list(entries)
    query.insert_values([field for field in AuditEntry._meta.concrete_fields if not field.primary_key], rows)
    ((insert, params),) = query.get_compiler(connection=connection).as_sql()
    quote, meta = connection.ops.quote_name, AuditChainHead._meta
    table, seq, last = (quote(name) for name in (meta.db_table, "last_seq", "last_hash"))
    move = f"UPDATE {table} SET {seq} = %s, {last} = %s WHERE id = %s"  # noqa: S608 - names from the model, values bound
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH moved AS ({move}) {insert} RETURNING id",
            [head.last_seq, head.last_hash, head.pk, *params],
        )
        for entry, (pk,) in zip(entries, cursor.fetchall(), strict=True):  # in the order of VALUES
            entry.pk, entry._state.adding, entry._state.db = pk, False, connection.alias


_batch: ContextVar[list[AuditEntry] | None] = ContextVar("audit_batch", default=None)


@contextmanager
def audit_batch() -> Iterator[None]:
    """Collect the audit rows of a block and append them together when it ends without an error: for a
    request that writes many records (a DICOMweb store of a whole study). Use it inside the transaction
    that writes those records, so rows and audit commit or vanish together."""
    if _batch.get() is not None:
        yield
        return
    token = _batch.set([])
    try:
        yield
        entries = _batch.get() or []
    finally:
        _batch.reset(token)
    if entries:
        _append(entries)


def audit_verify() -> Iterator[str]:
    """Yield one sentence per break in the trail's chains; nothing when the trail is intact.

    Each chain is read up to its head, then its head followed while appends go on, so a busy trail is no
    alarm."""
    heads = set(AuditChainHead.objects.values_list("pk", flat=True))
    written = set(AuditEntry.objects.order_by().values_list("lane", flat=True).distinct())
    for lane in sorted(heads | written):
        if lane in heads:
            yield from _chain_verify(lane)
        else:
            chain = "The chain" if lane == 1 else f"Chain {lane}'s"  # the first named as when it was the only one
            yield f"{chain} head is missing: the trail's end can no longer be checked (it was removed)."


def _chain_verify(lane: int) -> Iterator[str]:
    def number(seq: int) -> str:
        return AuditEntry.number_in(lane, seq)

    head = AuditChainHead.objects.get(pk=lane)
    in_chain = AuditEntry.objects.filter(lane=lane)
    expected_seq, expected_prev = 1, GENESIS_HASH
    while True:
        entries = in_chain.filter(seq__gte=expected_seq, seq__lte=head.last_seq).order_by("seq")
        for entry in entries.iterator(chunk_size=2000):
            if entry.seq != expected_seq:
                yield f"Entries {number(expected_seq)}..{number(entry.seq - 1)} are missing (removed)."
            if entry.prev_hash != expected_prev:
                yield (
                    f"Entry {number(entry.seq)} does not follow the entry before it (an entry was removed or edited)."
                )
            if entry_hash(entry) != entry.hash:
                yield f"Entry {number(entry.seq)} was edited after it was written."
            expected_seq, expected_prev = entry.seq + 1, entry.hash
        latest = AuditChainHead.objects.get(pk=lane)
        if latest.last_seq == head.last_seq:
            break
        head = latest  # entries were appended while we read: check them too
    if (head.last_seq, head.last_hash) != (expected_seq - 1, expected_prev):
        yield (
            f"{'The trail' if lane == 1 else f'Chain {lane}'} ends at entry {number(expected_seq - 1)} but "
            f"{number(head.last_seq)} were written (last entries removed)."
        )
    stray = list(in_chain.filter(seq__gt=head.last_seq).values_list("seq", flat=True)[:10])
    newest = AuditChainHead.objects.get(pk=lane).last_seq  # read after: an append in between is no stray
    for seq in (seq for seq in stray if seq > newest):
        yield f"Entry {number(seq)} is not part of the chain (written around the application)."
