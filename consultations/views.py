"""Consultation pages: the worklist, a request, the consultation with its thread and conclusion."""

import json
from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import match_token

from consultations import calls, selectors, services
from consultations.forms import CallGuestForm, ConclusionForm, ConsultationRequestForm, MessageForm, MoveForm
from consultations.models import Call, Consultation
from consultations.pdf import conclusion_pdf
from diagnostics.selectors import studies_overview, studies_visible
from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import Staff, User
from hospitals.scoping import patients_visible, request_scope
from hospitals.uploads import document_download
from hospitals.views import forbidden
from patients.models import Patient

PAGE_SIZE = 25
State = Consultation.State


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # login_required stands before every view here


def _access(request: HttpRequest, pk: int, action: str) -> Consultation:
    try:
        return selectors.access_consultation(request_scope(request), pk)
    except Http404:
        audit_record(
            request=request,
            action=action,
            outcome=Outcome.NOT_FOUND,
            object_type="consultations.consultation",
            object_id=pk,
        )
        raise


def _audit(request: HttpRequest, consultation: Consultation, action: str, **kwargs: Any) -> None:
    audit_record(request=request, action=action, obj=consultation, patient_id=consultation.patient_id, **kwargs)


@require_GET
@login_required
def consultation_list(request: HttpRequest) -> HttpResponse:
    """Specialists: the worklist of their hospital. Clinicians: their hospital's requests."""
    scope = request_scope(request)
    if not scope.has_patients:
        return forbidden(request, _("Consultations are for clinicians and specialists."))
    asked = request.GET.get("patient", "")  # set by the timeline on a patient's page
    patient_id = asked if asked.isdigit() else ""
    if scope.role == Staff.Role.SPECIALIST and not asked:
        rows = selectors.worklist(
            scope=scope,
            specialty=int(request.GET["specialty"]) if request.GET.get("specialty", "").isdigit() else None,
            mine=request.GET.get("mine") == "1",
            state=request.GET.get("state", "") if request.GET.get("state") in State.values else "",
        )
        template = "consultations/worklist.html"
    else:
        rows = selectors.requests_of_hospital(scope=scope)
        if asked:  # junk matches no patient
            rows = (
                selectors.consultations_visible(scope).filter(patient_id=int(patient_id or 0)).order_by("-created_at")
            )
        template = "consultations/list.html"
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    audit_record(
        request=request,
        action=Action.LIST,
        object_type="consultations.consultation",
        patient_id=patient_id,
        detail=request.GET.urlencode(),
    )
    if request.htmx:  # type: ignore[attr-defined]
        template = template.replace("consultations/", "consultations/_")
    return render(request, template, {"page": page, "filters": request.GET})


@require_http_methods(["GET", "POST"])
@login_required
def consultation_create(request: HttpRequest) -> HttpResponse:
    scope = request_scope(request)
    if not scope.has_patients:
        return forbidden(request, _("Consultations are requested by clinicians."))
    own_patients = patients_visible(scope, Patient.objects.filter(hospital_id=scope.hospital_id or 0))
    form = ConsultationRequestForm(
        request.POST or None, patients=own_patients, initial={"patient": request.GET.get("patient")}
    )
    if request.method == "GET":
        return render(request, "consultations/form.html", {"form": form})
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                consultation = services.consultation_create(
                    patient=data["patient"],
                    by=_user(request),
                    specialty=data["specialty"],
                    urgency=data["urgency"],
                    question=data["question"],
                    condition=data["condition"],
                    submit="save_draft" not in request.POST,
                )
                _audit(request, consultation, Action.CREATE, detail=consultation.state)
        except services.ConsultationRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(
                request,
                _("The request is sent to %(hospital)s.") % {"hospital": consultation.consulted_hospital}
                if consultation.state == State.REQUESTED
                else _("The draft is saved."),
            )
            return redirect("consultation_detail", pk=consultation.pk)
    audit_record(
        request=request,
        action=Action.CREATE,
        outcome=Outcome.INVALID,
        object_type="consultations.consultation",
        patient_id=request.POST.get("patient", "")[:20],
        detail=", ".join(form.errors) + " ".join(str(e) for e in form.non_field_errors()),
    )
    return render(request, "consultations/form.html", {"form": form}, status=400)


