"""The consultation workflow: request, accept, ask for more, decline, cancel, conclude. Only allowed moves."""

from datetime import date
from functools import partial

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from consultations import events
from consultations.models import (
    OPEN_STATES,
    Conclusion,
    Consultation,
    Icd10Code,
    Message,
    ResponseDeadline,
    Transition,
)
from diagnostics.models import Study
from hospitals.errors import Refused
from hospitals.models import Specialty, Staff, User
from hospitals.scoping import membership_for
from hospitals.services import notify
from patients.models import Patient

State = Consultation.State


class ConsultationRefused(Refused):
    """A move the workflow does not allow now; the message says why and what to do, in the user's language."""

    code = "consultation_refused"


# The moves of the workflow: from which state, by which side, to which state. The requesting side is the
# clinical staff of the requesting hospital; the consulting side a specialist of the consulted hospital
# (once accepted, only the specialist who took it).
REQUESTER, CONSULTANT = "requester", "consultant"
MOVES: dict[tuple[str, str], tuple[str, str]] = {
    (State.DRAFT, "request"): (REQUESTER, State.REQUESTED),
    (State.DRAFT, "cancel"): (REQUESTER, State.CANCELLED),
    (State.REQUESTED, "accept"): (CONSULTANT, State.ACCEPTED),
    (State.REQUESTED, "decline"): (CONSULTANT, State.DECLINED),
    (State.REQUESTED, "cancel"): (REQUESTER, State.CANCELLED),
    (State.ACCEPTED, "ask-info"): (CONSULTANT, State.INFO_REQUESTED),
    (State.ACCEPTED, "decline"): (CONSULTANT, State.DECLINED),
    (State.ACCEPTED, "cancel"): (REQUESTER, State.CANCELLED),
    (State.ACCEPTED, "conclude"): (CONSULTANT, State.CONCLUDED),  # only through conclusion_sign
    (State.INFO_REQUESTED, "answer"): (REQUESTER, State.ACCEPTED),  # back to the specialist
    (State.INFO_REQUESTED, "cancel"): (REQUESTER, State.CANCELLED),
}
BUTTONS = ("request", "accept", "decline", "ask-info", "answer", "cancel")


def moves_for(consultation: Consultation, user: User, side: str | None) -> list[str]:
    """The buttons this user (on `side`, from side_of) may press on this consultation now."""
    return [
        move
        for move in BUTTONS
        if (rule := MOVES.get((consultation.state, move))) is not None and _acts_for(rule[0], consultation, user, side)
    ]


def _acts_for(move_side: str, consultation: Consultation, user: User, side: str | None) -> bool:
    """The user is on the side a move belongs to; once accepted, the consulting side is the one who took it."""
    return side == move_side and not (side == CONSULTANT and consultation.assigned_to_id not in (None, user.pk))


def side_of(consultation: Consultation, user: User) -> str | None:
    staff = membership_for(user)
    if staff is None:
        return None
    if staff.hospital_id == consultation.requesting_hospital_id:
        return REQUESTER
    if staff.hospital_id == consultation.consulted_hospital_id and staff.role == Staff.Role.SPECIALIST:
        return CONSULTANT
    return None


@transaction.atomic
def consultation_create(
    *,
    patient: Patient,
    by: User,
    specialty: Specialty,
    urgency: str,
    question: str,
    condition: str,
    submit: bool = True,
) -> Consultation:
    """Start a request to the central hospital the patient's hospital refers to; submit it unless a draft."""
    central = patient.hospital.central_hospital
    if central is None:
        raise ConsultationRefused(
            _("Your hospital is not linked to a central hospital yet; ask the platform admin to link it.")
        )
    consultation = Consultation.objects.create(
        patient=patient,
        requesting_hospital=patient.hospital,
        consulted_hospital=central,
        requested_by=by,
        specialty=specialty,
        urgency=urgency,
        question=question,
        condition=condition,
    )
    if submit:
        consultation_move(consultation=consultation, move="request", by=by)
    return consultation


