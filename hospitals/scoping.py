"""Who may see what: the one place that scopes every queryset of protected data.

Views never filter by hospital themselves; they ask here. An object outside the
scope is answered exactly like one that does not exist (404), so a probe cannot
learn that another hospital's record exists. `access_*` functions fetch *with*
the check; the `*_visible`/`*_manageable` functions return scoped querysets.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest

from hospitals.models import SECOND_FACTOR_ROLES, AuditEntry, Hospital, Staff

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Scope:
    user_id: int | None
    hospital_id: int | None
    role: str | None
    is_platform_admin: bool

    @property
    def is_hospital_admin(self) -> bool:
        return self.role == Staff.Role.HOSPITAL_ADMIN

    @property
    def needs_second_factor(self) -> bool:
        return self.is_platform_admin or self.role in SECOND_FACTOR_ROLES

    @property
    def can_manage_staff(self) -> bool:
        return self.is_platform_admin or self.is_hospital_admin

    @property
    def can_manage_devices(self) -> bool:
        return self.is_platform_admin or self.is_hospital_admin

    @property
    def can_read_audit(self) -> bool:
        return self.is_platform_admin or self.is_hospital_admin

    @property
    def has_patients(self) -> bool:
        return self.role in CLINICAL_ROLES and self.hospital_id is not None

    def manages_staff_of(self, hospital_id: int) -> bool:
        return self.is_platform_admin or (self.is_hospital_admin and self.hospital_id == hospital_id)


NO_SCOPE = Scope(user_id=None, hospital_id=None, role=None, is_platform_admin=False)


_remembered: ContextVar[dict[int, Staff | None] | None] = ContextVar("memberships_remembered", default=None)


@contextmanager
def memberships_remembered() -> Iterator[None]:
    """Within the block, each user's membership is fetched once: for a unit of work outside a request (a call
    socket's message) whose access rules, consultation side and audit row all ask for it. Requests have
    `request_membership` instead."""
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)


def membership_for(user: Any) -> Staff | None:
    """The user's active membership, with its hospital; None for platform admins and strangers."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    remembered = _remembered.get()
    if remembered is not None and user.pk in remembered:
        return remembered[user.pk]
    # One membership per user: no ordering by Meta's names (a join to order one row).
    staff = (
        Staff.objects.select_related("hospital").filter(user=user, deactivated_at__isnull=True).order_by("pk").first()
    )
    if remembered is not None:
        remembered[user.pk] = staff
    return staff


def membership_remembered(user: Any) -> Staff | None:
    """The active membership `memberships_remembered` holds for the user, if it has fetched one."""
    remembered = _remembered.get()
    return remembered.get(user.pk) if remembered is not None and user is not None else None


def scope_for(user: Any) -> Scope:
    """The scope of a signed-in, active user; an empty scope for anyone else."""
    return _scope(user, membership_for(user))


def _scope(user: Any, staff: Staff | None) -> Scope:
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_SCOPE
    return Scope(
        user_id=user.pk,
        hospital_id=staff.hospital_id if staff else None,
        role=staff.role if staff else None,
        is_platform_admin=bool(user.is_superuser),
    )


def request_membership(request: HttpRequest) -> Staff | None:
    """`membership_for(request.user)`, fetched once per request and user (middleware, views, templates all ask)."""
    user = getattr(request, "user", None)
    key = user.pk if user is not None and user.is_authenticated else None
    cached: tuple[object, Staff | None] | None = getattr(request, "_membership", None)
    if cached is None or cached[0] != key:  # signing in or out mid-request changes the answer
        cached = (key, membership_for(user))
        request._membership = cached  # type: ignore[attr-defined]
    return cached[1]


def request_membership_found(request: HttpRequest, user: Any, staff: Staff | None) -> None:
    """Give the request the membership fetched with its user (an API token's query brings it), so that
    `request_membership` need not fetch it again; a deactivated one counts as none, as it does there."""
    active = staff if staff is not None and staff.deactivated_at is None else None
    request._membership = (user.pk, active)  # type: ignore[attr-defined]


def request_scope(request: HttpRequest) -> Scope:
    """The scope of the request's user, computed once per request and user."""
    return _scope(getattr(request, "user", None), request_membership(request))


