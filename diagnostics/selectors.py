"""Reads of imaging data, recordings and lab results, always through the patient scoping of hospitals/scoping.py."""

from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from diagnostics.labs import unit_key
from diagnostics.models import Instance, LabAlert, LabAlertAck, LabTest, Observation, Recording, Series, Study, Upload
from hospitals.scoping import CLINICAL_ROLES, Scope, access_record, patients_visible, related_patients_visible
from patients.models import Patient


def studies_visible(scope: Scope) -> QuerySet[Study]:
    """Studies of the patients the scope may see (their own hospital's, or through a consultation)."""
    return related_patients_visible(scope, Study.objects.all(), "patient", Patient.objects.all())


def series_visible(scope: Scope) -> QuerySet[Series]:
    return Series.objects.filter(study__in=studies_visible(scope).values("pk"))


def instances_visible(scope: Scope) -> QuerySet[Instance]:
    return Instance.objects.filter(series__study__in=studies_visible(scope).values("pk"))


def uploads_visible(scope: Scope) -> QuerySet[Upload]:
    """A user's own uploads, of patients they may still see: an upload is its sender's business."""
    return Upload.objects.filter(
        owner_id=scope.user_id or 0, patient__in=patients_visible(scope, Patient.objects.all()).values("pk")
    )


# How many failed images of a series are listed with their reasons (the rest are counted).
FAILED_SHOWN = 10


@dataclass
class SeriesRow:
    series: Series
    counts: dict[str, int] = field(default_factory=dict)  # instances per status
    thumbnail_id: int | None = None  # a ready instance whose thumbnail stands for the series
    failed: list[Instance] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def badges(self) -> list[tuple[str, str, int]]:
        """(status, its label, how many) for the statuses some image of the series is in."""
        return [
            (value, str(label), self.counts[value])
            for value, label in Instance.Status.choices
            if self.counts.get(value)
        ]


@dataclass
class StudyRow:
    study: Study
    series: list[SeriesRow] = field(default_factory=list)

    @property
    def dicom_name(self) -> str:
        """The patient's name as the images carry it, without DICOM's ^ between its parts."""
        return " ".join(self.study.dicom_patient_name.replace("^", " ").split())

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(row.counts.get(status, 0) for row in self.series) for status in Instance.Status.values}

    @property
    def pending(self) -> bool:
        """Some image of the study is still on its way through the pipeline."""
        counts = self.counts
        return bool(counts[Instance.Status.QUEUED] or counts[Instance.Status.PROCESSING])


def studies_overview(studies: QuerySet[Study]) -> list[StudyRow]:
    """Studies (already scoped by the caller) with their series, counts of images per status, a thumbnail
    per series and the reasons of failures: four queries, however many studies and images."""
    rows = [StudyRow(study) for study in studies.order_by("-study_date", "-created_at", "pk")]
    by_series: dict[int, SeriesRow] = {}
    for series in Series.objects.filter(study__in=[row.study for row in rows]).order_by("number", "pk"):
        by_series[series.pk] = SeriesRow(series, counts=dict.fromkeys(Instance.Status.values, 0))
    by_study = {row.study.pk: row for row in rows}
    for series_row in by_series.values():
        by_study[series_row.series.study_id].series.append(series_row)
    instances = Instance.objects.filter(series_id__in=list(by_series))
    for counted in instances.values("series_id", "status").annotate(n=Count("pk")).order_by():
        by_series[counted["series_id"]].counts[counted["status"]] = counted["n"]
    ready = instances.filter(status=Instance.Status.READY, previews__gt=0)
    for first in ready.values("series_id").annotate(first=Min("pk")).order_by():
        by_series[first["series_id"]].thumbnail_id = first["first"]
    for failed in (
        instances.filter(status=Instance.Status.FAILED)
        .order_by("series_id", "number", "pk")
        .only("pk", "series_id", "number", "error")
    ):
        row = by_series[failed.series_id]
        if len(row.failed) < FAILED_SHOWN:
            row.failed.append(failed)
    return rows


def recordings_visible(scope: Scope) -> QuerySet[Recording]:
    """Recordings of the patients the scope may see (their own hospital's, or through a consultation)."""
    return Recording.objects.filter(patient__in=patients_visible(scope, Patient.objects.all()).values("pk"))


# Lab results.

# How many results of one test the patient's card lists (and charts); older ones stay in the database.
LAB_HISTORY_PER_TEST = 50


