"""Lab result pages: the results card of the patient and consultation pages (latest values, history, trend
charts), a result entered by hand, CSV import with a preview, and the hospital's review queue.

Whoever may see the patient sees the card (a consulted specialist too, through the consultation's grant);
entering and importing are for the clinical staff of the patient's own hospital, and the review queue is
that hospital's own work.
"""

import json
import uuid
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import charts, lab_import, selectors
from diagnostics.labs import Problem, observation_patient_assign, observation_review_close
from diagnostics.models import LabTest, Observation
from hospitals.audit import Action, Outcome, audit_batch, audit_not_found, audit_record
from hospitals.models import User
from hospitals.scoping import Scope, access_record, request_scope
from hospitals.views import forbidden
from patients.models import Patient
from patients.selectors import access_patient, patient_search

REVIEW_PAGE_SIZE = 25
REVIEW_CANDIDATES = 10
CARD_REVIEW_ITEMS = 20


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # login_required stands before every view here


def _patient(request: HttpRequest, pk: int, action: str) -> Patient:
    try:
        return access_patient(request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, action, "patients.patient", pk) from None


def _home(scope: Scope, patient: Patient) -> bool:
    """The user works at the patient's own hospital, in a clinical role."""
    return scope.has_patients and scope.hospital_id == patient.hospital_id


def value_text(observation: Observation) -> str:
    """The result as the table writes it: the test's decimals, the comparator, a decimal comma in Russian."""
    if observation.value is None or observation.test is None or observation.review:
        return observation.value_sent
    return f"{observation.comparator}{floatformat(observation.value, observation.test.decimals)}"


# The card.


