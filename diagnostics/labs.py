"""The lab pipeline: results from any way in (HL7, a device's JSON, FHIR, CSV, a clinician's hand) become
coded observations with units, reference ranges and flags; critical ones raise alerts.

Every way in turns what it received into `ResultIn` rows (the wire formats stay with their senders, in
`devices/`) and calls `lab_results_store` with the `LabMessage` that keeps the original. Nothing a sender
got wrong is guessed: a result whose patient, test or unit the platform does not know is stored as sent
and waits in the review queue; a result that cannot be stored at all (no number, a time in the future) is
named in the message's errors, and the rest of the message is stored regardless.
"""

import hashlib
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnostics import events
from diagnostics.models import LabAlert, LabMessage, LabTest, Observation, ReferenceRange
from diagnostics.models.labs import Source
from hospitals.audit import Action, Outcome, audit_batch, audit_record
from patients.models import Patient

RowT = TypeVar("RowT", bound=models.Model)

# A clock a little ahead of ours (an analyser's, a phone's) is not an error; more than this is.
FUTURE_TOLERANCE = timedelta(minutes=5)
# How long a worker trusts its copy of the reference tables; an admin's edit is seen within this time.
REFERENCE_TTL_SECONDS = 30.0
LARGEST_VALUE = Decimal("1e9")
SIX_PLACES = Decimal("0.000001")


@dataclass
class ResultIn:
    """One result as a way in read it; `where` names it in errors ("OBX 3", "row 7")."""

    value: str
    observed_at: datetime | None
    code: str = ""
    coding_system: str = ""  # "LN" for a LOINC code, else the sender's own code
    name: str = ""
    unit: str = ""
    range: str = ""
    flag: str = ""
    record_number: str = ""
    patient: Patient | None = None  # chosen by a clinician: then record_number is not looked up
    where: str = ""


@dataclass(frozen=True)
class Problem:
    """A result that was not stored: where it was, which field, and why, as a sentence."""

    where: str
    field: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"where": self.where, "field": self.field, "reason": self.reason}


@dataclass
class StoreReport:
    stored: list[Observation] = field(default_factory=list)
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def review(self) -> int:
        return sum(1 for observation in self.stored if observation.review)


def reading_json(results: Iterable[ResultIn], problems: Iterable[Problem]) -> dict[str, Any]:
    """What a way in read from a message, as JSON to keep on its `LabMessage` (a chosen patient is not kept:
    a way in that queues its messages names patients by record number)."""
    return {
        "results": [
            {
                "value": result.value,
                "observed_at": result.observed_at.isoformat() if result.observed_at is not None else None,
                "code": result.code,
                "coding_system": result.coding_system,
                "name": result.name,
                "unit": result.unit,
                "range": result.range,
                "flag": result.flag,
                "record_number": result.record_number,
                "where": result.where,
            }
            for result in results
        ],
        "problems": [problem.as_json() for problem in problems],
    }


def reading_from_json(reading: dict[str, Any]) -> tuple[list[ResultIn], list[Problem]]:
    """The results and problems `reading_json` kept."""
    results = [
        ResultIn(**{**row, "observed_at": datetime.fromisoformat(row["observed_at"]) if row["observed_at"] else None})
        for row in reading["results"]
    ]
    return results, [Problem(**problem) for problem in reading["problems"]]


# Reading values.

_NUMBER = re.compile(r"^(<=|>=|<|>)?\s*([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?)$")


def value_parse(text: str) -> tuple[str, Decimal] | None:
    """A result's value as (comparator, number): "5,6" (a decimal comma) is 5.6, "<0.01" is below what
    the assay measures. None when it is not a number."""
    match = _NUMBER.match(text.strip().replace("\u00a0", "").replace(" ", ""))
    if match is None:
        return None
    try:
        number = Decimal(match.group(2).replace(",", "."))
    except InvalidOperation:
        return None
    return (match.group(1) or ""), number