def observations_visible(scope: Scope) -> QuerySet[Observation]:
    """Lab results the scope may see: those of the patients it may see (its own hospital's, or through a
    consultation), and its own hospital's results that wait for a patient (clinical roles only)."""
    if scope.role not in CLINICAL_ROLES or scope.hospital_id is None:
        return Observation.objects.none()
    patients = patients_visible(scope, Patient.objects.all()).values("pk")
    return Observation.objects.filter(Q(patient__in=patients) | Q(patient__isnull=True, hospital_id=scope.hospital_id))


def observations_review(scope: Scope) -> QuerySet[Observation]:
    """The hospital's review queue, newest first: results it received that the platform could not place
    (no patient with the record number, an unknown test or unit). Only its own clinical staff work it."""
    if scope.role not in CLINICAL_ROLES or scope.hospital_id is None:
        return Observation.objects.none()
    return (
        Observation.objects.filter(hospital_id=scope.hospital_id)
        .exclude(review="")
        .select_related("patient", "test", "message")
        .defer("message__raw", "message__errors")
        .order_by("-received_at", "-pk")
    )


def observations_recent(observations: QuerySet[Observation], *, per_test: int) -> list[Observation]:
    """The newest `per_test` results of each test among `observations` (already scoped by the caller), in
    the tests' order, newest first within a test; results of unknown tests form one group at the end.
    One query, however many tests and results."""
    ranked = (
        observations.select_related("test", "message")
        .defer("message__raw", "message__errors")
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("test_id")], order_by=[F("observed_at").desc(), F("pk").desc()])
        )
        .filter(rank__lte=per_test)
        .order_by(F("test__order").asc(nulls_last=True), "test__name", "test_id", "-observed_at", "-pk")
    )
    return list(ranked)


def observations_latest(observations: QuerySet[Observation]) -> list[Observation]:
    """The newest result of each test among `observations`: one query."""
    return observations_recent(observations, per_test=1)


@dataclass
class LabTestRow:
    """One test on a patient's card: its results newest first (the first is the latest)."""

    test: LabTest | None
    results: list[Observation]

    @property
    def latest(self) -> Observation:
        return self.results[0]

    @property
    def history(self) -> list[Observation]:
        return self.results[1:]

    @property
    def charted(self) -> list[Observation]:
        """The results a trend chart can plot: numbers in the test's own unit, oldest first."""
        if self.test is None:
            return []
        unit = unit_key(self.test.unit)
        return [o for o in reversed(self.results) if o.value is not None and unit_key(o.unit) == unit]


def patient_lab_rows(observations: QuerySet[Observation]) -> list[LabTestRow]:
    """A patient's results (scoped and narrowed to the patient by the caller) grouped per test for the card:
    placed results only; what waits for review is listed apart. One query."""
    rows: list[LabTestRow] = []
    for observation in observations_recent(observations.filter(review=""), per_test=LAB_HISTORY_PER_TEST):
        if rows and rows[-1].test == observation.test:
            rows[-1].results.append(observation)
        else:
            rows.append(LabTestRow(observation.test, [observation]))
    return rows


def lab_review_waiting(scope: Scope) -> int:
    return observations_review(scope).count()


# Critical result alerts.


def lab_alerts_visible(scope: Scope) -> QuerySet[LabAlert]:
    """Alerts about the patients the scope may see: their own hospital's, and (for specialists) the patients
    of consultations addressed to their hospital. Admins see none: they do not see patient data."""
    return LabAlert.objects.filter(patient__in=patients_visible(scope, Patient.objects.all()).values("pk"))


def lab_alerts_open(scope: Scope) -> QuerySet[LabAlert]:
    """Visible alerts nobody at the scope's hospital has acknowledged yet (another side's acknowledgement
    does not count here), newest first, with what the banner shows."""
    if scope.hospital_id is None:
        return LabAlert.objects.none()
    acknowledged = LabAlertAck.objects.filter(alert=OuterRef("pk"), hospital_id=scope.hospital_id)
    return (
        lab_alerts_visible(scope)
        .exclude(Exists(acknowledged))
        .select_related("patient", "observation__test")
        .order_by("-created_at", "-pk")
    )


def access_lab_alert(scope: Scope, pk: object) -> LabAlert:
    """One visible alert (acknowledged already or not); outside the scope a 404 like an absent one."""
    return access_record(lab_alerts_visible(scope).select_related("patient", "observation"), pk)
