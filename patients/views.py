"""Patient pages: search, register (with a duplicate check), the patient page, corrections, consent."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import Hospital
from hospitals.scoping import request_membership, request_scope
from hospitals.uploads import document_download
from hospitals.views import forbidden
from patients import selectors, services
from patients.forms import ConsentForm, PatientForm
from patients.models import Patient

PAGE_SIZE = 25


def _clinical_hospital(request: HttpRequest) -> Hospital | None:
    """The hospital whose patients the user works with, or None if their role has no patients."""
    staff = request_membership(request)
    return staff.hospital if staff is not None and request_scope(request).has_patients else None


def _access(request: HttpRequest, pk: int, action: str) -> Patient:
    try:
        return selectors.access_patient(request_scope(request), pk)
    except Http404:
        audit_record(
            request=request, action=action, outcome=Outcome.NOT_FOUND, object_type="patients.patient", object_id=pk
        )
        raise


@require_GET
@login_required
def patient_list(request: HttpRequest) -> HttpResponse:
    if _clinical_hospital(request) is None:
        return forbidden(request, _("Patients are seen by clinicians and specialists."))
    query = request.GET.get("q", "").replace("\x00", "")[:100]
    patients = selectors.patient_search(scope=request_scope(request), query=query)
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    audit_record(request=request, action=Action.LIST, object_type="patients.patient", detail=f"q={query}")
    template = "patients/_results.html" if request.htmx else "patients/list.html"  # type: ignore[attr-defined]
    return render(request, template, {"page": page, "query": query})


@require_http_methods(["GET", "POST"])
@login_required
def patient_create(request: HttpRequest) -> HttpResponse:
    hospital = _clinical_hospital(request)
    if hospital is None:
        return forbidden(request, _("Patients are registered by clinicians and specialists."))
    form = PatientForm(request.POST or None, hospital=hospital)
    if request.method == "GET":
        return render(request, "patients/form.html", {"form": form})
    valid = form.is_valid()
    if not valid and form.is_likely_duplicate:
        # Shown before anything is saved: the clinician opens the existing record or confirms a new person.
        return render(request, "patients/form.html", {"form": form, "duplicates": form.duplicates}, status=409)
    if not valid:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="patients.patient",
            detail=", ".join(form.errors),
        )
        return render(request, "patients/form.html", {"form": form}, status=400)
    data: dict[str, Any] = form.cleaned_data
    with transaction.atomic():
        patient = services.patient_create(hospital=hospital, by=request.user, **data)  # type: ignore[arg-type]
        audit_record(request=request, action=Action.CREATE, obj=patient, patient_id=patient.pk)
    messages.success(request, _("%(name)s is registered.") % {"name": patient.full_name})
    return redirect("patient_detail", pk=patient.pk)


@require_GET
@login_required
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = _access(request, pk, Action.VIEW)
    audit_record(request=request, action=Action.VIEW, obj=patient, patient_id=patient.pk)
    return _detail(request, patient, ConsentForm())


def _detail(request: HttpRequest, patient: Patient, consent_form: ConsentForm, status: int = 200) -> HttpResponse:
    consents = list(patient.consents.all())
    context = {
        "patient": patient,
        "consent": consents[0] if consents else None,
        "consent_form": consent_form,
        "is_home_hospital": patient.hospital_id == request_scope(request).hospital_id,
    }
    return render(request, "patients/detail.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def patient_edit(request: HttpRequest, pk: int) -> HttpResponse:
    patient = _access(request, pk, Action.UPDATE if request.method == "POST" else Action.VIEW)
    if patient.hospital_id != request_scope(request).hospital_id:
        # A consulted hospital reads the record; only the home hospital corrects it.
        return forbidden(request, _("Only the patient's home hospital corrects their record."))
    form = PatientForm(request.POST or None, instance=patient, hospital=patient.hospital)
    if request.method == "GET":
        audit_record(request=request, action=Action.VIEW, obj=patient, patient_id=patient.pk)
        return render(request, "patients/form.html", {"form": form, "patient": patient})
    if not form.is_valid():
        audit_record(
            request=request,
            action=Action.UPDATE,
            outcome=Outcome.INVALID,
            obj=patient,
            patient_id=patient.pk,
            detail=", ".join(form.errors),
        )
        patient.refresh_from_db()
        return render(request, "patients/form.html", {"form": form, "patient": patient}, status=400)
    with transaction.atomic():
        services.patient_update(patient=patient, **form.cleaned_data)
        audit_record(request=request, action=Action.UPDATE, obj=patient, patient_id=patient.pk)
    messages.success(request, _("The record of %(name)s is saved.") % {"name": patient.full_name})
    return redirect("patient_detail", pk=patient.pk)


@require_POST
@login_required
def consent_record(request: HttpRequest, pk: int) -> HttpResponse:
    patient = _access(request, pk, Action.CREATE)
    if patient.hospital_id != request_scope(request).hospital_id:
        return forbidden(request, _("Consent is recorded by the patient's home hospital."))
    form = ConsentForm(request.POST, request.FILES)
    if not form.is_valid():
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="patients.consent",
            patient_id=patient.pk,
            detail=", ".join(form.errors),
        )
        return _detail(request, patient, form, status=400)
    with transaction.atomic():
        consent = services.consent_record(patient=patient, by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        audit_record(request=request, action=Action.CREATE, obj=consent, patient_id=patient.pk)
    messages.success(request, _("Consent recorded."))
    return redirect("patient_detail", pk=patient.pk)


@require_GET
@login_required
def consent_scan(request: HttpRequest, pk: int, consent_id: int) -> FileResponse:
    """The signed consent form, to those who may see the patient (media files are never served publicly)."""
    patient = _access(request, pk, Action.VIEW)
    consent = patient.consents.filter(pk=consent_id).exclude(form_scan="").first()
    if consent is None:
        audit_record(
            request=request,
            action=Action.VIEW,
            outcome=Outcome.NOT_FOUND,
            object_type="patients.consent",
            object_id=consent_id,
            patient_id=patient.pk,
        )
        raise Http404
    audit_record(request=request, action=Action.EXPORT, obj=consent, patient_id=patient.pk)
    return document_download(consent.form_scan)
