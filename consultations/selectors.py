"""Reads of consultations, scoped by the user's Scope (hospitals/scoping.py)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from consultations.models import OPEN_STATES, VISIBLE_TO_CONSULTED, Consultation
from hospitals.models import Staff
from hospitals.scoping import CLINICAL_ROLES, Scope, access_record


def consultations_visible(scope: Scope) -> QuerySet[Consultation]:
    """The requesting hospital's clinical staff see its requests; the consulted hospital's specialists see
    the requests before them and the ones they answered (never drafts or cancelled ones)."""
    consultations = Consultation.objects.select_related(
        "patient", "specialty", "assigned_to", "requesting_hospital", "consulted_hospital"
    )
    if scope.role not in CLINICAL_ROLES or scope.hospital_id is None:
        return consultations.none()
    condition = Q(requesting_hospital_id=scope.hospital_id)
    if scope.role == Staff.Role.SPECIALIST:
        condition |= Q(consulted_hospital_id=scope.hospital_id, state__in=VISIBLE_TO_CONSULTED)
    return consultations.filter(condition)


def access_consultation(scope: Scope, pk: object) -> Consultation:
    return access_record(consultations_visible(scope), pk)


def patients_of_consultations(scope: Scope) -> Q:
    """Grant for hospitals/scoping.patients_visible: a specialist sees the patient of a consultation
    addressed to their hospital, for as long as that consultation is not cancelled."""
    if scope.role != Staff.Role.SPECIALIST or scope.hospital_id is None:
        return Q(pk__in=[])
    addressed = Consultation.objects.filter(
        patient=OuterRef("pk"), consulted_hospital_id=scope.hospital_id, state__in=VISIBLE_TO_CONSULTED
    )
    return Q(Exists(addressed))


def worklist(
    *, scope: Scope, specialty: int | None = None, mine: bool = False, state: str = ""
) -> QuerySet[Consultation]:
    """Open requests addressed to the specialist's hospital: most urgent first, then least time left."""
    if scope.role != Staff.Role.SPECIALIST or scope.hospital_id is None:
        return Consultation.objects.none()
    # Within what consultations_visible grants a specialist, written plainly so the partial index serves it.
    rows = Consultation.objects.select_related(
        "patient", "specialty", "assigned_to", "requesting_hospital", "consulted_hospital"
    ).filter(consulted_hospital_id=scope.hospital_id, state__in=OPEN_STATES)
    if specialty:
        rows = rows.filter(specialty_id=specialty)
    if mine:
        rows = rows.filter(assigned_to_id=scope.user_id)
    if state:
        rows = rows.filter(state=state)
    return rows.order_by("priority", "deadline", "pk")


def requests_of_hospital(*, scope: Scope) -> QuerySet[Consultation]:
    """The requests the user's own hospital made, newest first."""
    if scope.hospital_id is None:
        return Consultation.objects.none()
    return consultations_visible(scope).filter(requesting_hospital_id=scope.hospital_id).order_by("-created_at")
