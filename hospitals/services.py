"""Writes to hospitals and staff: the use cases behind the staff pages."""

import secrets
from collections.abc import Mapping

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals import events
from hospitals.errors import Refused
from hospitals.models import Department, Hospital, Notification, Specialty, Staff, User


class StaffChangeRefused(Refused):
    """A change an admin may not make; the message says why, in the user's language."""

    code = "staff_change_refused"


def _sessions_end(user: User) -> None:
    """End every session of the account now and for good: cookies stop matching, open sockets close."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
    user_id = user.pk
    transaction.on_commit(lambda: events.session_ended(user_id), robust=True)


def _temporary_password() -> str:
    # Shown once to the admin; the user must replace it at first sign-in.
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


@transaction.atomic
def staff_create(
    *,
    hospital: Hospital,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    role: str,
    job_title: str = "",
    department: Department | None = None,
    specialties: list[Specialty] | None = None,
) -> tuple[Staff, str]:
    """Create an account and its membership; return it with the temporary password to hand over."""
    password = _temporary_password()
    user = User.objects.create_user(
        username=username,
        password=password,
        first_name=first_name,
        last_name=last_name,
        email=email,
        must_change_password=True,
    )
    staff = Staff.objects.create(user=user, hospital=hospital, role=role, job_title=job_title, department=department)
    staff.specialties.set(specialties or [])
    return staff, password


@transaction.atomic
def staff_update(
    *,
    staff: Staff,
    by: User,
    first_name: str,
    last_name: str,
    role: str,
    job_title: str = "",
    department: Department | None = None,
    specialties: list[Specialty] | None = None,
) -> Staff:
    if staff.user_id == by.pk and role != staff.role:
        raise StaffChangeRefused(_("You cannot change your own role; ask another admin."))
    staff.user.first_name, staff.user.last_name = first_name, last_name
    staff.user.save(update_fields=["first_name", "last_name"])
    staff.role, staff.job_title, staff.department = role, job_title, department
    staff.save(update_fields=["role", "job_title", "department", "updated_at"])
    staff.specialties.set(specialties or [])
    return staff


@transaction.atomic
def staff_deactivate(*, staff: Staff, by: User) -> Staff:
    """Deactivate an account: its sessions end at once (pages and sockets) and stay ended if it is reactivated."""
    if staff.user_id == by.pk:
        raise StaffChangeRefused(_("You cannot deactivate your own account."))
    staff.deactivated_at = timezone.now()
    staff.save(update_fields=["deactivated_at", "updated_at"])
    staff.user.is_active = False
    staff.user.save(update_fields=["is_active"])
    _sessions_end(staff.user)
    return staff


@transaction.atomic
def staff_activate(*, staff: Staff) -> Staff:
    staff.deactivated_at = None
    staff.save(update_fields=["deactivated_at", "updated_at"])
    staff.user.is_active = True
    staff.user.save(update_fields=["is_active"])
    return staff


@transaction.atomic
def staff_second_factor_reset(*, staff: Staff) -> int:
    """Remove a lost authenticator and end the account's sessions: the person signs in with their password
    again and enrols a new one. Returns the number of authenticators removed."""
    removed, _by_model = TOTPDevice.objects.filter(user=staff.user).delete()
    _sessions_end(staff.user)
    return removed


def password_changed(*, user: User) -> None:
    """The person chose their own password: the temporary one no longer holds them back."""
    User.objects.filter(pk=user.pk, must_change_password=True).update(must_change_password=False)


@transaction.atomic
def second_factor_device_for(*, user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator being enrolled (created on first visit of the enrolment page)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


@transaction.atomic
def second_factor_confirm(*, device: TOTPDevice) -> TOTPDevice:
    TOTPDevice.objects.filter(user=device.user, confirmed=True).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return device


def notify(*, users: list[User], message: str, params: Mapping[str, object], url: str = "") -> None:
    """Tell people something: a row each (inside the caller's transaction), then a live push after commit.
    `message` is a source text marked with gettext_noop; it is translated when shown."""
    recipients = {user.pk for user in users}
    Notification.objects.bulk_create(
        Notification(user_id=pk, message=message, params=dict(params), url=url) for pk in recipients
    )
    transaction.on_commit(lambda: events.notifications_changed(recipients), robust=True)


def notifications_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