def unit_key(unit: str) -> str:
    """A unit compared as senders write it: µ or u, 10^9 or 10*9 or x10E9, any case."""
    text = unit.strip().replace("µ", "u").replace("μ", "u").replace("^", "*").replace(" ", "")
    text = re.sub(r"^[xX×]?10[eE*]", "10*", text)
    return text.lower()


def name_key(text: str) -> str:
    """A test's code or name compared as senders write it: any case, without spaces and punctuation."""
    return re.sub(r"[\s\-_.,:;()/+]", "", text).upper()


# The reference tables, held by each process for REFERENCE_TTL_SECONDS.


@dataclass
class Reference:
    by_code: dict[str, LabTest]
    units: dict[tuple[int, str], tuple[Decimal, Decimal]]  # (test, unit_key) -> (factor, offset)
    ranges: dict[int, list[ReferenceRange]]

    def test_for(self, result: ResultIn) -> LabTest | None:
        for text in (result.code, result.name):
            test = self.by_code.get(name_key(text)) if text else None
            if test is not None:
                return test
        return None

    def conversion(self, test: LabTest, unit: str) -> tuple[Decimal, Decimal] | None:
        if unit_key(unit) == unit_key(test.unit):
            return Decimal(1), Decimal(0)
        return self.units.get((test.pk, unit_key(unit)))

    def range_for(self, test: LabTest, sex: str, age: int | None) -> ReferenceRange | None:
        """The most specific range: of the patient's sex before one for anyone, in the patient's age band."""
        fitting = [
            candidate
            for candidate in self.ranges.get(test.pk, [])
            if candidate.sex in ("", sex)
            and (age is None or (candidate.age_from <= age and (candidate.age_to is None or age < candidate.age_to)))
            and (age is not None or (candidate.age_from == 0 and candidate.age_to is None))
        ]
        fitting.sort(key=lambda candidate: candidate.sex == "")
        return fitting[0] if fitting else None


_cache: dict[str, Any] = {"at": 0.0, "reference": None}
_cache_lock = threading.Lock()


def reference() -> Reference:
    with _cache_lock:
        if _cache["reference"] is None or time.monotonic() - _cache["at"] > REFERENCE_TTL_SECONDS:
            _cache["reference"], _cache["at"] = _reference_read(), time.monotonic()
        return _cache["reference"]


def reference_forget(**kwargs: Any) -> None:
    """Drop this process's copy of the reference tables (connected to their saves and deletes)."""
    with _cache_lock:
        _cache["reference"] = None


def _reference_read() -> Reference:
    from diagnostics.models import LabUnit

    tests = {test.pk: test for test in LabTest.objects.all()}
    by_code: dict[str, LabTest] = {}
    for test in tests.values():
        for text in [test.loinc, test.short_name, test.name, *test.aliases]:
            by_code.setdefault(name_key(str(text)), test)
    units = {
        (unit.test_id, unit_key(unit.unit)): (unit.factor, unit.offset)
        for unit in LabUnit.objects.filter(test_id__in=tests)
    }
    ranges: dict[int, list[ReferenceRange]] = defaultdict(list)
    for row in ReferenceRange.objects.all():
        ranges[row.test_id].append(row)
    return Reference(by_code=by_code, units=units, ranges=dict(ranges))


# Understanding one result.


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def flag_of(test: LabTest, value: Decimal, low: Decimal | None, high: Decimal | None) -> str:
    if test.critical_low is not None and value < test.critical_low:
        return Observation.Flag.CRITICAL_LOW
    if test.critical_high is not None and value > test.critical_high:
        return Observation.Flag.CRITICAL_HIGH
    if low is not None and value < low:
        return Observation.Flag.LOW
    if high is not None and value > high:
        return Observation.Flag.HIGH
    if low is None and high is None:
        return Observation.Flag.NONE
    return Observation.Flag.NORMAL


