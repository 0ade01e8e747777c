"""Critical result alerts: a clinician or specialist acknowledges one for their own side.

An alert is raised by the lab pipeline (diagnostics/labs.py) and shown on every page of the clinicians of the
patient's hospital and of the specialists consulted about the patient, until someone on each side says they
have seen it: the patient's hospital acknowledges once, and each consulted hospital once.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnostics import events
from diagnostics.models import LabAlert, LabAlertAck
from hospitals.audit import Action, audit_record
from hospitals.models import Staff
from hospitals.scoping import CLINICAL_ROLES, membership_for, request_membership


def _membership(by: Any, request: HttpRequest | None) -> Staff | None:
    if request is not None and getattr(request, "user", None) == by:
        return request_membership(request)  # already fetched for this request
    return membership_for(by)


@transaction.atomic
def lab_alert_acknowledge(*, alert: LabAlert, by: Any, request: HttpRequest | None = None) -> LabAlertAck:
    """`by` has seen the critical result, for their hospital. Recorded once per hospital: a second click, or a
    colleague's, returns the first acknowledgement. Audited either way; the hospital's other open pages are
    told after the commit. The caller has checked that `by` may see the alert (selectors.access_lab_alert)."""
    staff = _membership(by, request)
    if staff is None or staff.role not in CLINICAL_ROLES:
        raise PermissionDenied("only clinicians and specialists acknowledge critical results")
    ack, created = LabAlertAck.objects.select_related("user").get_or_create(
        alert=alert, hospital_id=staff.hospital_id, defaults={"user": by}
    )
    observation = alert.observation
    if created:
        detail = _("Critical result acknowledged: %(test)s %(value)s %(unit)s, %(flag)s") % {
            "test": observation.test.short_name if observation.test else observation.name_sent or observation.code_sent,
            "value": observation.value_sent,
            "unit": observation.unit_sent,
            "flag": observation.get_flag_display(),
        }
        transaction.on_commit(
            lambda: events.lab_alert_acknowledged(alert_id=alert.pk, hospital_id=ack.hospital_id), robust=True
        )
    else:
        detail = _("Critical result already acknowledged at this hospital by %(user)s at %(at)s") % {
            "user": ack.user.get_username(),
            "at": timezone.localtime(ack.at).strftime("%Y-%m-%d %H:%M"),
        }
    audit_record(request=request, user=by, action=Action.UPDATE, obj=alert, patient_id=alert.patient_id, detail=detail)
    return ack
