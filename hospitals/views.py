"""Pages: dashboard, hospitals, staff management and the audit viewer. Thin: scope, call a service, audit."""

from collections.abc import Callable
from datetime import datetime, time
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hospitals import scoping, services
from hospitals.audit import Action, Outcome, audit_not_found, audit_record
from hospitals.forms import AuditFilterForm, StaffCreateForm, StaffSearchForm, StaffUpdateForm
from hospitals.models import Hospital, Notification, Staff, User

PAGE_SIZE = 50


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for a URL nothing answers: in the API's error format under /api/ (a client reads JSON
    there, whatever it asked for), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception or Http404())


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A role may not use this page at all (no object is named, so nothing is revealed). Audited."""
    audit_record(
        request=request,
        action=Action.PERMISSION_DENIED,
        outcome=Outcome.DENIED,
        detail=f"{request.method} {request.path[:200]}",
    )
    return render(request, "403.html", {"message": message}, status=403)


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    context: dict[str, Any] = {"hospitals": scoping.hospitals_visible(scope).filter(is_active=True)}
    if scope.can_manage_staff:
        context["staff_counts"] = scoping.staff_manageable(scope).aggregate(
            active=Count("pk", filter=Q(deactivated_at__isnull=True)),
            inactive=Count("pk", filter=Q(deactivated_at__isnull=False)),
        )
    if scope.can_read_audit:
        context["recent_audit"] = scoping.audit_visible(scope)[:10]
    return render(request, "hospitals/dashboard.html", context)


@require_GET
@login_required
def hospital_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    hospitals = scoping.hospitals_visible(scope).annotate(
        staff_count=Count("staff", filter=Q(staff__deactivated_at__isnull=True))
    )
    return render(request, "hospitals/hospital_list.html", {"hospitals": hospitals})


@require_GET
@login_required
def hospital_detail(request: HttpRequest, pk: int) -> HttpResponse:
    scope = scoping.request_scope(request)
    try:
        hospital = scoping.access_hospital(scope, pk)
    except Http404:
        raise audit_not_found(request, Action.VIEW, "hospitals.hospital", pk) from None
    context = {
        "hospital": hospital,
        "departments": hospital.departments.select_related("specialty"),
        "referring": hospital.referring_hospitals.filter(is_active=True),
        "can_manage_staff": scope.manages_staff_of(hospital.pk),
    }
    return render(request, "hospitals/hospital_detail.html", context)


@require_GET
@login_required
def staff_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_manage_staff:
        return forbidden(request, _("Only hospital admins manage staff."))
    staff = scoping.staff_manageable(scope)
    search = StaffSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    if query:
        staff = staff.filter(
            Q(user__username__icontains=query)
            | Q(user__last_name__icontains=query)
            | Q(user__first_name__icontains=query)
        )
    page = Paginator(staff, PAGE_SIZE).get_page(request.GET.get("page"))
    audit_record(request=request, action=Action.LIST, object_type="hospitals.staff", detail=f"q={query}")
    return render(request, "hospitals/staff_list.html", {"page": page, "query": query})


@require_http_methods(["GET", "POST"])
@login_required
def staff_create(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_manage_staff:
        return forbidden(request, _("Only hospital admins manage staff."))
    own_hospital = None if scope.is_platform_admin else Hospital.objects.get(pk=scope.hospital_id or 0)
    form = StaffCreateForm(request.POST or None, hospital=own_hospital)
    if request.method == "POST":
        if not form.is_valid():
            audit_record(
                request=request,
                action=Action.CREATE,
                outcome=Outcome.INVALID,
                object_type="hospitals.staff",
                detail=", ".join(form.errors),
            )
            return render(request, "hospitals/staff_form.html", {"form": form}, status=400)
        data = form.cleaned_data
        with transaction.atomic():
            staff, password = services.staff_create(
                hospital=own_hospital or data["hospital"],
                username=data["username"],
                email=data["email"],
                **_profile(data),
            )
            audit_record(request=request, action=Action.CREATE, obj=staff)
        # The temporary password is on this page only: no browser or proxy may keep a copy.
        response = render(request, "hospitals/staff_created.html", {"staff": staff, "password": password}, status=201)
        add_never_cache_headers(response)
        return response
    return render(request, "hospitals/staff_form.html", {"form": form})


def _profile(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of the staff forms that the create and update services share."""
    fields = ("first_name", "last_name", "role", "job_title", "department")
    return {**{name: data[name] for name in fields}, "specialties": list(data["specialties"])}


def _access_staff(request: HttpRequest, pk: int, action: str) -> Staff:
    try:
        return scoping.access_staff(scoping.request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, action, "hospitals.staff", pk) from None