@require_GET
@login_required
def patient_labs(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient's lab results: latest per test with flags and ranges, history, trend charts, and what
    waits for review (the card refreshes itself on the patient's "lab" events)."""
    patient = _patient(request, pk, Action.LIST)
    scope = request_scope(request)
    observations = selectors.observations_visible(scope).filter(patient=patient)
    rows = selectors.patient_lab_rows(observations)
    waiting = list(
        observations.exclude(review="").select_related("test").order_by("-received_at", "-pk")[:CARD_REVIEW_ITEMS]
    )
    audit_record(
        request=request,
        action=Action.LIST,
        object_type="diagnostics.observation",
        patient_id=patient.pk,
        detail=f"lab results card: {sum(len(row.results) for row in rows)} results, {len(waiting)} for review",
    )
    context = {
        "patient": patient,
        "rows": [(row, _chart(row)) for row in rows],
        "waiting": waiting,
        "home": _home(scope, patient),
    }
    return render(request, "diagnostics/_labs_results.html", context)


def _chart(row: selectors.LabTestRow) -> str:
    if row.test is None or not row.test.trend:
        return ""
    points = row.charted
    if len(points) < 2:
        return ""
    latest = points[-1]
    return charts.trend_svg(
        [
            charts.Point(
                at=o.observed_at,
                value=o.value,  # type: ignore[arg-type]  # charted results have one
                label=value_text(o),
                flag=o.flag,
                flag_label=o.get_flag_display() if o.flag not in ("", Observation.Flag.NORMAL) else "",
            )
            for o in points
        ],
        title=_("%(test)s over time, %(unit)s") % {"test": row.test.name, "unit": row.test.unit or "—"},
        unit=row.test.unit,
        low=latest.low,
        high=latest.high,
    )


# A result entered by hand.


class LabTestChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.short_name} — {obj.name}"


class LabEntryForm(forms.Form):
    test = LabTestChoice(queryset=LabTest.objects.all(), label=gettext_lazy("Test"), empty_label=None)
    value = forms.CharField(label=gettext_lazy("Value"), max_length=64)
    unit = forms.CharField(label=gettext_lazy("Unit"), max_length=24, required=False)
    taken_at = forms.DateTimeField(
        label=gettext_lazy("Taken at"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # One per form shown: the same form sent twice (a double click, a resent request) is stored once.
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)


# Field ids of the one entry form on a patient page (choosing a test sends the others along by id).
ENTRY_ID = "lab-entry-%s"
# Which form field a pipeline's Problem.field is about.
_ENTRY_FIELDS = {"code": "test", "value": "value", "observed_at": "taken_at"}


def _entry_form(data: Any = None, initial: dict[str, Any] | None = None) -> LabEntryForm:
    initial = {"token": uuid.uuid4().hex, "taken_at": timezone.localtime().replace(second=0, microsecond=0)} | (
        initial or {}
    )
    return LabEntryForm(data, initial=initial, auto_id=ENTRY_ID)


def _entry_render(
    request: HttpRequest, patient: Patient, form: LabEntryForm, *, status: int = 200, done: str = ""
) -> HttpResponse:
    chosen = form.data.get("test") if form.is_bound else form.initial.get("test")
    chosen_id = str(chosen.pk if isinstance(chosen, LabTest) else chosen or "")
    test = LabTest.objects.filter(pk=int(chosen_id)).first() if chosen_id.isdigit() else None
    context = {
        "patient": patient,
        "form": form,
        "units": lab_import.units_known([test])[test.pk] if test is not None else [],
        "done": done,
    }
    if request.htmx:  # type: ignore[attr-defined]
        # htmx swaps only a successful answer in: a refused entry comes back as 200 with its reasons.
        return render(request, "diagnostics/_labs_entry.html", context)
    return render(request, "diagnostics/labs_entry.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def patient_lab_entry(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the form (choosing another test sets its unit). POST: store the result through the pipeline."""
    patient = _patient(request, pk, Action.CREATE if request.method == "POST" else Action.VIEW)
    if not _home(request_scope(request), patient):
        return forbidden(request, _("Lab results are entered by the patient's own hospital."))
    if request.method == "GET":
        test = LabTest.objects.filter(pk=request.GET["test"]).first() if request.GET.get("test", "").isdigit() else None
        test = test or LabTest.objects.first()
        initial: dict[str, Any] = {"test": test, "unit": test.unit if test else ""}
        if request.GET.get("value"):
            initial["value"] = request.GET["value"][:64]
        if request.GET.get("taken_at"):
            initial["taken_at"] = request.GET["taken_at"][:20]
        return _entry_render(request, patient, _entry_form(initial=initial))
    form = _entry_form(request.POST)
    if not form.is_valid():
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.observation",
            patient_id=patient.pk,
            detail=", ".join(form.errors),
        )
        return _entry_render(request, patient, _renewed(form), status=400)
    data = form.cleaned_data
    outcome = lab_import.lab_result_enter(
        patient=patient,
        test=data["test"],
        value=data["value"],
        unit=data["unit"],
        taken_at=data["taken_at"],
        token=data["token"],
        by=_user(request),
    )
    if outcome.problems:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            obj=outcome.message,
            patient_id=patient.pk,
            detail="; ".join(problem.reason for problem in outcome.problems),
        )
        return _entry_render(request, patient, _renewed(form, outcome.problems), status=400)
    if outcome.observation is None:
        done = _("This result was stored before; nothing was added.")
    elif outcome.observation.review:
        done = _(
            "Stored. The platform does not know the unit “%(unit)s” for this test, so the result waits in the "
            "review queue."
        ) % {"unit": outcome.observation.unit_sent}
    else:
        done = _("Stored: %(test)s %(value)s %(unit)s.") % {
            "test": outcome.observation.test.short_name if outcome.observation.test else "",
            "value": value_text(outcome.observation),
            "unit": outcome.observation.unit,
        }
    if not request.htmx:  # type: ignore[attr-defined]
        messages.success(request, done)
        return redirect("patient_detail", pk=patient.pk)
    fresh = _entry_form(initial={"test": data["test"], "unit": data["unit"]})
    response = _entry_render(request, patient, fresh, done=done)
    # The card shows the result at once (the pipeline's live event follows for the other pages).
    response["HX-Trigger"] = json.dumps({"mh:lab": {"kind": "lab", "patient": patient.pk}})
    return response


def _renewed(form: LabEntryForm, problems: list[Problem] | None = None) -> LabEntryForm:
    """The form shown again with its errors (and the pipeline's reasons beside their fields) and a fresh
    token: the corrected result is a new entry."""
    data = {**form.data.dict(), "token": uuid.uuid4().hex}  # type: ignore[attr-defined]  # a QueryDict
    renewed = LabEntryForm(data, auto_id=ENTRY_ID)
    renewed.is_valid()
    for problem in problems or []:
        renewed.add_error(_ENTRY_FIELDS.get(problem.field), problem.reason)
    return renewed


# CSV import.


def _import_context(patient: Patient | None, **extra: Any) -> dict[str, Any]:
    return {
        "patient": patient,
        "columns": [(name, text, lab_import.format_aliases(name)) for name, text in lab_import.FORMAT_COLUMNS],
        "sample": lab_import.SAMPLE,
        "max_rows": settings.LAB_IMPORT_MAX_ROWS,
        "max_mb": settings.LAB_IMPORT_MAX_BYTES / 2**20,
        **extra,
    }


@require_http_methods(["GET", "POST"])
@login_required
def lab_import_page(request: HttpRequest) -> HttpResponse:
    """An analyser's export of many patients (a record-number column): preview, correct, import."""
    scope = request_scope(request)
    if not scope.has_patients or scope.hospital_id is None:
        return forbidden(request, _("Lab results are imported by clinicians and specialists."))
    return _import(request, scope, scope.hospital_id, None)


@require_http_methods(["GET", "POST"])
@login_required
def patient_lab_import(request: HttpRequest, pk: int) -> HttpResponse:
    """One patient's results from a CSV file (no record-number column needed)."""
    patient = _patient(request, pk, Action.CREATE if request.method == "POST" else Action.VIEW)
    scope = request_scope(request)
    if not _home(scope, patient):
        return forbidden(request, _("Lab results are imported by the patient's own hospital."))
    return _import(request, scope, patient.hospital_id, patient)


def _import(request: HttpRequest, scope: Scope, hospital_id: int, patient: Patient | None) -> HttpResponse:
    template = "diagnostics/labs_import.html"
    if request.method == "GET":
        return render(request, template, _import_context(patient, stage="upload"))
    try:
        rows = _import_rows(request, patient)
    except lab_import.CsvRefused as refusal:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.labmessage",
            patient_id=patient.pk if patient else "",
            detail=f"CSV import: {refusal}",
        )
        return render(request, template, _import_context(patient, stage="upload", refused=str(refusal)), status=400)
    checks = lab_import.rows_check(rows, scope=scope, hospital_id=hospital_id, patient=patient)
    if request.POST.get("action") == "import":
        outcome = lab_import.lab_csv_import(hospital_id=hospital_id, checks=checks, by=_user(request), patient=patient)
        return render(request, template, _import_context(patient, stage="done", outcome=outcome))
    _audit_preview(request, checks, patient)
    flagged = [check for check in checks if check.state != lab_import.RowState.OK]
    plain = [check for check in checks if check.state == lab_import.RowState.OK]
    for check in flagged[: lab_import.FIX_ROWS]:
        check.editable = True
    context = _import_context(
        patient,
        stage="preview",
        checks=sorted(flagged + plain[: lab_import.SHOWN_PLAIN_ROWS], key=lambda check: check.row.row),
        not_shown=max(len(plain) - lab_import.SHOWN_PLAIN_ROWS, 0),
        not_editable=max(len(flagged) - lab_import.FIX_ROWS, 0),
        total=len(checks),
        errors=sum(1 for check in checks if check.state == lab_import.RowState.ERROR),
        review=sum(1 for check in checks if check.state == lab_import.RowState.REVIEW),
        importable=sum(1 for check in checks if not check.problems),
        token=lab_import.rows_sign(rows),
    )
    return render(request, template, context)