def observation_understand(observation: Observation, ref: Reference) -> None:
    """Fill in the test's value, unit, range, flag and review reason from what was sent and the patient."""
    test = observation.test
    parsed = value_parse(observation.value_sent)
    observation.value = observation.low = observation.high = None
    observation.unit, observation.flag, observation.review = observation.unit_sent, Observation.Flag.NONE, ""
    observation.comparator = parsed[0] if parsed else ""
    if parsed is not None:
        observation.value = parsed[1].quantize(SIX_PLACES, rounding=ROUND_HALF_EVEN)
    if test is None:
        observation.review = Observation.Review.ANALYTE
    else:
        conversion = ref.conversion(test, observation.unit_sent)
        if conversion is None:
            observation.review = Observation.Review.UNIT
        elif parsed is not None:
            factor, offset = conversion
            observation.value = (parsed[1] * factor + offset).quantize(SIX_PLACES, rounding=ROUND_HALF_EVEN)
            observation.unit = test.unit
            patient = observation.patient
            band = None
            if patient is not None:
                age = age_on(patient.birth_date, timezone.localtime(observation.observed_at).date())
                band = ref.range_for(test, patient.sex, age)
            if band is not None:
                observation.low, observation.high = band.low, band.high
            observation.flag = flag_of(test, observation.value, observation.low, observation.high)
    if observation.patient is None:
        observation.review = Observation.Review.PATIENT


# Storing a message's results.


def _key(sender: str, patient_or_record: str, test: str, observed_at: datetime) -> str:
    text = "\x1f".join([sender, patient_or_record.upper(), test.upper(), observed_at.isoformat()])
    return hashlib.sha256(text.encode()).hexdigest()


def _checked(result: ResultIn, now: datetime) -> Problem | None:
    where = result.where
    if not (result.code or result.name):
        return Problem(where, "code", _("The result names no test (neither a code nor a name)."))
    if not result.value.strip():
        return Problem(where, "value", _("The result of %(test)s has no value.") % {"test": result.name or result.code})
    parsed = value_parse(result.value)
    if parsed is None:
        return Problem(
            where,
            "value",
            _("The value “%(value)s” of %(test)s is not a number.")
            % {"value": result.value[:40], "test": result.name or result.code},
        )
    if abs(parsed[1]) >= LARGEST_VALUE:
        return Problem(
            where, "value", _("The value “%(value)s” is too large to be a result.") % {"value": result.value}
        )
    if result.observed_at is None:
        return Problem(where, "observed_at", _("The result has no time it was taken."))
    if result.observed_at > now + FUTURE_TOLERANCE:
        return Problem(
            where,
            "observed_at",
            _("The result is dated %(at)s, in the future: check the device's clock.")
            % {"at": timezone.localtime(result.observed_at).strftime("%Y-%m-%d %H:%M")},
        )
    return None


def results_check(results: Iterable[ResultIn], *, now: datetime | None = None) -> tuple[list[ResultIn], list[Problem]]:
    """The results that can be stored, and a problem for each that cannot (no test, no number, no time or one
    in the future): the checks `lab_results_store` makes, for a way in that answers before it stores."""
    now = now or timezone.now()
    accepted: list[ResultIn] = []
    problems: list[Problem] = []
    for result in results:
        problem = _checked(result, now)
        if problem is None:
            accepted.append(result)
        else:
            problems.append(problem)
    return accepted, problems


def results_critical(results: Iterable[ResultIn]) -> bool:
    """Whether a result is beyond its test's critical limits, which (unlike the reference ranges) do not
    depend on the patient: a way in that queues its messages stores such a one at once instead, so that its
    alert does not wait behind a backlog."""
    ref = reference()
    for result in results:
        test, parsed = ref.test_for(result), value_parse(result.value)
        conversion = ref.conversion(test, result.unit) if test is not None else None
        if test is None or parsed is None or conversion is None:
            continue
        factor, offset = conversion
        if flag_of(test, parsed[1] * factor + offset, None, None) in Observation.CRITICAL:
            return True
    return False


def lab_results_store(
    *, message: LabMessage, results: Iterable[ResultIn], problems: Iterable[Problem] = ()
) -> StoreReport:
    """Store a message's results (each once, however often the message is sent) and finish the message:
    its status, errors and count. `problems` are what the way in already refused (a segment it could not
    read). Critical results of a known patient raise an alert; events go out after the commit."""
    (report,) = lab_results_store_many([(message, results, problems)])
    return report


