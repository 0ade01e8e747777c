"""Django admin for platform admins: hospitals, the network, reference data, and a read-only audit trail."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from hospitals import services
from hospitals.audit import Action, audit_record
from hospitals.models import AuditEntry, Department, Hospital, Specialty, Staff, User


class AuditedAdmin(admin.ModelAdmin):
    """Writes through the Django admin land in the audit trail like every other write."""

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            detail = "admin: " + ", ".join(form.changed_data)
            audit_record(request=request, action=Action.UPDATE if change else Action.CREATE, obj=obj, detail=detail)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit_record(request=request, action=Action.DELETE, obj=obj, detail="admin")
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                audit_record(request=request, action=Action.DELETE, obj=obj, detail="admin")
            super().delete_queryset(request, queryset)


@admin.register(User)
class MHospitalUserAdmin(AuditedAdmin, UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("M-Hospital", {"fields": ("must_change_password",)}))


class DepartmentInline(admin.TabularInline):  # saved with its hospital, audited there
    model = Department
    extra = 0


@admin.register(Hospital)
class HospitalAdmin(AuditedAdmin):
    list_display = ("name", "kind", "region", "central_hospital", "time_zone", "is_active")
    list_filter = ("kind", "is_active", "region", "central_hospital")
    search_fields = ("name", "region")
    inlines = [DepartmentInline]


@admin.register(Specialty)
class SpecialtyAdmin(AuditedAdmin):
    list_display = ("code", "name_en", "name_ru")
    search_fields = ("code", "name_en", "name_ru")


@admin.register(Staff)
class StaffAdmin(AuditedAdmin):
    list_display = ("user", "hospital", "role", "department", "deactivated_at")
    list_filter = ("role", "hospital", "specialties")
    search_fields = ("user__username", "user__last_name", "user__first_name")
    autocomplete_fields = ("user",)
    filter_horizontal = ("specialties",)
    # Deactivation ends sessions and is audited: it goes through the service, as on the staff pages.
    readonly_fields = ("deactivated_at",)
    actions = ["deactivate", "reactivate"]

    @admin.action(description=_("Deactivate and sign out"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Staff]) -> None:
        for staff in queryset.filter(deactivated_at__isnull=True).select_related("user"):
            try:
                with transaction.atomic():
                    services.staff_deactivate(staff=staff, by=request.user)  # type: ignore[arg-type]
                    audit_record(request=request, action=Action.UPDATE, obj=staff, detail="admin: deactivated")
            except services.StaffChangeRefused as refusal:
                self.message_user(request, str(refusal), messages.ERROR)

    @admin.action(description=_("Reactivate"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Staff]) -> None:
        for staff in queryset.filter(deactivated_at__isnull=False).select_related("user"):
            with transaction.atomic():
                services.staff_activate(staff=staff)
                audit_record(request=request, action=Action.UPDATE, obj=staff, detail="admin: activated")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "at",
        "actor_username",
        "actor_role",
        "action",
        "object_type",
        "object_id",
        "outcome",
        "ip",
    )
    list_filter = ("action", "outcome", "actor_role")
    search_fields = ("actor_username", "object_id", "patient_id", "request_id")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
