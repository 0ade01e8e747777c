"""Lab results that devices send: HL7 v2 ORU^R01 (over HTTP or MLLP), JSON readings and FHIR Observations.

Each way in turns what it received into the lab pipeline's results (diagnostics/labs.py) under the
device's own hospital: the token (or, over MLLP, the registered HL7 sender) decides the hospital, so a record
number of another hospital's patient matches nobody and the result waits in the review queue.

HL7 is accepted, then drained ("accept then drain"): the request checks the message, keeps it (a
`LabMessage`, queued) and answers at once; a Celery task drains the queue, storing up to DRAIN_BATCH
messages per transaction, so a busy analyser costs the worker a few queries per batch rather than per
message. The ACK is computed from the message itself before it is stored (the same checks the pipeline
makes), so it names every OBX row that will be refused (AE); AA means accepted for processing. What only
storing can tell (an unknown record number, test or unit) sends a result to the review queue, which is not
an error of the sender. A message sent again gets the first answer and is stored once. A periodic sweep
starts a drain when messages have sat queued too long. A message with a value beyond its test's critical
limits does not queue: it is stored in the request, so its alert reaches the screens however long the queue.

JSON readings and FHIR Observations are few per request and answered with what became of each, so they are
stored before the answer.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from devices import hl7
from devices.models import Device
from devices.selectors import device_for_hl7_sender
from devices.services import TOKEN_USE_RECORD_INTERVAL
from diagnostics.labs import (
    Problem,
    ResultIn,
    StoreReport,
    lab_message_open,
    lab_results_store,
    lab_results_store_many,
    reading_from_json,
    reading_json,
    results_check,
    results_critical,
    rows_insert,
)
from diagnostics.models import LabMessage, Observation
from diagnostics.models.labs import Source
from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import Hospital

log = logging.getLogger(__name__)


def device_sender(device: Device) -> str:
    """The pipeline's sender of a device: the same over HTTP and MLLP, so a message sent both ways is one."""
    return f"device:{device.pk}"


def _local(hospital: Hospital) -> ZoneInfo:
    return ZoneInfo(hospital.time_zone)


# HL7 v2.


@dataclass(frozen=True)
class Hl7Answer:
    """The ACK to send back, its code (AA, AE, AR) and the message kept (None when refused)."""

    ack: str
    code: str
    message_id: int | None = None


def hl7_receive(*, device: Device, data: bytes, peer: str = "") -> Hl7Answer:
    """Take an ORU^R01 a device sent: refuse it whole (AR), or keep it, queue it and answer AA, or AE naming
    the OBX rows that will not be stored. The same message again (its MSH-10) gets the same answer. A batch
    (FHS/BHS … BTS/FTS) is taken message by message and answered with a batch of their ACKs."""
    text = hl7.text_of(data)
    batch = hl7.batch_read(text)
    if batch is not None:
        return _hl7_batch_take(device, batch, peer)
    return _hl7_take(device, text, peer)


def _hl7_batch_take(device: Device, batch: hl7.Batch, peer: str) -> Hl7Answer:
    """Each message of a batch as if it had come alone, kept in one transaction (one commit for the batch).
    The answer's code is AA when every message was, AR when every one was refused, else AE."""
    if not batch.messages or len(batch.messages) > hl7.LARGEST_BATCH:
        reason = (
            _("The batch holds no message: send ORU^R01 messages between its BHS and BTS segments.")
            if not batch.messages
            else _("The batch holds %(count)s messages; at most %(largest)s are taken in one batch.")
            % {"count": len(batch.messages), "largest": hl7.LARGEST_BATCH}
        )
        _refusal_audit(device, f"HL7 batch {batch.control_id!r}", peer, reason)
        ack = hl7.ack_build(header=None, code="AR", errors=[hl7.AckError("BHS^1", "100", reason)])
        return Hl7Answer(hl7.batch_ack_build(batch=batch, acks=[ack]), "AR")
    with transaction.atomic():
        answers = _hl7_take_many(device, batch.messages, peer)
    codes = {answer.code for answer in answers}
    code = "AA" if codes == {"AA"} else "AR" if codes == {"AR"} else "AE"
    return Hl7Answer(hl7.batch_ack_build(batch=batch, acks=[answer.ack for answer in answers]), code)