def lab_results_store_many(
    batch: Sequence[tuple[LabMessage, Iterable[ResultIn], Iterable[Problem]]],
) -> list[StoreReport]:
    """`lab_results_store` for several messages in one transaction, with the same few queries however many
    there are (a worker draining an analyser's backlog): a report per message, in order. A result sent in
    two messages of the batch is stored with the first."""
    now = timezone.now()
    ref = reference()
    reports: list[StoreReport] = []
    accepted: list[list[ResultIn]] = []
    for _message, results, problems in batch:
        report = StoreReport(problems=list(problems))
        ok, refused = results_check(results, now=now)
        report.problems.extend(refused)
        reports.append(report)
        accepted.append(ok)
    with transaction.atomic():
        by_hospital: dict[int, list[ResultIn]] = defaultdict(list)
        for (message, _results, _problems), ok in zip(batch, accepted, strict=True):
            by_hospital[message.hospital_id].extend(ok)
        patients = {hospital_id: _patients_of(hospital_id, rows) for hospital_id, rows in by_hospital.items()}
        candidates: dict[tuple[int, str], tuple[int, Observation]] = {}  # (hospital, key) -> (message, result)
        for index, ((message, _results, _problems), ok) in enumerate(zip(batch, accepted, strict=True)):
            own: dict[str, Observation] = {}
            for result in ok:
                observation = _observation(message, result, patients[message.hospital_id], ref)
                if observation.key in own:
                    reports[index].duplicates += 1  # the same result twice in one message
                own[observation.key] = observation
            for key, observation in own.items():
                if (message.hospital_id, key) in candidates:
                    reports[index].duplicates += 1  # sent in an earlier message of the batch too
                else:
                    candidates[(message.hospital_id, key)] = (index, observation)
        stored = _insert(candidates, reports)
        alerts = LabAlert.objects.bulk_create(
            LabAlert(observation=observation, hospital_id=observation.hospital_id, patient_id=observation.patient_id)
            for observation in stored
            if observation.is_critical and observation.patient_id is not None
        )
        for (message, _results, _problems), report in zip(batch, reports, strict=True):
            message.status = (
                LabMessage.Status.DONE
                if not report.problems
                else LabMessage.Status.PARTIAL
                if report.stored or report.duplicates
                else LabMessage.Status.REJECTED
            )
            message.errors = [problem.as_json() for problem in report.problems]
            message.stored, message.processed_at = len(report.stored), now
        messages = [message for message, _results, _problems in batch]
        # One UPDATE per outcome rather than bulk_update's CASE per row: in a batch most outcomes are alike.
        outcomes: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for message in messages:
            outcomes[(message.status, json.dumps(message.errors), message.stored)].append(message.pk)
        for (status, errors, count), pks in outcomes.items():
            LabMessage.objects.filter(pk__in=pks).update(
                status=status, errors=json.loads(errors), stored=count, processed_at=now, reading=None
            )
        with audit_batch():
            for message, report in zip(messages, reports, strict=True):
                _audit(message, report)
        _announce(stored, alerts)
    return reports


def _observation(message: LabMessage, result: ResultIn, patients: dict[str, Patient], ref: Reference) -> Observation:
    patient = result.patient or patients.get(result.record_number.strip().upper())
    test = ref.test_for(result)
    assert result.observed_at is not None
    key = _key(
        message.sender,
        str(result.patient.pk) if result.patient else result.record_number.strip(),
        test.loinc if test else (result.code or result.name),
        result.observed_at,
    )
    observation = Observation(
        hospital_id=message.hospital_id,
        patient=patient,
        message=message,
        test=test,
        record_number=(patient.record_number if patient else result.record_number.strip())[:40],
        code_sent=result.code[:40],
        name_sent=result.name[:120],
        value_sent=result.value.strip()[:64],
        unit_sent=result.unit.strip()[:24],
        range_sent=result.range.strip()[:60],
        flag_sent=result.flag.strip()[:8],
        observed_at=result.observed_at,
        key=key,
    )
    observation_understand(observation, ref)
    return observation


