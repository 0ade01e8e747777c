"""Django admin for platform admins: hospitals, the network, reference data, and a read-only audit trail."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from hospitals.models import AuditEntry, Department, Hospital, Specialty, Staff, User


@admin.register(User)
class MHospitalUserAdmin(UserAdmin):
    fieldsets = (*(UserAdmin.fieldsets or ()), ("M-Hospital", {"fields": ("must_change_password",)}))


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "region", "central_hospital", "time_zone", "is_active")
    list_filter = ("kind", "is_active", "region", "central_hospital")
    search_fields = ("name", "region")
    inlines = [DepartmentInline]


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ("code", "name_en", "name_ru")
    search_fields = ("code", "name_en", "name_ru")


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin):
    list_display = ("user", "hospital", "role", "department", "deactivated_at")
    list_filter = ("role", "hospital", "specialties")
    search_fields = ("user__username", "user__last_name", "user__first_name")
    autocomplete_fields = ("user",)
    filter_horizontal = ("specialties",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("seq", "at", "actor_username", "actor_role", "action", "object_type", "object_id", "outcome", "ip")
    list_filter = ("action", "outcome", "actor_role")
    search_fields = ("actor_username", "object_id", "patient_id", "request_id")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