def _import_rows(request: HttpRequest, patient: Patient | None) -> list[lab_import.CsvRow]:
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size is not None and upload.size > settings.LAB_IMPORT_MAX_BYTES:
            raise lab_import.CsvRefused(
                _("The file is larger than %(max)s MB. Split it into smaller files and import each.")
                % {"max": f"{settings.LAB_IMPORT_MAX_BYTES / 2**20:g}"}
            )
        return lab_import.csv_read(upload.read(), max_rows=settings.LAB_IMPORT_MAX_ROWS, with_record=patient is None)
    if request.POST.get("rows"):
        return lab_import.rows_unsign(request.POST["rows"], request.POST)
    raise lab_import.CsvRefused(_("Choose a CSV file to import."))


def _audit_preview(request: HttpRequest, checks: list[lab_import.RowCheck], patient: Patient | None) -> None:
    """The preview names the patients the rows belong to: one read of each, audited."""
    patients: list[int | str] = sorted({check.patient.pk for check in checks if check.patient is not None})
    detail = f"CSV import preview: {len(checks)} rows"
    with audit_batch():
        for patient_id in patients or [""]:
            audit_record(
                request=request,
                action=Action.VIEW,
                object_type="patients.patient" if patient_id else "diagnostics.labmessage",
                object_id=patient_id,
                patient_id=patient_id,
                detail=detail,
            )