@require_http_methods(["GET", "POST"])
@login_required
def staff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE if request.method == "POST" else Action.VIEW)
    initial = {
        "first_name": staff.user.first_name,
        "last_name": staff.user.last_name,
        "role": staff.role,
        "job_title": staff.job_title,
        "department": staff.department,
        "specialties": list(staff.specialties.all()),
    }
    form = StaffUpdateForm(request.POST or None, initial=initial, hospital=staff.hospital)
    if request.method == "GET":
        audit_record(request=request, action=Action.VIEW, obj=staff)
        return render(request, "hospitals/staff_detail.html", {"staff": staff, "form": form})
    if not form.is_valid():
        audit_record(
            request=request, action=Action.UPDATE, outcome=Outcome.INVALID, obj=staff, detail=", ".join(form.errors)
        )
        return render(request, "hospitals/staff_detail.html", {"staff": staff, "form": form}, status=400)
    data = form.cleaned_data
    return _staff_change(
        request,
        staff,
        lambda: services.staff_update(staff=staff, by=request.user, **_profile(data)),  # type: ignore[arg-type]
        detail=f"role={data['role']}",
        done=_("Changes to %(name)s saved."),
    )


def _staff_change(
    request: HttpRequest, staff: Staff, change: Callable[[], object], *, detail: str, done: str
) -> HttpResponse:
    """Make a change and its audit row in one transaction; a refused change is audited and explained."""
    try:
        with transaction.atomic():
            change()
            audit_record(request=request, action=Action.UPDATE, obj=staff, detail=detail)
    except services.StaffChangeRefused as refusal:
        audit_record(request=request, action=Action.UPDATE, outcome=Outcome.DENIED, obj=staff, detail=detail)
        messages.error(request, str(refusal))
    else:
        messages.success(request, done % {"name": staff.user.get_full_name() or staff.user.username})
    return redirect("staff_detail", pk=staff.pk)


@require_POST
@login_required
def staff_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    return _staff_change(
        request,
        staff,
        lambda: services.staff_deactivate(staff=staff, by=request.user),  # type: ignore[arg-type]
        detail="deactivated",
        done=_("%(name)s is deactivated and signed out everywhere."),
    )


@require_POST
@login_required
def staff_activate(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    return _staff_change(
        request,
        staff,
        lambda: services.staff_activate(staff=staff),
        detail="activated",
        done=_("%(name)s can sign in again."),
    )


@require_POST
@login_required
def staff_second_factor_reset(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    return _staff_change(
        request,
        staff,
        lambda: services.staff_second_factor_reset(staff=staff),
        detail="second factor reset",
        done=_("The second factor of %(name)s was removed; they set up a new one at next sign-in."),
    )


@require_GET
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_read_audit:
        return forbidden(request, _("Only hospital admins read the audit trail."))
    form = AuditFilterForm(request.GET or None)
    entries = scoping.audit_visible(scope)
    if form.is_valid():
        data = form.cleaned_data
        zone = timezone.get_current_timezone()
        if data["user"]:
            entries = entries.filter(actor_username__icontains=data["user"])
        if data["patient"]:
            entries = entries.filter(patient_id=data["patient"])
        if data["action"]:
            entries = entries.filter(action=data["action"])
        if data["date_from"]:
            entries = entries.filter(at__gte=datetime.combine(data["date_from"], time.min, tzinfo=zone))
        if data["date_to"]:
            entries = entries.filter(at__lte=datetime.combine(data["date_to"], time.max, tzinfo=zone))
    audit_record(
        request=request, action=Action.LIST, object_type="hospitals.auditentry", detail=request.GET.urlencode()[:500]
    )
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "audit/_table.html" if request.htmx else "audit/list.html"  # type: ignore[attr-defined]
    return render(request, template, {"form": form, "page": page})


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.filter(user=cast(User, request.user))[:100]
    return render(request, "hospitals/notifications.html", {"notifications": notifications})


@require_POST
@login_required
def notifications_read(request: HttpRequest) -> HttpResponse:
    services.notifications_read(user=request.user)  # type: ignore[arg-type]
    return redirect("notification_list")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    audit_record(
        request=request,
        action=Action.PERMISSION_DENIED,
        outcome=Outcome.DENIED,
        object_type="csrf",
        detail=f"{request.method} {request.path[:200]}: {reason}"[:500],
    )
    message = _(
        "This form has expired or did not come from this site, so nothing was changed. Reload the page and try again."
    )
    return render(request, "403.html", {"message": message}, status=403)