def _patients_of(hospital_id: int, results: list[ResultIn]) -> dict[str, Patient]:
    records = {result.record_number.strip().upper() for result in results if result.patient is None}
    records.discard("")
    if not records:
        return {}
    found = Patient.objects.annotate(record=Upper("record_number")).filter(hospital_id=hospital_id, record__in=records)
    return {patient.record: patient for patient in found}


def _insert(
    candidates: dict[tuple[int, str], tuple[int, Observation]], reports: list[StoreReport]
) -> list[Observation]:
    """Insert the results not stored before, and give each message's report its own; a result that a
    parallel copy of a message stored in the meantime is counted as a duplicate, not an error."""
    keys: dict[int, list[str]] = defaultdict(list)
    for hospital_id, key in candidates:
        keys[hospital_id].append(key)
    for _attempt in range(3):
        known: set[tuple[int, str]] = set()
        for hospital_id, hospital_keys in keys.items():
            known.update(
                (hospital_id, key)
                for key in Observation.objects.filter(hospital_id=hospital_id, key__in=hospital_keys).values_list(
                    "key", flat=True
                )
            )
        fresh = [pair for place, pair in candidates.items() if place not in known]
        try:
            with transaction.atomic():
                stored = rows_insert([observation for _index, observation in fresh])
        except IntegrityError:
            continue
        for place in known:
            reports[candidates[place][0]].duplicates += 1
        for index, observation in fresh:
            reports[index].stored.append(observation)
        return stored
    raise IntegrityError("lab results kept colliding with a parallel copy of the same message")


# From this many rows, PostgreSQL is given them by COPY rather than an INSERT that Django compiles value by
# value and psycopg quotes value by value (a worker's batch of hundreds of observations: that took a third
# of the drain's time; an analyser's batch of messages: a quarter of the request's).
COPY_FROM = 20


def rows_insert(rows: list[RowT]) -> list[RowT]:
    """`bulk_create` new rows of one model (their pks set), by COPY on PostgreSQL with pks drawn first from
    the table's sequence. Raises IntegrityError, and writes nothing, if one of them breaks a constraint."""
    if not rows:
        return rows
    model = type(rows[0])
    if connection.vendor != "postgresql" or len(rows) < COPY_FROM:
        return model._default_manager.bulk_create(rows)
    meta = model._meta
    fields = meta.concrete_fields
    stamped = [field for field in fields if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)]
    # Plain values (str, int, Decimal, aware datetime, None) go as they are; JSON as Django adapts it.
    adapted = {field.attname for field in fields if field.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
            for field in stamped:
                field.pre_save(row, add=True)  # as bulk_create does
            row._state.adding, row._state.db = False, connection.alias
        columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        field.get_db_prep_save(getattr(row, field.attname), connection)
                        if field.attname in adapted
                        else getattr(row, field.attname)
                        for field in fields
                    ]
                )
    return rows


# get_source_display() builds a dict of the translated choices at every call: a tenth of a worker's drain.
_SOURCE_NAMES = dict(Source.choices)


def _audit(message: LabMessage, report: StoreReport) -> None:
    by_patient: dict[int | None, list[Observation]] = defaultdict(list)
    for observation in report.stored:
        by_patient[observation.patient_id].append(observation)
    with audit_batch():
        for patient_id, observations in by_patient.items():
            critical = sum(1 for observation in observations if observation.is_critical)
            audit_record(
                request=None,
                user=message.by,
                action=Action.CREATE,
                obj=message,
                patient_id=patient_id or "",
                detail=_("%(count)s lab results from %(source)s %(id)s, %(critical)s critical")
                % {
                    "count": len(observations),
                    "source": _SOURCE_NAMES.get(message.source, message.source),
                    "id": message.control_id,
                    "critical": critical,
                },
            )
        if report.problems or report.duplicates:
            audit_record(
                request=None,
                user=message.by,
                action=Action.CREATE,
                outcome=Outcome.INVALID if report.problems else Outcome.SUCCESS,
                obj=message,
                detail="; ".join(
                    [f"{problem.where} {problem.field}: {problem.reason}" for problem in report.problems]
                    + ([f"{report.duplicates} results already stored"] if report.duplicates else [])
                ),
            )