def _hl7_take(device: Device, text: str, peer: str) -> Hl7Answer:
    (answer,) = _hl7_take_many(device, [text], peer)
    return answer


def _hl7_take_many(device: Device, texts: list[str], peer: str) -> list[Hl7Answer]:
    """Read, keep and answer messages (a batch's, in its transaction, or one alone): each is answered as if
    it had come alone, but they are kept with a few queries together and nudge the drain once."""
    local = _local(device.hospital)
    answers: list[Hl7Answer | None] = []
    taken: list[tuple[int, hl7.OruRead, str]] = []
    for text in texts:
        try:
            read = hl7.oru_read(text, local=local)
        except hl7.Hl7Refused as refused:
            _refusal_audit(device, f"HL7 message {refused.header.control_id!r}", peer, str(refused))
            error = hl7.AckError(location=refused.location, code=refused.code, text=refused.reason)
            answers.append(Hl7Answer(hl7.ack_build(header=refused.header, code="AR", errors=[error]), "AR"))
            continue
        taken.append((len(answers), read, text))
        answers.append(None)
    opened = _hl7_messages_open(device, [(read, text) for _index, read, text in taken])
    nudge = False
    for (index, read, _text), (message, _new) in zip(taken, opened, strict=True):
        if message.status == LabMessage.Status.QUEUED:
            # A resend of a message still queued is the same text (another text under a known control id
            # is kept as a message of its own), so this reading is the message's.
            accepted, unstorable = results_check(read.results)
            problems = read.problems + unstorable
            if results_critical(accepted):
                _store_now(message, read)  # its alert must not wait behind the queue
            else:
                nudge = True
        else:
            problems = [Problem(**error) for error in message.errors]  # stored: what storing found
        code = "AE" if problems else "AA"
        errors = hl7.ack_errors(problems)
        ack = hl7.ack_build(header=read.header, code=code, errors=errors, control_id=f"MH{message.pk}")
        answers[index] = Hl7Answer(ack, code, message.pk)
    if nudge:
        # At once when no transaction is open (a device's request). A resend of a message still queued
        # nudges again, in case the first nudge was lost; a failing cache leaves it to the sweep.
        transaction.on_commit(_nudge, robust=True)
    return [answer for answer in answers if answer is not None]


def _refusal_audit(device: Device, what: str, peer: str, reason: str) -> None:
    audit_record(
        request=None,
        action=Action.CREATE,
        outcome=Outcome.INVALID,
        obj=device,
        detail=f"{what} refused{' from ' + peer if peer else ''}: {reason}",
    )


def _store_now(message: LabMessage, read: hl7.OruRead) -> None:
    """Store a queued message in the request, unless a drain has taken it meanwhile (it holds the row)."""
    with transaction.atomic():
        queued = LabMessage.objects.select_for_update().filter(pk=message.pk, status=LabMessage.Status.QUEUED)
        locked = queued.first()
        if locked is not None:
            lab_results_store(message=locked, results=read.results, problems=read.problems)


