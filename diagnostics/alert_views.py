"""The critical results banner on every page of a clinician or specialist, and its Acknowledge button.

The page's socket only says that an alert was raised or acknowledged (ids); the banner then fetches what it
shows from here, through the user's scope, and that read is audited.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from diagnostics import lab_alerts, selectors
from hospitals.audit import Action, audit_not_found, audit_record
from hospitals.scoping import request_scope
from hospitals.views import forbidden

TEMPLATE = "diagnostics/_lab_alerts.html"
# The banner lists this many (newest first) and counts the rest; each acknowledgement brings the next up.
ALERTS_SHOWN = 10


def banner_shown(request: HttpRequest) -> bool:
    """Whether this request's pages carry the banner: clinicians and specialists past the account gate (a
    page the gate lets through before the second factor or a password change shows no patient data)."""
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(user, "must_change_password", False):
        return False
    scope = request_scope(request)
    if not scope.has_patients:
        return False
    return not scope.needs_second_factor or bool(getattr(user, "is_verified", lambda: False)())


def banner_context(request: HttpRequest, *, back: str) -> dict[str, Any]:
    """The open alerts of the user's side, as the banner shows them. Reading them is audited in one row that
    names the alerts and their patients; an empty banner shows no patient data and is not."""
    open_alerts = selectors.lab_alerts_open(request_scope(request))
    alerts = list(open_alerts[:ALERTS_SHOWN])
    total = open_alerts.count() if len(alerts) == ALERTS_SHOWN else len(alerts)
    if alerts:
        patients = sorted({alert.patient_id for alert in alerts})
        audit_record(
            request=request,
            action=Action.LIST,
            object_type="diagnostics.labalert",
            patient_id=patients[0] if len(patients) == 1 else "",
            detail="critical results banner: alerts {} of patients {}".format(
                ",".join(str(alert.pk) for alert in alerts), ",".join(map(str, patients))
            ),
        )
    return {"alerts": alerts, "alerts_total": total, "alerts_more": total - len(alerts), "back": back}


def _back(request: HttpRequest, url: str, default: str) -> str:
    return url if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}) else default


@require_GET
@login_required
def lab_alert_list(request: HttpRequest) -> HttpResponse:
    """The banner alone, for the page to swap in when its socket says an alert was raised or acknowledged."""
    if not request_scope(request).has_patients:
        return forbidden(request, _("Critical results are shown to clinicians and specialists."))
    htmx: Any = getattr(request, "htmx", None)
    page = htmx.current_url_abs_path if htmx and htmx.current_url_abs_path else ""
    back = _back(request, page, reverse("dashboard"))
    return render(request, TEMPLATE, banner_context(request, back=back))


@require_POST
@login_required
def lab_alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge a critical result for the user's side; another hospital's alert is a 404 like an absent one."""
    try:
        alert = selectors.access_lab_alert(request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, Action.UPDATE, "diagnostics.labalert", pk) from None
    lab_alerts.lab_alert_acknowledge(alert=alert, by=request.user, request=request)
    back = _back(request, request.POST.get("next", ""), reverse("patient_detail", args=[alert.patient_id]))
    if getattr(request, "htmx", None):
        return render(request, TEMPLATE, banner_context(request, back=back))
    messages.success(request, _("Critical result acknowledged."))
    return redirect(back)