def _announce(stored: list[Observation], alerts: list[LabAlert]) -> None:
    """After the commit: each patient's pages, each hospital's review queue, each alert, in one go."""
    patients: dict[int, set[int]] = defaultdict(set)
    review: set[int] = set()
    for observation in stored:
        if observation.patient_id is not None:
            patients[observation.hospital_id].add(observation.patient_id)
        if observation.review:
            review.add(observation.hospital_id)
    alert_ids = [alert.pk for alert in alerts]

    def send() -> None:
        for hospital_id, patient_ids in patients.items():
            events.lab_results_changed_many(hospital_id=hospital_id, patient_ids=sorted(patient_ids))
        for hospital_id in review:
            events.lab_review_changed(hospital_id=hospital_id)
        for alert_id in alert_ids:
            events.lab_alert_raised(alert_id)

    transaction.on_commit(send, robust=True)


# The review queue.


@transaction.atomic
def observation_patient_assign(*, observation: Observation, patient: Patient, by: Any, request: Any = None) -> None:
    """A clinician says whose result this is (its record number matched nobody): the range for that
    patient applies from now on, and a critical value raises its alert."""
    observation.patient = patient
    observation.record_number = patient.record_number
    observation_understand(observation, reference())
    observation.save(
        update_fields=[
            "patient",
            "record_number",
            "value",
            "comparator",
            "unit",
            "low",
            "high",
            "flag",
            "review",
        ]
    )
    alerts = []
    if observation.is_critical and not LabAlert.objects.filter(observation=observation).exists():
        alerts = [
            LabAlert.objects.create(observation=observation, hospital_id=observation.hospital_id, patient=patient)
        ]
    audit_record(
        request=request,
        user=by,
        action=Action.UPDATE,
        obj=observation,
        patient_id=patient.pk,
        detail=_("Lab result assigned to record %(record)s") % {"record": patient.record_number},
    )
    _announce([observation], alerts)
    transaction.on_commit(lambda: events.lab_review_changed(hospital_id=observation.hospital_id), robust=True)


@transaction.atomic
def observation_review_close(*, observation: Observation, by: Any, request: Any = None) -> None:
    """A clinician has read a result the platform could not place (an unknown test or unit) and keeps it
    as sent. A result without a patient cannot be closed this way: it needs one first."""
    if observation.review == Observation.Review.PATIENT:
        raise ValueError("a result without a patient is assigned, not closed")
    observation.review = ""
    observation.save(update_fields=["review"])
    audit_record(
        request=request,
        user=by,
        action=Action.UPDATE,
        obj=observation,
        patient_id=observation.patient_id or "",
        detail=_("Lab result reviewed and kept as sent"),
    )
    transaction.on_commit(lambda: events.lab_review_changed(hospital_id=observation.hospital_id), robust=True)


def lab_message_open(
    *,
    hospital_id: int,
    source: str,
    sender: str,
    control_id: str,
    raw: str,
    device_id: int | None = None,
    by: Any = None,
    reading: dict[str, Any] | None = None,
) -> tuple[LabMessage, bool]:
    """Keep a message as received, once: (the message, whether it is new). The same sender's same control
    id again returns the first message, so its answer can be repeated and nothing is stored twice.
    `reading` (see `reading_json`) spares the worker reading a queued message again."""
    try:
        with transaction.atomic():
            return (
                LabMessage.objects.create(
                    hospital_id=hospital_id,
                    source=source,
                    sender=sender,
                    control_id=control_id[:64],
                    raw=raw,
                    device_id=device_id,
                    by=by if getattr(by, "pk", None) else None,
                    reading=reading,
                ),
                True,
            )
    except IntegrityError:
        return LabMessage.objects.get(hospital_id=hospital_id, sender=sender, control_id=control_id[:64]), False