@require_GET
@login_required
def consultation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    consultation = _access(request, pk, Action.VIEW)
    _audit(request, consultation, Action.VIEW)
    return _detail(request, consultation)


def _detail(request: HttpRequest, consultation: Consultation, status: int = 200, **forms: object) -> HttpResponse:
    user = _user(request)
    side = services.side_of(consultation, user)
    context = {
        "consultation": consultation,
        "side": side,
        "moves": services.moves_for(consultation, user, side),
        "transitions": consultation.transitions.select_related("by"),
        "thread": consultation.messages.select_related("author"),
        "conclusions": consultation.conclusions.select_related("diagnosis", "signed_by"),
        "can_sign": consultation.assigned_to_id == user.pk and consultation.state in (State.ACCEPTED, State.CONCLUDED),
        "message_form": forms.get("message_form") or MessageForm(),
        "conclusion_form": forms.get("conclusion_form") or ConclusionForm(),
        "move_form": MoveForm(),
        "takes_studies": side is not None and consultation.state in services.TAKES_STUDIES,
        "call_log": consultation.calls.select_related("started_by", "answered_by")[:20],
        "live_call": calls.call_live(consultation.pk),
        "in_room": calls.room_access(user=user, consultation_id=consultation.pk) is not None
        and (consultation.state in calls.CALLABLE_STATES or calls.call_live(consultation.pk) is not None),
    }
    return render(request, "consultations/detail.html", context, status=status)


@require_POST
@login_required
def consultation_move(request: HttpRequest, pk: int, move: str) -> HttpResponse:
    consultation = _access(request, pk, Action.UPDATE)
    if move not in services.BUTTONS:
        raise Http404
    form = MoveForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return _change(
        request,
        consultation,
        lambda: services.consultation_move(consultation=consultation, move=move, by=_user(request), note=note),
        detail=f"{move} from {consultation.state}",
    )


def _change(
    request: HttpRequest, consultation: Consultation, change: Callable[[], object], *, detail: str
) -> HttpResponse:
    """A change and its audit row in one transaction; a refusal is explained (409) and audited."""
    try:
        with transaction.atomic():
            change()
            _audit(request, consultation, Action.UPDATE, detail=detail)
    except services.ConsultationRefused as refusal:
        _audit(request, consultation, Action.UPDATE, outcome=Outcome.DENIED, detail=f"{detail}: {refusal}")
        messages.error(request, str(refusal))
        consultation.refresh_from_db()
        return _detail(request, consultation, status=409)
    return redirect("consultation_detail", pk=consultation.pk)


@require_POST
@login_required
def message_post(request: HttpRequest, pk: int) -> HttpResponse:
    consultation = _access(request, pk, Action.CREATE)
    form = MessageForm(request.POST, request.FILES)
    if not form.is_valid():
        _audit(
            request, consultation, Action.CREATE, outcome=Outcome.INVALID, detail="message: " + ", ".join(form.errors)
        )
        return _detail(request, consultation, status=400, message_form=form)
    return _change(
        request,
        consultation,
        lambda: services.message_post(
            consultation=consultation,
            by=_user(request),
            **form.cleaned_data,
        ),
        detail="message",
    )


@require_POST
@login_required
def conclusion_sign(request: HttpRequest, pk: int) -> HttpResponse:
    consultation = _access(request, pk, Action.CREATE)
    form = ConclusionForm(request.POST)
    if form.is_valid() and match_token(request.user, form.cleaned_data["token"]) is None:
        form.add_error("token", _("That code is not right or has expired; the conclusion is not signed."))
    if not form.is_valid():
        _audit(
            request,
            consultation,
            Action.CREATE,
            outcome=Outcome.INVALID,
            detail="conclusion: " + ", ".join(form.errors),
        )
        return _detail(request, consultation, status=400, conclusion_form=form)
    data = {k: v for k, v in form.cleaned_data.items() if k != "token"}
    return _change(
        request,
        consultation,
        lambda: services.conclusion_sign(consultation=consultation, by=_user(request), **data),
        detail="conclusion signed",
    )


