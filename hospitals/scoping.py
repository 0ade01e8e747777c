"""Who may see what: the one place that scopes every queryset of protected data.

Views never filter by hospital themselves; they ask here. An object outside the
scope is answered exactly like one that does not exist (404), so a probe cannot
learn that another hospital's record exists. `access_*` functions fetch *with*
the check; the `*_visible`/`*_manageable` functions return scoped querysets.
"""

from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet
from django.http import Http404

from hospitals.models import AuditEntry, Hospital, Staff

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
    def can_manage_staff(self) -> bool:
        return self.is_platform_admin or self.is_hospital_admin

    @property
    def can_read_audit(self) -> bool:
        return self.is_platform_admin or self.is_hospital_admin


NO_SCOPE = Scope(user_id=None, hospital_id=None, role=None, is_platform_admin=False)


def scope_for(user: Any) -> Scope:
    """The scope of a signed-in, active user; an empty scope for anyone else."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_SCOPE
    staff = Staff.objects.filter(user=user, deactivated_at__isnull=True).only("hospital_id", "role").first()
    return Scope(
        user_id=user.pk,
        hospital_id=staff.hospital_id if staff else None,
        role=staff.role if staff else None,
        is_platform_admin=bool(user.is_superuser),
    )


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
        return staff.filter(hospital_id=scope.hospital_id)
    return staff.none()


def access_staff(scope: Scope, pk: object) -> Staff:
    return _get_or_404(staff_manageable(scope), pk)


def audit_visible(scope: Scope) -> QuerySet[AuditEntry]:
    """Hospital admins read their own hospital's trail; platform admins read all of it."""
    if scope.is_platform_admin:
        return AuditEntry.objects.all()
    if scope.is_hospital_admin:
        return AuditEntry.objects.filter(actor_hospital_id=scope.hospital_id)
    return AuditEntry.objects.none()


def _get_or_404(queryset: QuerySet[M], pk: object) -> M:
    try:
        return queryset.get(pk=int(str(pk)))
    except (ValueError, ObjectDoesNotExist):
        raise Http404 from None