@transaction.atomic
def consultation_move(*, consultation: Consultation, move: str, by: User, note: str = "") -> Consultation:
    """Make a move if the workflow and the user's side allow it now; record and announce it."""
    # Lock the row: of two specialists accepting at once, the second sees the first one's answer.
    current = Consultation.objects.select_for_update().get(pk=consultation.pk)
    side = side_of(current, by)
    rule = MOVES.get((current.state, move))
    if rule is None:
        raise ConsultationRefused(_refusal(current, move))
    allowed_side, to = rule
    if not _acts_for(allowed_side, current, by, side):
        raise ConsultationRefused(_("This step belongs to the other side of the consultation."))
    if to == State.REQUESTED and not _has_consent(current.patient):
        raise ConsultationRefused(
            _("Record the patient's consent to telemedicine and data sharing before requesting a consultation.")
        )
    if to == State.DECLINED and not note.strip():
        raise ConsultationRefused(_("Say why the request is declined, so the clinician knows what to do next."))
    if to == State.INFO_REQUESTED and not note.strip():
        raise ConsultationRefused(_("Say what information you need."))

    now = timezone.now()
    previous = current.state
    current.state = to
    if to == State.REQUESTED:
        current.requested_at = now
        current.deadline = now + ResponseDeadline.for_urgency(current.urgency)
    if to == State.ACCEPTED and previous == State.REQUESTED:
        current.assigned_to = by
    if to == State.DECLINED:
        current.decline_reason = note.strip()
    current.save()
    Transition.objects.create(consultation=current, from_state=previous, to_state=to, by=by, note=note.strip())
    _notify_move(current, previous, to)
    if to in (State.DECLINED, State.CANCELLED):
        from consultations.calls import consultation_calls_end  # calls builds on this module

        consultation_calls_end(current.pk)
    transaction.on_commit(lambda: events.consultation_changed(current.pk), robust=True)
    consultation.refresh_from_db()
    return current


NEW_REQUEST = {
    "emergency": gettext_noop("New emergency consultation request #%(id)s"),
    "urgent": gettext_noop("New urgent consultation request #%(id)s"),
    "planned": gettext_noop("New planned consultation request #%(id)s"),
}
TO_REQUESTER = {
    State.ACCEPTED: gettext_noop("Consultation #%(id)s was accepted"),
    State.INFO_REQUESTED: gettext_noop("Consultation #%(id)s: more information requested"),
    State.DECLINED: gettext_noop("Consultation #%(id)s was declined"),
    State.CONCLUDED: gettext_noop("Consultation #%(id)s is concluded"),
}


def _other_side(consultation: Consultation, by: User) -> list[User]:
    """Whom to tell of what `by` did: the requester, or the consultant (all of them until one accepts)."""
    if side_of(consultation, by) == CONSULTANT:
        return [consultation.requested_by]
    return [consultation.assigned_to] if consultation.assigned_to else list(_consultants(consultation))


def _tell(users: list[User], message: str, consultation: Consultation) -> None:
    """Notify people of something about a consultation; `message` takes the consultation's number as %(id)s."""
    url = reverse("consultation_detail", args=[consultation.pk])
    notify(users=users, message=message, params={"id": consultation.pk}, url=url)


def _notify_move(consultation: Consultation, previous: str, to: str) -> None:
    if to == State.REQUESTED:
        _tell(_consultants(consultation), NEW_REQUEST[consultation.urgency], consultation)
    elif to == State.ACCEPTED and previous == State.INFO_REQUESTED and consultation.assigned_to is not None:
        message = gettext_noop("Consultation #%(id)s: the information you asked for has arrived")
        _tell([consultation.assigned_to], message, consultation)
    elif to in TO_REQUESTER:
        _tell([consultation.requested_by], TO_REQUESTER[State(to)], consultation)
    elif to == State.CANCELLED and consultation.assigned_to is not None:
        _tell([consultation.assigned_to], gettext_noop("Consultation #%(id)s was cancelled"), consultation)


def _consultants(consultation: Consultation) -> list[User]:
    """The specialists of the consulted hospital in the requested specialty, or all of them if none is."""
    specialists = Staff.objects.filter(
        hospital=consultation.consulted_hospital, role=Staff.Role.SPECIALIST, deactivated_at__isnull=True
    ).select_related("user")
    matching = [s.user for s in specialists.filter(specialties=consultation.specialty)]
    return matching or [s.user for s in specialists]


def _refusal(consultation: Consultation, move: str) -> str:
    if move == "accept" and consultation.assigned_to is not None:
        return _("%(name)s has already accepted this request.") % {
            "name": consultation.assigned_to.get_full_name() or consultation.assigned_to.username
        }
    return _("This step is not possible while the consultation is “%(state)s”.") % {
        "state": consultation.get_state_display()
    }


def _has_consent(patient: Patient) -> bool:
    latest = patient.consents.order_by("-recorded_at", "-pk").first()
    return latest is not None and latest.is_valid