@require_GET
@login_required
def conclusion_download(request: HttpRequest, pk: int, version: int) -> HttpResponse:
    consultation = _access(request, pk, Action.EXPORT)
    conclusion = consultation.conclusions.select_related("diagnosis", "signed_by").filter(version=version).first()
    if conclusion is None:
        _audit(request, consultation, Action.EXPORT, outcome=Outcome.NOT_FOUND, detail=f"conclusion v{version}")
        raise Http404
    _audit(request, consultation, Action.EXPORT, detail=f"conclusion v{version} as PDF")
    response = HttpResponse(conclusion_pdf(conclusion), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="conclusion-{consultation.pk}-v{version}.pdf"'
    return response


@require_GET
@login_required
def message_attachment(request: HttpRequest, pk: int, message_id: int) -> FileResponse:
    """An attachment of the thread, to the two sides only (media files are never served publicly)."""
    consultation = _access(request, pk, Action.VIEW)
    message = consultation.messages.filter(pk=message_id).exclude(attachment="").first()
    if message is None:
        _audit(request, consultation, Action.VIEW, outcome=Outcome.NOT_FOUND, detail=f"attachment {message_id}")
        raise Http404
    _audit(request, consultation, Action.EXPORT, detail=f"attachment of message {message_id}")
    return document_download(message.attachment)


@require_GET
@login_required
def consultation_imaging(request: HttpRequest, pk: int) -> HttpResponse:
    """The imaging section of the consultation page: the studies attached to it, and the patient's other
    studies that could be (the section refreshes itself as images arrive)."""
    consultation = _access(request, pk, Action.VIEW)
    visible = studies_visible(request_scope(request)).filter(patient_id=consultation.patient_id)
    attached = visible.filter(consultations=consultation)
    _audit(request, consultation, Action.VIEW, detail="imaging studies")
    rows = studies_overview(attached)
    context = {
        "rows": rows,
        "pending": any(row.pending for row in rows),
        "others": visible.exclude(pk__in=attached.values("pk")).order_by("-study_date", "-created_at"),
        "consultation": consultation,
        "patient": consultation.patient,
        "attach_url": reverse("consultation_studies_attach", args=[pk])
        if services.side_of(consultation, _user(request)) is not None and consultation.state in services.TAKES_STUDIES
        else "",
        "back": reverse("consultation_detail", args=[pk]),
    }
    return render(request, "diagnostics/_studies.html", context)


@require_POST
@login_required
def consultation_studies_attach(request: HttpRequest, pk: int) -> HttpResponse:
    """Attach studies of the patient (from the upload on this page, or chosen from the patient's others)."""
    consultation = _access(request, pk, Action.UPDATE)
    asked = [int(value) for value in request.POST.getlist("study") if value.isdigit()][:100]
    studies = list(studies_visible(request_scope(request)).filter(pk__in=asked))
    detail = f"imaging studies attached: {[study.pk for study in studies]}"
    try:
        with transaction.atomic():
            added = services.consultation_studies_attach(consultation=consultation, studies=studies, by=_user(request))
            _audit(request, consultation, Action.UPDATE, detail=detail)
    except services.ConsultationRefused as refusal:
        _audit(request, consultation, Action.UPDATE, outcome=Outcome.DENIED, detail=f"{detail}: {refusal}")
        if request.htmx or "application/json" in request.headers.get("Accept", ""):  # type: ignore[attr-defined]
            return JsonResponse({"code": refusal.code, "detail": str(refusal)}, status=409 if studies else 400)
        messages.error(request, str(refusal))
        return redirect("consultation_detail", pk=pk)
    if request.htmx:  # type: ignore[attr-defined]
        response = HttpResponse(status=204)
        response["HX-Trigger"] = json.dumps({"mh:consultation": {"kind": "consultation", "id": consultation.pk}})
        return response
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"attached": added})
    return redirect("consultation_detail", pk=pk)


# Video calls.


def _room(request: HttpRequest, pk: int, action: str) -> calls.Room:
    room = calls.room_access(user=_user(request), consultation_id=pk)
    if room is None:
        audit_record(
            request=request, action=action, outcome=Outcome.NOT_FOUND, object_type="consultations.call", object_id=pk
        )
        raise Http404
    return room


