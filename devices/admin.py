"""Django admin for platform admins: the devices of each hospital and their DICOM AE titles (the allow-list)."""

from django.contrib import admin

from devices.models import Device
from hospitals.admin import AuditedAdmin


@admin.register(Device)
class DeviceAdmin(AuditedAdmin):
    list_display = ("name", "kind", "hospital", "ae_title", "active", "last_seen_at")
    list_filter = ("active", "kind", "hospital")
    search_fields = ("name", "ae_title", "hospital__name")
    readonly_fields = ("created_at", "last_seen_at")
    fields = ("hospital", "name", "kind", "ae_title", "active", "created_at", "last_seen_at")
