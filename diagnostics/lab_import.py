"""Lab results a clinician brings in: one typed on the patient page, or many from a CSV file (an analyser's
or a laboratory system's export), read in two steps: a preview that checks every row without storing
anything, then the import of the rows that passed. Both go through the pipeline (diagnostics/labs.py).

Between the two the rows travel with the page, signed and compressed in a hidden field, so no server state
is kept and the clinician can correct a flagged row in place. The import is one `LabMessage` whose control
id is the SHA-256 of the final rows: the same file imported twice (by anyone in the hospital) is stored once.

The file may be written the way Russian Excel writes it (semicolons, decimal commas, Windows-1251) or the
way most analysers do (commas, UTF-8 with or without a byte-order mark); the header names its columns in
English or Russian, in any case and order.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from diagnostics.labs import (
    FUTURE_TOLERANCE,
    LARGEST_VALUE,
    Problem,
    ResultIn,
    StoreReport,
    lab_message_open,
    lab_results_store,
    observation_understand,
    reference,
    value_parse,
)
from diagnostics.models import LabMessage, LabTest, LabUnit, Observation
from diagnostics.models.labs import Source
from hospitals.scoping import Scope, patients_visible
from patients.models import Patient

# One sender for every CSV import of a hospital, so the same file imported by two colleagues is one message
# (and the same results stay one result each: the pipeline's key includes the sender).
CSV_SENDER = "csv"
SIGNING_SALT = "diagnostics.lab_import"
PREVIEW_MAX_AGE = 12 * 3600  # seconds a preview may lie open before its import is refused
FIX_ROWS = 100  # flagged rows offered for correction in place (more: fix the file)
SHOWN_PLAIN_ROWS = 300  # rows without remarks listed in the preview (all are imported)

# The columns, their names in headers (compared as `_header_key` writes them) and the longest text kept.
COLUMNS: dict[str, tuple[tuple[str, ...], int]] = {
    "record_number": (
        ("record number", "record", "record no", "patient id", "patient", "mrn", "номер карты", "карты",
         "номер медкарты", "медкарта", "номер истории болезни", "номер истории", "пациент", "id пациента"), 40),
    "test": (("test", "code", "test code", "analyte", "loinc", "тест", "код", "код теста", "анализ",
              "показатель", "исследование"), 40),
    "name": (("test name", "name", "наименование", "название", "название теста"), 120),
    "value": (("value", "result", "значение", "результат"), 64),
    "unit": (("unit", "units", "ед", "ед изм", "единица", "единицы", "единица измерения",
              "единицы измерения"), 24),
    "taken_at": (("taken at", "date", "datetime", "date time", "collected", "collected at", "дата",
                  "дата взятия", "дата и время", "дата время", "время взятия", "дата анализа"), 40),
    "time": (("time", "время"), 16),
    "range": (("reference range", "range", "reference", "norm", "референсный интервал",
               "референсные значения", "референс", "норма"), 60),
    "flag": (("flag", "abnormal flag", "флаг"), 8),
}  # fmt: skip

_DATE_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y",
    "%d/%m/%Y",
)

SAMPLE = (
    "record_number,test,value,unit,taken_at,reference_range\r\n"
    "MR-000123,GLU,6.8,mmol/L,2025-03-10 08:15,3.9-6.1\r\n"
    "MR-000123,HbA1c,7.4,%,2025-03-10 08:15,4.0-6.0\r\n"
    "MR-000123,GLU,7.9,mmol/L,2025-03-17 08:05,3.9-6.1\r\n"
    "MR-000123,hs-TnI,0.012,ng/mL,2025-03-17 08:05,\r\n"
    "MR-000456,K,5.4,mmol/L,2025-03-17 09:40,3.5-5.1\r\n"
)


class CsvRefused(Exception):
    """The file as a whole cannot be read; the message says why and what to do."""


@dataclass
class CsvRow:
    """One row of the file, as text; `row` is its line in the file (the header is line 1)."""

    row: int
    record_number: str = ""
    test: str = ""
    name: str = ""
    value: str = ""
    unit: str = ""
    taken_at: str = ""
    range: str = ""
    flag: str = ""


ROW_FIELDS = [f.name for f in fields(CsvRow)]
# The cells a clinician may correct in the preview.
FIXABLE = ("record_number", "test", "value", "unit", "taken_at")


# Reading a file.


def _header_key(text: str) -> str:
    text = text.strip().lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w%]+", " ", text.replace("_", " ")).split())


_ALIASES = {alias: column for column, (aliases, _limit) in COLUMNS.items() for alias in aliases}


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise CsvRefused(_("This is not a text file. Export the results as CSV (comma- or semicolon-separated)."))
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvRefused(_("The file's text cannot be read: save it as CSV in UTF-8 or Windows-1251."))


def _delimiter(header: str) -> str:
    counts = {delimiter: header.count(delimiter) for delimiter in (";", ",", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    if counts[best] == 0:
        raise CsvRefused(
            _(
                "The first line of the file should name the columns, separated by semicolons or commas, "
                "for example: %(example)s"
            )
            % {"example": "record_number;test;value;unit;taken_at"}
        )
    return best


def csv_read(data: bytes, *, max_rows: int, with_record: bool = True) -> list[CsvRow]:
    """The rows of a CSV file. Refused as a whole (CsvRefused) when it cannot be read, lacks a column the
    import needs, or has more than `max_rows` rows; a row's own faults are left to `rows_check`."""
    text = _decode(data).lstrip("\ufeff")
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    if not header_line:
        raise CsvRefused(_("The file is empty."))
    # Excel may name the separator on a line of its own before the header ("sep=;").
    named = re.fullmatch(r"\s*sep=(.)\s*", header_line)
    if named is not None:
        text = text.replace(header_line, "", 1)  # an empty line: the others keep their numbers
        header_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = named.group(1) if named is not None else _delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    for cells in reader:
        if any(cell.strip() for cell in cells):
            header = cells
            break
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        column = _ALIASES.get(_header_key(name))
        if column is not None and column not in positions:
            positions[column] = position
    missing = [
        label
        for column, label in (
            ("record_number", _("the patient's record number (record_number, номер карты)")),
            ("value", _("the value (value, значение)")),
            ("taken_at", _("the date it was taken (taken_at or date, дата)")),
        )
        if column not in positions and (with_record or column != "record_number")
    ]
    if "test" not in positions and "name" not in positions:
        missing.insert(0, _("the test (test or code, тест, код)"))
    if missing:
        raise CsvRefused(
            _("The file has no column for %(missing)s. Its first line names the columns; see the format below.")
            % {"missing": "; ".join(missing)}
        )
    rows: list[CsvRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= max_rows:
                raise CsvRefused(
                    _("The file has more than %(max)s rows. Split it into smaller files and import each.")
                    % {"max": max_rows}
                )
            found = {
                column: cells[position].strip()[: COLUMNS[column][1]] if position < len(cells) else ""
                for column, position in positions.items()
            }
            time = found.pop("time", "")
            if time and found.get("taken_at"):
                found["taken_at"] = f"{found['taken_at']} {time}"
            rows.append(CsvRow(row=reader.line_num, **found))
    except csv.Error as error:
        raise CsvRefused(
            _("Line %(line)s of the file cannot be read (%(error)s): check its quotes.")
            % {"line": reader.line_num, "error": error}
        ) from None
    if not rows:
        raise CsvRefused(_("The file names its columns but has no results under them."))
    return rows


# Carrying the rows from the preview to the import.


def rows_sign(rows: Iterable[CsvRow]) -> str:
    """The rows as a signed, compressed token for a hidden field."""
    return signing.dumps(
        [[getattr(row, name) for name in ROW_FIELDS] for row in rows], salt=SIGNING_SALT, compress=True
    )


def rows_unsign(token: str, fixes: Any = None) -> list[CsvRow]:
    """The rows of a preview back from its hidden field, with the cells the clinician corrected
    (`fixes`: the posted form, "fix-<row>-<column>" fields)."""
    try:
        stored = signing.loads(token, salt=SIGNING_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.SignatureExpired:
        raise CsvRefused(_("This preview is too old. Choose the file again.")) from None
    except signing.BadSignature:
        raise CsvRefused(_("The preview could not be read back. Choose the file again.")) from None
    rows = [CsvRow(**dict(zip(ROW_FIELDS, values, strict=True))) for values in stored]
    if fixes is not None:
        for row in rows:
            for column in FIXABLE:
                fixed = fixes.get(f"fix-{row.row}-{column}")
                if fixed is not None:
                    setattr(row, column, str(fixed).strip()[: COLUMNS[column][1]])
    return rows


def rows_csv(rows: Iterable[CsvRow]) -> str:
    """The rows as the CSV that is kept with the import (and hashed into its control id)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ROW_FIELDS)
    for row in rows:
        writer.writerow([getattr(row, name) for name in ROW_FIELDS])
    return out.getvalue()


# Checking rows without storing them.


def taken_parse(text: str) -> datetime | None:
    """A date and time as analysers and spreadsheets write them; a time without a zone is the hospital's."""
    text = " ".join(text.split())
    if not text:
        return None
    parsed: datetime | None = None
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    for pattern in _DATE_FORMATS if parsed is None else ():
        try:
            parsed = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if parsed is None:
        return None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


class RowState:
    ERROR = "error"  # not imported
    REVIEW = "review"  # imported; waits in the review queue
    OK = "ok"


@dataclass
class RowCheck:
    """What the import would make of one row: problems that keep it out, or the result it would become."""

    row: CsvRow
    problems: list[Problem] = field(default_factory=list)
    taken_at: datetime | None = None
    patient: Patient | None = None
    test: LabTest | None = None
    unit_known: bool = False
    understood: Observation | None = None  # never saved: the value, range and flag the pipeline would give

    @property
    def state(self) -> str:
        if self.problems:
            return RowState.ERROR
        if self.patient is None or self.test is None or not self.unit_known:
            return RowState.REVIEW
        return RowState.OK

    @property
    def where(self) -> str:
        return _("row %(row)s") % {"row": self.row.row}

    @property
    def problems_by_column(self) -> dict[str, str]:
        """The reasons, per column they are about (for the preview to put beside the cell)."""
        by_column: dict[str, str] = {}
        for problem in self.problems:
            by_column[problem.field] = f"{by_column.get(problem.field, '')} {problem.reason}".strip()
        return by_column

    known_units: list[str] = field(default_factory=list)  # of the test, when the row's unit is not among them
    editable: bool = False  # offered for correction in the preview


def units_known(tests: Iterable[LabTest]) -> dict[int, list[str]]:
    """The units the platform converts for each test, the test's own first: one query."""
    tests = list(tests)
    known: dict[int, list[str]] = {test.pk: [test.unit] if test.unit else [] for test in tests}
    for test_id, unit in LabUnit.objects.filter(test__in=tests).order_by("pk").values_list("test_id", "unit"):
        if unit not in known[test_id]:
            known[test_id].append(unit)
    return known


def _patients(scope: Scope, hospital_id: int, records: set[str]) -> dict[str, Patient]:
    records.discard("")
    if not records:
        return {}
    patients: QuerySet[Patient] = patients_visible(scope, Patient.objects.filter(hospital_id=hospital_id))
    found = patients.annotate(record=Upper("record_number")).filter(record__in=records)
    return {patient.record: patient for patient in found}


def rows_check(rows: list[CsvRow], *, scope: Scope, hospital_id: int, patient: Patient | None = None) -> list[RowCheck]:
    """Check each row as the import would, storing nothing: the problems that keep a row out (no test, no
    number, a date that cannot be read or lies in the future, no record number, another patient's row), and
    for the rest the patient, test and unit it maps to and the value, range and flag it would get."""
    ref = reference()
    now = timezone.now()
    patients = {} if patient else _patients(scope, hospital_id, {row.record_number.upper() for row in rows})
    checks = []
    for row in rows:
        check = RowCheck(row)
        problems = check.problems
        where = check.where
        if patient is not None:
            if row.record_number and row.record_number.upper() != patient.record_number.upper():
                problems.append(
                    Problem(
                        where,
                        "record_number",
                        _("This row is for record %(row)s, not this patient's (%(patient)s).")
                        % {"row": row.record_number, "patient": patient.record_number},
                    )
                )
            check.patient = patient
        elif not row.record_number:
            problems.append(Problem(where, "record_number", _("The row has no record number: whose result is it?")))
        else:
            check.patient = patients.get(row.record_number.upper())
        if not (row.test or row.name):
            problems.append(Problem(where, "test", _("The row names no test: write its code or name.")))
        parsed = value_parse(row.value)
        if not row.value:
            problems.append(Problem(where, "value", _("The row has no value.")))
        elif parsed is None:
            problems.append(
                Problem(where, "value", _("The value “%(value)s” is not a number.") % {"value": row.value[:40]})
            )
        elif abs(parsed[1]) >= LARGEST_VALUE:
            problems.append(
                Problem(where, "value", _("The value “%(value)s” is too large to be a result.") % {"value": row.value})
            )
        check.taken_at = taken_parse(row.taken_at)
        if not row.taken_at:
            problems.append(Problem(where, "taken_at", _("The row has no date it was taken.")))
        elif check.taken_at is None:
            problems.append(
                Problem(
                    where,
                    "taken_at",
                    _("“%(text)s” is not a date this import reads: write it as 17.03.2025 08:30 or 2025-03-17 08:30.")
                    % {"text": row.taken_at[:40]},
                )
            )
        elif check.taken_at > now + FUTURE_TOLERANCE:
            problems.append(
                Problem(
                    where,
                    "taken_at",
                    _("The result is dated %(at)s, in the future: check the date (or the analyser's clock).")
                    % {"at": timezone.localtime(check.taken_at).strftime("%d.%m.%Y %H:%M")},
                )
            )
        result = ResultIn(value=row.value, observed_at=check.taken_at, code=row.test, name=row.name, unit=row.unit)
        check.test = ref.test_for(result)
        check.unit_known = check.test is not None and ref.conversion(check.test, row.unit) is not None
        if not problems and check.taken_at is not None:
            understood = Observation(
                patient=check.patient,
                test=check.test,
                value_sent=row.value,
                unit_sent=row.unit,
                observed_at=check.taken_at,
            )
            observation_understand(understood, ref)
            check.understood = understood
        checks.append(check)
    unknown = [check for check in checks if check.test is not None and not check.unit_known]
    if unknown:
        units = units_known({check.test.pk: check.test for check in unknown if check.test}.values())
        for check in unknown:
            check.known_units = units[check.test.pk] if check.test else []
    return checks


# Importing.


@dataclass
class ImportOutcome:
    message: LabMessage
    new: bool  # False: this very content was imported before, and nothing was stored now
    report: StoreReport | None
    refused: list[RowCheck]  # rows left out for their problems

    @property
    def stored(self) -> int:
        return self.message.stored


def lab_csv_import(
    *, hospital_id: int, checks: list[RowCheck], by: Any, patient: Patient | None = None
) -> ImportOutcome:
    """Import the checked rows as one CSV message: the rows without problems become results (through
    `lab_results_store`, so what cannot be placed waits in the review queue), the others are named in the
    message's errors. The same final content a second time stores nothing and returns the first import."""
    refused = [check for check in checks if check.problems]
    content = rows_csv(check.row for check in checks)
    with transaction.atomic():
        message, new = lab_message_open(
            hospital_id=hospital_id,
            source=Source.CSV,
            sender=CSV_SENDER,
            control_id=hashlib.sha256(content.encode()).hexdigest(),
            raw=content,
            by=by,
        )
        if not new and message.status != LabMessage.Status.QUEUED:
            return ImportOutcome(message=message, new=False, report=None, refused=refused)
        results = [
            ResultIn(
                value=check.row.value,
                observed_at=check.taken_at,
                code=check.row.test,
                name=check.row.name,
                unit=check.row.unit,
                range=check.row.range,
                flag=check.row.flag,
                # By record number even for one patient's file: the same result imported from the hospital's
                # export later is then recognised as the same.
                record_number=patient.record_number if patient is not None else check.row.record_number,
                where=check.where,
            )
            for check in checks
            if not check.problems
        ]
        problems = [problem for check in refused for problem in check.problems]
        report = lab_results_store(message=message, results=results, problems=problems)
    return ImportOutcome(message=message, new=True, report=report, refused=refused)


# One result typed on the patient page.


@dataclass
class EntryOutcome:
    message: LabMessage
    problems: list[Problem]  # why the result was not stored (the pipeline's sentences)
    observation: Observation | None  # the stored result; None when refused or stored before


def lab_result_enter(
    *, patient: Patient, test: LabTest, value: str, unit: str, taken_at: datetime, token: str, by: Any
) -> EntryOutcome:
    """Store one result of the patient, entered by hand, through the pipeline (the patient's range and the
    critical limits apply, an alert is raised). `token` is the form's: the same form sent twice is one
    message, and stores nothing the second time."""
    raw = json.dumps(
        {
            "patient": patient.pk,
            "record_number": patient.record_number,
            "test": test.loinc,
            "value": value,
            "unit": unit,
            "taken_at": taken_at.isoformat(),
        },
        ensure_ascii=False,
    )
    with transaction.atomic():
        message, new = lab_message_open(
            hospital_id=patient.hospital_id,
            source=Source.MANUAL,
            sender=f"user:{by.pk}",
            control_id=token,
            raw=raw,
            by=by,
        )
        if not new and message.status != LabMessage.Status.QUEUED:
            return EntryOutcome(message, [Problem(**error) for error in message.errors], None)
        report = lab_results_store(
            message=message,
            results=[
                ResultIn(
                    value=value,
                    observed_at=taken_at,
                    code=test.loinc,
                    coding_system="LN",
                    name=test.name,
                    unit=unit,
                    patient=patient,
                    where=_("the form"),
                )
            ],
        )
    return EntryOutcome(message, report.problems, report.stored[0] if report.stored else None)


# What the page tells about the format.

FORMAT_COLUMNS = [
    ("record_number", gettext_lazy("The patient's record number in your hospital (not needed on a patient's page).")),
    ("test", gettext_lazy("The test's code or name: LOINC, the analyser's code (GLU, HGB, K) or the name.")),
    ("value", gettext_lazy("A number; a decimal comma or point; <0.01 for below what the assay measures.")),
    ("unit", gettext_lazy("As the analyser writes it: mmol/L, mg/dL, g/L, ng/mL…")),
    ("taken_at", gettext_lazy("When the sample was taken: 17.03.2025 08:30 or 2025-03-17 08:30 (or date and time).")),
    ("reference_range", gettext_lazy("Optional: the laboratory's range as it printed it, kept beside the result.")),
    ("flag", gettext_lazy("Optional: the analyser's flag (H, L, HH, LL), kept beside the result.")),
]


def format_aliases(column: str) -> str:
    key = {"reference_range": "range"}.get(column, column)
    aliases = COLUMNS[key][0]
    extra = COLUMNS["time"][0] if key == "taken_at" else ()
    return ", ".join(alias for alias in (*aliases, *extra) if alias != _header_key(column))
