"""Pages: dashboard, hospitals, staff management and the audit viewer. Thin: scope, call a service, audit."""

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hospitals import scoping, services
from hospitals.audit import Action, Outcome, audit_record
from hospitals.forms import AuditFilterForm, StaffCreateForm, StaffUpdateForm
from hospitals.models import Hospital, Staff

PAGE_SIZE = 50


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A role may not use this page at all (no object is named, so nothing is revealed)."""
    audit_record(
        request=request,
        action=Action.PERMISSION_DENIED,
        outcome=Outcome.DENIED,
        detail=f"{request.method} {request.path[:200]}",
    )
    return render(request, "403.html", {"message": message}, status=403)


def _not_found(request: HttpRequest, action: str, object_type: str, object_id: object) -> Http404:
    """Audit a request for an object outside the user's scope (or absent); the caller raises the 404."""
    audit_record(
        request=request, action=action, outcome=Outcome.NOT_FOUND, object_type=object_type, object_id=object_id
    )
    return Http404()


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
        raise _not_found(request, Action.VIEW, "hospitals.hospital", pk) from None
    context = {
        "hospital": hospital,
        "departments": hospital.departments.select_related("specialty"),
        "referring": hospital.referring_hospitals.filter(is_active=True),
        "can_manage_staff": scope.is_platform_admin or (scope.is_hospital_admin and scope.hospital_id == hospital.pk),
    }
    return render(request, "hospitals/hospital_detail.html", context)


@require_GET
@login_required
def staff_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_manage_staff:
        return _forbidden(request, _("Only hospital admins manage staff."))
    staff = scoping.staff_manageable(scope)
    query = request.GET.get("q", "").strip()[:100]
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
        return _forbidden(request, _("Only hospital admins manage staff."))
    own_hospital = None if scope.is_platform_admin else Hospital.objects.get(pk=scope.hospital_id or 0)
    form = StaffCreateForm(request.POST or None, hospital=own_hospital)
    if request.method == "POST":
        if not form.is_valid():
            audit_record(
                request=request,
                action=Action.CREATE,
                outcome=Outcome.INVALID,
                object_type="hospitals.staff",
                detail=", ".join(form.errors)[:500],
            )
            return render(request, "hospitals/staff_form.html", {"form": form}, status=400)
        data = form.cleaned_data
        staff, password = services.staff_create(
            hospital=own_hospital or data["hospital"],
            username=data["username"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            email=data["email"],
            role=data["role"],
            job_title=data["job_title"],
            department=data["department"],
            specialties=list(data["specialties"]),
        )
        audit_record(request=request, action=Action.CREATE, obj=staff)
        return render(request, "hospitals/staff_created.html", {"staff": staff, "password": password}, status=201)
    return render(request, "hospitals/staff_form.html", {"form": form})


def _access_staff(request: HttpRequest, pk: int, action: str) -> Staff:
    try:
        return scoping.access_staff(scoping.request_scope(request), pk)
    except Http404:
        raise _not_found(request, action, "hospitals.staff", pk) from None


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
    if request.method == "POST":
        if form.is_valid() and _may_change_own_role(request, staff, form.cleaned_data["role"]):
            data = form.cleaned_data
            services.staff_update(
                staff=staff,
                first_name=data["first_name"],
                last_name=data["last_name"],
                role=data["role"],
                job_title=data["job_title"],
                department=data["department"],
                specialties=list(data["specialties"]),
            )
            audit_record(request=request, action=Action.UPDATE, obj=staff, detail=f"role={staff.role}")
            messages.success(request, _("Changes to %(name)s saved.") % {"name": staff.user.get_full_name()})
            return redirect("staff_detail", pk=staff.pk)
        audit_record(
            request=request,
            action=Action.UPDATE,
            outcome=Outcome.INVALID,
            obj=staff,
            detail=", ".join(form.errors)[:500],
        )
        return render(request, "hospitals/staff_detail.html", {"staff": staff, "form": form}, status=400)
    audit_record(request=request, action=Action.VIEW, obj=staff)
    return render(request, "hospitals/staff_detail.html", {"staff": staff, "form": form})


def _may_change_own_role(request: HttpRequest, staff: Staff, role: str) -> bool:
    if staff.user_id == request.user.pk and role != staff.role:
        messages.error(request, _("You cannot change your own role; ask another admin."))
        return False
    return True


@require_POST
@login_required
def staff_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    if staff.user_id == request.user.pk:
        messages.error(request, _("You cannot deactivate your own account."))
        return redirect("staff_detail", pk=staff.pk)
    services.staff_deactivate(staff=staff)
    audit_record(request=request, action=Action.UPDATE, obj=staff, detail="deactivated")
    messages.success(request, _("%(name)s is deactivated and signed out everywhere.") % {"name": staff.user})
    return redirect("staff_detail", pk=staff.pk)


@require_POST
@login_required
def staff_activate(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    services.staff_activate(staff=staff)
    audit_record(request=request, action=Action.UPDATE, obj=staff, detail="activated")
    messages.success(request, _("%(name)s can sign in again.") % {"name": staff.user})
    return redirect("staff_detail", pk=staff.pk)


@require_POST
@login_required
def staff_second_factor_reset(request: HttpRequest, pk: int) -> HttpResponse:
    staff = _access_staff(request, pk, Action.UPDATE)
    services.staff_second_factor_reset(staff=staff)
    audit_record(request=request, action=Action.UPDATE, obj=staff, detail="second factor reset")
    messages.success(
        request,
        _("The second factor of %(name)s was removed; they set up a new one at next sign-in.") % {"name": staff.user},
    )
    return redirect("staff_detail", pk=staff.pk)


@require_GET
@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    scope = scoping.request_scope(request)
    if not scope.can_read_audit:
        return _forbidden(request, _("Only hospital admins read the audit trail."))
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