@require_GET
@login_required
def lab_import_sample(request: HttpRequest) -> HttpResponse:
    """A CSV file in the format the import reads, to start from."""
    response = HttpResponse(lab_import.SAMPLE, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="lab-results-sample.csv"'
    return response


# The review queue.


def _review_item(request: HttpRequest, pk: int, action: str) -> Observation:
    try:
        return access_record(selectors.observations_review(request_scope(request)), pk)
    except Http404:
        raise audit_not_found(request, action, "diagnostics.observation", pk) from None


@require_GET
@login_required
def lab_review(request: HttpRequest) -> HttpResponse:
    """Results the hospital received that wait for a person: no patient with the record number sent, or a
    test or unit the platform does not know. Newest first."""
    scope = request_scope(request)
    if not scope.has_patients or scope.hospital_id is None:
        return forbidden(request, _("The review queue of lab results is worked by clinicians and specialists."))
    page = Paginator(selectors.observations_review(scope), REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    find = request.GET.get("find", "")
    query = request.GET.get("q", "").replace("\x00", "")[:100].strip()
    candidates: list[Patient] = []
    with audit_batch():
        audit_record(
            request=request,
            action=Action.LIST,
            object_type="diagnostics.observation",
            detail=f"lab review queue, page {page.number}: {len(page.object_list)} results",
        )
        if find.isdigit() and query:
            candidates = list(
                patient_search(scope=scope, query=query).filter(hospital_id=scope.hospital_id)[:REVIEW_CANDIDATES]
            )
            audit_record(
                request=request, action=Action.LIST, object_type="patients.patient", detail=f"lab review: q={query}"
            )
    context = {
        "page": page,
        "find": int(find) if find.isdigit() else None,
        "query": query,
        "candidates": candidates,
        "Review": Observation.Review,
    }
    return render(request, "diagnostics/labs_review.html", context)


@require_GET
@login_required
def lab_review_count(request: HttpRequest) -> HttpResponse:
    """The badge beside the review queue's link (refreshed on the hospital's "lab_review" events)."""
    scope = request_scope(request)
    if not scope.has_patients:
        return forbidden(request, _("The review queue of lab results is worked by clinicians and specialists."))
    return render(request, "diagnostics/_labs_review_count.html", {"waiting": selectors.lab_review_waiting(scope)})


def _back_to_review(request: HttpRequest) -> HttpResponse:
    page = request.POST.get("page", "")
    return redirect(reverse("diagnostics:lab_review") + (f"?page={page}" if page.isdigit() else ""))


@require_POST
@login_required
def lab_review_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Say whose result this is: one of the hospital's patients."""
    observation = _review_item(request, pk, Action.UPDATE)
    scope = request_scope(request)
    chosen = request.POST.get("patient", "")
    patient = (
        patient_search(scope=scope).filter(hospital_id=observation.hospital_id, pk=int(chosen)).first()
        if chosen.isdigit()
        else None
    )
    if observation.review != Observation.Review.PATIENT:
        messages.info(request, _("This result has a patient already."))
    elif patient is None:
        messages.error(request, _("Find the patient by record number or name, then choose them from the list."))
    else:
        observation_patient_assign(observation=observation, patient=patient, by=_user(request), request=request)
        messages.success(
            request,
            _("The result is now %(name)s's (record %(record)s).")
            % {"name": patient.full_name, "record": patient.record_number},
        )
    return _back_to_review(request)


@require_POST
@login_required
def lab_review_keep(request: HttpRequest, pk: int) -> HttpResponse:
    """Keep a result with an unknown test or unit as it was sent (a person has read it)."""
    observation = _review_item(request, pk, Action.UPDATE)
    try:
        observation_review_close(observation=observation, by=_user(request), request=request)
    except ValueError:
        messages.error(request, _("This result has no patient yet: assign one first."))
    else:
        messages.success(request, _("The result is kept as it was sent."))
    return _back_to_review(request)