@require_GET
@login_required
def consultation_call(request: HttpRequest, pk: int) -> HttpResponse:
    """The call page: video, controls, chat. The signalling runs over /ws/consultations/<pk>/call/."""
    room = _room(request, pk, Action.VIEW)
    consultation = room.consultation
    audit_record(
        request=request,
        action=Action.VIEW,
        object_type="consultations.call",
        object_id=pk,
        patient_id=consultation.patient_id,
        detail="call page as a guest" if room.is_guest else "call page",
    )
    user = _user(request)
    context = {
        "consultation": consultation,
        "room": room,
        "call": calls.call_live(consultation.pk),
        "can_call": not room.is_guest and consultation.state in calls.CALLABLE_STATES,
        "guest_form": CallGuestForm(candidates=calls.guest_candidates(request_scope(request), consultation))
        if consultation.assigned_to_id == user.pk
        else None,
        "texts": _call_texts(),
    }
    return render(request, "consultations/call.html", context)


def _call_texts() -> dict[str, Any]:
    """What the call page's script says, in the user's language (the page passes them as JSON)."""
    return {
        "reasons": {str(value): str(label) for value, label in Call.EndReason.choices},
        "connecting": _("Connecting to the call room…"),
        "idle": _("No call is under way. Press “Call” to ring the other side."),
        "idle_waiting": _("No call is under way. The other side can ring you from here."),
        "ringing_out": _("Ringing… (%(seconds)s s left)"),
        "ringing_in": _("%(name)s is calling you."),
        "starting": _("Starting the camera and microphone…"),
        "connecting_peer": _("Connecting the video…"),
        "waiting_peer": _("Waiting for the other side to open the call…"),
        "connected": _("Connected with %(name)s."),
        "reconnecting": _("The connection dropped; reconnecting…"),
        "ended": _("The call has ended."),
        "ended_reason": _("The call has ended: %(reason)s."),
        "missed": _("Nobody answered; the call is logged as missed."),
        "declined": _("%(name)s declined the call."),
        "room_closed": _("The call room closed (%(reason)s). Reload the page to come back."),
        "no_media": _("Your camera and microphone could not be used (%(reason)s): you take part receive-only."),
        "audio_only": _("No camera could be used: you take part by voice only."),
        "quality": _("Round trip %(rtt)s ms · packet loss %(loss)s% · receiving %(kbps)s kbit/s"),
        "you": _("You"),
        "mute": _("Mute"),
        "unmute": _("Unmute"),
        "camera_off": _("Camera off"),
        "camera_on": _("Camera on"),
        "share": _("Share screen"),
        "stop_share": _("Stop sharing"),
        "low_on": _("Low bandwidth: on"),
        "low_off": _("Low bandwidth: off"),
        "error": _("The call room says: %(message)s"),
    }


@require_POST
@login_required
def call_decline(request: HttpRequest, pk: int) -> HttpResponse:
    """Decline the call that rings you (from the ringing panel on any page)."""
    room = _room(request, pk, Action.UPDATE)
    call = calls.call_live(room.consultation.pk)
    try:
        if call is None:
            raise calls.CallRefused(_("There is no call ringing on this consultation."))
        calls.call_decline(call_id=call.pk, by=_user(request))
    except calls.CallRefused as refusal:
        if request.htmx or "application/json" in request.headers.get("Accept", ""):  # type: ignore[attr-defined]
            return JsonResponse({"code": refusal.code, "detail": str(refusal)}, status=409)
        messages.error(request, str(refusal))
        return redirect("consultation_detail", pk=pk)
    if request.htmx or "application/json" in request.headers.get("Accept", ""):  # type: ignore[attr-defined]
        return HttpResponse(status=204)
    return redirect("consultation_detail", pk=pk)


@require_POST
@login_required
def call_guest_invite(request: HttpRequest, pk: int) -> HttpResponse:
    """The specialist invites another clinician into the call that rings or runs."""
    room = _room(request, pk, Action.UPDATE)
    consultation = room.consultation
    form = CallGuestForm(request.POST, candidates=calls.guest_candidates(request_scope(request), consultation))
    call = calls.call_live(consultation.pk)
    try:
        if not form.is_valid():
            raise calls.CallRefused(_("Choose a clinician or specialist from the list."))
        if call is None:
            raise calls.CallRefused(_("Guests are invited into a call that rings or runs."))
        calls.call_guest_invite(call_id=call.pk, by=_user(request), user=form.cleaned_data["user"])
    except calls.CallRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("consultation_call", pk=pk)
    messages.success(request, _("%(name)s is being rung.") % {"name": form.cleaned_data["user"].get_full_name()})
    return redirect("consultation_call", pk=pk)