@transaction.atomic
def message_post(*, consultation: Consultation, by: User, body: str, attachment: object = None) -> Message:
    if side_of(consultation, by) is None:
        raise ConsultationRefused(_("Only the two sides of a consultation write in its thread."))
    if consultation.state in (State.CANCELLED, State.DRAFT):
        raise ConsultationRefused(_("This consultation is not open for messages."))
    message = Message.objects.create(consultation=consultation, author=by, body=body, attachment=attachment or "")
    _tell(_other_side(consultation, by), gettext_noop("New message in consultation #%(id)s"), consultation)
    transaction.on_commit(lambda: events.consultation_changed(consultation.pk), robust=True)
    return message


@transaction.atomic
def conclusion_sign(
    *,
    consultation: Consultation,
    by: User,
    findings: str,
    diagnosis: Icd10Code,
    diagnosis_text: str,
    recommendation: str,
    plan: str,
    follow_up: date | None = None,
) -> Conclusion:
    """Sign the conclusion (the caller has checked the second factor again). A concluded consultation takes
    a correction as a new version; the earlier versions stay."""
    current = Consultation.objects.select_for_update().get(pk=consultation.pk)
    if current.assigned_to_id != by.pk or current.state not in (State.ACCEPTED, State.CONCLUDED):
        raise ConsultationRefused(_("Only the specialist who accepted the request signs its conclusion."))
    version = (current.conclusions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
    conclusion = Conclusion.objects.create(
        consultation=current,
        version=version,
        findings=findings,
        diagnosis=diagnosis,
        diagnosis_text=diagnosis_text,
        recommendation=recommendation,
        plan=plan,
        follow_up=follow_up,
        signed_by=by,
    )
    if current.state == State.ACCEPTED:
        consultation_move(consultation=current, move="conclude", by=by, note=f"conclusion v{version}")
    else:
        message = gettext_noop("A correction of the conclusion of consultation #%(id)s was signed")
        _tell([current.requested_by], message, current)
        transaction.on_commit(lambda: events.consultation_changed(current.pk), robust=True)
    return conclusion


# A consultation takes images while it is being prepared or is before the specialist.
TAKES_STUDIES = (State.DRAFT, *OPEN_STATES)


@transaction.atomic
def consultation_studies_attach(*, consultation: Consultation, studies: list[Study], by: User) -> int:
    """Attach imaging studies of the consultation's patient (the caller has scoped them to the user);
    attaching one twice changes nothing. Returns how many were new to it."""
    if side_of(consultation, by) is None:
        raise ConsultationRefused(_("Only the two sides of a consultation attach images to it."))
    if consultation.state not in TAKES_STUDIES:
        raise ConsultationRefused(
            _("Images are no longer attached to this consultation: it is “%(state)s”.")
            % {"state": consultation.get_state_display()}
        )
    if not studies:
        raise ConsultationRefused(_("Choose the imaging studies to attach."))
    if any(study.patient_id != consultation.patient_id for study in studies):
        raise ConsultationRefused(_("Only images of this consultation's patient are attached to it."))
    attached = set(consultation.studies.values_list("pk", flat=True))
    new = [study for study in studies if study.pk not in attached]
    if new:
        consultation.studies.add(*new)
        if consultation.is_open:
            _tell(_other_side(consultation, by), gettext_noop("New images in consultation #%(id)s"), consultation)
        transaction.on_commit(lambda: events.consultation_changed(consultation.pk), robust=True)
    return len(new)


def consultations_mark_overdue() -> int:
    """Mark open requests past their deadline (once each) and tell the consulted hospital's admins and the
    specialist who holds it. Run every minute by Celery beat. Returns how many were marked."""
    now = timezone.now()
    marked = 0
    due = Consultation.objects.filter(state__in=OPEN_STATES, deadline__lt=now, overdue_at__isnull=True)
    for pk in due.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            consultation = Consultation.objects.select_for_update().get(pk=pk)
            if consultation.overdue_at is not None:
                continue  # another beat got there first
            consultation.overdue_at = now
            consultation.save(update_fields=["overdue_at", "updated_at"])
            admins = [
                s.user
                for s in Staff.objects.filter(
                    hospital=consultation.consulted_hospital,
                    role=Staff.Role.HOSPITAL_ADMIN,
                    deactivated_at__isnull=True,
                ).select_related("user")
            ]
            holder = [consultation.assigned_to] if consultation.assigned_to else _consultants(consultation)
            _tell(admins + holder, gettext_noop("Consultation #%(id)s is overdue"), consultation)
            transaction.on_commit(partial(events.consultation_changed, consultation.pk), robust=True)
        marked += 1
    return marked