def hospitals_visible(scope: Scope) -> QuerySet[Hospital]:
    """Platform admins see every hospital; staff see their own and the hospitals in its network."""
    hospitals = Hospital.objects.select_related("central_hospital")
    if scope.is_platform_admin:
        return hospitals
    if scope.hospital_id is None:
        return hospitals.none()
    own = Hospital.objects.filter(pk=scope.hospital_id).values("central_hospital_id")
    return hospitals.filter(
        Q(pk=scope.hospital_id)  # own hospital
        | Q(central_hospital_id=scope.hospital_id)  # hospitals that refer to us
        | Q(pk__in=own)  # the central hospital we refer to
        | Q(central_hospital_id__in=own, central_hospital_id__isnull=False)  # its other referrers
    )


def access_hospital(scope: Scope, pk: object) -> Hospital:
    return _get_or_404(hospitals_visible(scope), pk)


def staff_manageable(scope: Scope) -> QuerySet[Staff]:
    """Hospital admins manage their own hospital's staff; platform admins everyone's."""
    staff = Staff.objects.select_related("user", "hospital", "department").prefetch_related("specialties")
    if scope.is_platform_admin:
        return staff
    if scope.is_hospital_admin and scope.hospital_id is not None:
        # A platform admin who also works at a hospital is beyond its hospital admin's reach.
        return staff.filter(hospital_id=scope.hospital_id, user__is_superuser=False)
    return staff.none()


def access_staff(scope: Scope, pk: object) -> Staff:
    return _get_or_404(staff_manageable(scope), pk)


def hospital_assets_manageable(scope: Scope, assets: QuerySet[M]) -> QuerySet[M]:
    """`assets` (rows with a `hospital`, such as devices) narrowed to those the scope administers: a hospital
    admin's own hospital's, every hospital's for a platform admin, none for anyone else."""
    if scope.is_platform_admin:
        return assets
    if scope.is_hospital_admin and scope.hospital_id is not None:
        return assets.filter(hospital_id=scope.hospital_id)
    return assets.none()


def audit_visible(scope: Scope) -> QuerySet[AuditEntry]:
    """Hospital admins read their own hospital's trail; platform admins read all of it."""
    if scope.is_platform_admin:
        return AuditEntry.objects.all()
    if scope.is_hospital_admin:
        return AuditEntry.objects.filter(actor_hospital_id=scope.hospital_id)
    return AuditEntry.objects.none()


# Clinical records (patients and everything about them) belong to a home hospital. Its clinicians and
# specialists see them; hospital and platform admins manage people and hospitals, not patients.
CLINICAL_ROLES = frozenset({Staff.Role.CLINICIAN, Staff.Role.SPECIALIST})
PatientGrant = Callable[[Scope], Q]
_patient_grants: list[PatientGrant] = []


def patient_grant_register(grant: PatientGrant) -> None:
    """Let another app widen who sees a patient (a consultation lets the consulted hospital in), with a
    condition on the patient queryset, without this module importing that app."""
    if grant not in _patient_grants:
        _patient_grants.append(grant)


def patients_visible(scope: Scope, patients: QuerySet[M]) -> QuerySet[M]:
    """`patients` narrowed to those the scope may see: its own hospital's, plus what registered grants add."""
    if scope.role not in CLINICAL_ROLES or scope.hospital_id is None:
        return patients.none()
    condition = Q(hospital_id=scope.hospital_id)
    for grant in _patient_grants:
        condition |= grant(scope)
    return patients.filter(condition)


def related_patients_visible(scope: Scope, rows: QuerySet[M], path: str, patients: QuerySet[Any]) -> QuerySet[M]:
    """`rows` of a model that belongs to a patient (at `path`, such as "patient"), narrowed to the patients
    the scope may see: the same rule as patients_visible. The own hospital's is written as a condition on
    the joined patient rather than as a subquery of all its patients, so that a search's first page is read
    in index order instead of after matching every row against every patient of the hospital."""
    if scope.role not in CLINICAL_ROLES or scope.hospital_id is None:
        return rows.none()
    condition = Q(**{f"{path}__hospital_id": scope.hospital_id})
    granted = Q()
    for grant in _patient_grants:
        granted |= grant(scope)
    if granted:
        # A grant that grants nothing (Q(pk__in=[])) compiles to no condition at all.
        condition |= Q(**{f"{path}__in": patients.filter(granted).values("pk")})
    return rows.filter(condition)


def access_record(queryset: QuerySet[M], pk: object) -> M:
    """Fetch one row of an already scoped queryset; anything else is a 404 like a missing row."""
    return _get_or_404(queryset, pk)


def _get_or_404(queryset: QuerySet[M], pk: object) -> M:
    try:
        return queryset.get(pk=int(str(pk)))
    except (ValueError, ObjectDoesNotExist):
        raise Http404 from None