def _alternate_id(control_id: str, text: str) -> str:
    """The control id of another message sent under one seen before: many analysers count their control
    ids from 1 again after a restart, so another text under a known id is a message of its own (the same
    text again is the resend of the first)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{control_id[:47]}~{digest}"


def _hl7_message_open(device: Device, read: hl7.OruRead, text: str) -> tuple[LabMessage, bool]:
    message, new = _hl7_message_open_as(device, read, text, read.header.control_id)
    if not new and message.raw != text:
        message, new = _hl7_message_open_as(device, read, text, _alternate_id(read.header.control_id, text))
    return message, new


def _hl7_message_open_as(device: Device, read: hl7.OruRead, text: str, control_id: str) -> tuple[LabMessage, bool]:
    return lab_message_open(
        hospital_id=device.hospital_id,
        source=Source.HL7,
        sender=device_sender(device),
        control_id=control_id,
        raw=text,
        device_id=device.pk,
        reading=reading_json(read.results, read.problems),
    )


def _hl7_messages_open(device: Device, items: list[tuple[hl7.OruRead, str]]) -> list[tuple[LabMessage, bool]]:
    """`_hl7_message_open` for each of several messages, in order, with one query to find those kept before
    and one to keep the rest (a message sent twice in the batch is kept once). Inside a transaction; should
    a parallel request keep one of them meanwhile, each is opened on its own instead."""
    if len(items) < 2:
        return [_hl7_message_open(device, read, text) for read, text in items]
    sender = device_sender(device)
    ids = {read.header.control_id[:64] for read, _text in items}
    ids |= {_alternate_id(read.header.control_id, text) for read, text in items}
    known = {
        message.control_id: message
        for message in LabMessage.objects.filter(hospital_id=device.hospital_id, sender=sender, control_id__in=ids)
    }
    opened: list[tuple[LabMessage, bool]] = []
    fresh: list[LabMessage] = []
    for read, text in items:
        control_id = read.header.control_id[:64]
        message = known.get(control_id)
        if message is not None and message.raw != text:
            control_id = _alternate_id(read.header.control_id, text)
            message = known.get(control_id)
        if message is not None:
            opened.append((message, False))  # kept before, or earlier in this batch
            continue
        message = LabMessage(
            hospital_id=device.hospital_id,
            source=Source.HL7,
            sender=sender,
            control_id=control_id,
            raw=text,
            device_id=device.pk,
            reading=reading_json(read.results, read.problems),
        )
        known[control_id] = message
        fresh.append(message)
        opened.append((message, True))
    try:
        with transaction.atomic():
            rows_insert(fresh)
    except IntegrityError:
        return [_hl7_message_open(device, read, text) for read, text in items]
    return opened


def mllp_receive(*, data: bytes, peer: str) -> Hl7Answer:
    """A message that came over MLLP, where there are no tokens: the device is the active device registered
    under the message's sending application and facility (MSH-3, MSH-4); anyone else is refused (AR) and
    the attempt audited."""
    text = hl7.text_of(data)
    batch = hl7.batch_read(text)
    # A batch's device is the one its (first) message names; its messages all come from one sender.
    header = hl7.header_read(batch.messages[0] if batch is not None and batch.messages else text)
    device = (
        device_for_hl7_sender(application=header.sending_application, facility=header.sending_facility)
        if header is not None
        else None
    )
    if header is None or device is None:
        sender = f"{header.sending_application}^{header.sending_facility}" if header else ""
        audit_record(
            request=None,
            action=Action.LOGIN_FAILURE,
            outcome=Outcome.DENIED,
            object_type="devices.device",
            detail=f"MLLP message from {peer} refused: HL7 sender {sender!r} is not an active device",
        )
        if header is None:
            error = hl7.AckError("MSH^1", "100", str(hl7.NOT_HL7))
            return Hl7Answer(hl7.ack_build(header=None, code="AR", errors=[error]), "AR")
        reason = _(
            "No active device is registered as the HL7 sender “%(sender)s” (MSH-3^MSH-4). Register the analyser "
            "(or activate it) on the platform's device page with this sender."
        ) % {"sender": sender.rstrip("^")}
        return Hl7Answer(hl7.ack_build(header=header, code="AR", errors=[hl7.AckError("MSH^1^3", "207", reason)]), "AR")
    now = timezone.now()
    if device.last_seen_at is None or now - device.last_seen_at >= TOKEN_USE_RECORD_INTERVAL:
        Device.objects.filter(pk=device.pk).update(last_seen_at=now)  # at most once a minute, as for tokens
    return hl7_receive(device=device, data=data, peer=peer)


# Draining: a worker stores queued messages in batches, oldest first, several per transaction.

DRAIN_BATCH = 100
DRAIN_PENDING = "devices:hl7-drain-pending"
DRAIN_PENDING_SECONDS = 10  # a lost nudge holds later ones back no longer than this (the sweep is the net)


def _nudge() -> None:
    """See that a drain is on its way: at most one waits in the queue at a time (a key in the shared cache),
    so a burst of messages costs the worker one task per batch rather than one per message."""
    from devices.tasks import hl7_messages_drain

    if cache.add(DRAIN_PENDING, 1, timeout=DRAIN_PENDING_SECONDS):
        hl7_messages_drain.delay()


def hl7_drain_started() -> None:
    """A drain has begun: a message queued from now on nudges another one (which a second worker process
    may run beside this one; each takes messages the other has not locked)."""
    cache.delete(DRAIN_PENDING)


def hl7_messages_drain(*, limit: int = DRAIN_BATCH) -> int:
    """Store up to `limit` queued HL7 messages (the Celery task); returns how many. Safe to run twice or at
    once: each message is locked while it is stored, and only queued ones are taken."""
    with transaction.atomic():
        messages = list(
            LabMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=LabMessage.Status.QUEUED, source=Source.HL7)
            .order_by("received_at")[:limit]
        )
        if not messages:
            return 0
        zones: dict[int, ZoneInfo] = {}
        batch: list[tuple[LabMessage, list[ResultIn], list[Problem]]] = []
        for message in messages:
            if message.reading is not None:  # read when it came: not read again
                batch.append((message, *reading_from_json(message.reading)))
                continue
            if not zones:  # kept before its reading was: read now
                zones = {
                    hospital.pk: _local(hospital)
                    for hospital in Hospital.objects.filter(pk__in={m.hospital_id for m in messages}).only("time_zone")
                }
            try:
                read = hl7.oru_read(message.raw, local=zones[message.hospital_id])
            except hl7.Hl7Refused as refused:  # it was read when it came in: only a change of this code does it
                batch.append((message, [], [Problem("MSH", "message", refused.reason)]))
                continue
            batch.append((message, read.results, read.problems))
        lab_results_store_many(batch)
    return len(messages)


def hl7_messages_requeue_stuck() -> int:
    """Periodic: start a drain when HL7 messages have sat queued too long (a lost task, a dead worker)."""
    from devices.tasks import hl7_messages_drain

    since = timezone.now() - timedelta(minutes=settings.LAB_STUCK_MINUTES)
    stuck = LabMessage.objects.filter(status=LabMessage.Status.QUEUED, source=Source.HL7, received_at__lt=since).count()
    if stuck:
        log.warning("%s HL7 messages had waited too long in the queue: draining", stuck)
        hl7_messages_drain.delay()
    return stuck


# JSON readings and FHIR Observations: stored before the answer.


@dataclass
class Stored:
    """What became of a request: its message, whether it was new, the results stored, duplicates, errors."""

    message: LabMessage
    new: bool
    observations: list[Observation] = field(default_factory=list)
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)


def body_digest(body: Any) -> str:
    """A control id for a request that names none: the same readings sent again are the same message."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def results_receive(
    *, device: Device, source: str, control_id: str, raw: str, results: list[ResultIn], problems: list[Problem]
) -> Stored:
    """Keep the request and store its results at once (JSON and FHIR). The same control id again stores
    nothing and returns the first request's results."""
    with transaction.atomic():
        message, new = lab_message_open(
            hospital_id=device.hospital_id,
            source=source,
            sender=device_sender(device),
            control_id=control_id,
            raw=raw,
            device_id=device.pk,
        )
        if not new:
            return Stored(
                message=message,
                new=False,
                observations=list(message.observations.select_related("test").order_by("pk")),
                problems=[Problem(**error) for error in message.errors],
            )
        report: StoreReport = lab_results_store(message=message, results=results, problems=problems)
    return Stored(
        message=message,
        new=True,
        observations=report.stored,
        duplicates=report.duplicates,
        problems=report.problems,
    )
