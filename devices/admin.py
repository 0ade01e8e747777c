"""Django admin for platform admins: the devices of each hospital, their DICOM AE titles (the allow-list) and
their tokens. Tokens are issued on the device's page, where the token can be shown once; here they can only be
looked at and revoked, and their hash is never shown."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from devices import services
from devices.models import Device, DeviceToken
from hospitals.admin import AuditedAdmin

TOKEN_FIELDS = ("__str__", "created_at", "created_by", "last_used_at", "revoked_at")


class DeviceTokenInline(admin.TabularInline):
    model = DeviceToken
    extra = 0
    can_delete = False
    fields = TOKEN_FIELDS
    readonly_fields = TOKEN_FIELDS
    verbose_name_plural = _("tokens (issue and rotate them on the device's page)")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Device)
class DeviceAdmin(AuditedAdmin):
    list_display = (
        "name",
        "kind",
        "hospital",
        "vendor",
        "model_name",
        "location",
        "ae_title",
        "hl7_sender",
        "active",
        "last_seen_at",
    )
    list_filter = ("active", "kind", "hospital")
    search_fields = ("name", "ae_title", "hl7_sender", "serial", "vendor", "model_name", "location", "hospital__name")
    readonly_fields = ("created_at", "last_seen_at")
    fields = (
        "hospital",
        "name",
        "kind",
        "vendor",
        "model_name",
        "serial",
        "location",
        "ae_title",
        "hl7_sender",
        "active",
        "created_at",
        "last_seen_at",
    )
    inlines = [DeviceTokenInline]

    def get_inlines(self, request: HttpRequest, obj: Device | None) -> list[type[admin.options.InlineModelAdmin]]:
        return list(self.inlines) if obj is not None else []  # a new device has no tokens yet


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    list_display = ("__str__", "device", "created_at", "created_by", "last_used_at", "revoked_at")
    list_filter = ("device__hospital",)
    list_select_related = ("device", "created_by")
    search_fields = ("prefix", "device__name", "device__hospital__name")
    fields = ("device", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is issued on the device's page, the one place it can be shown once

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is the record of what the device could do, and when

    @admin.action(description=_("Revoke"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[DeviceToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.device_token_revoke(token=token, by=request.user, request=request)  # type: ignore[arg-type]
        self.message_user(request, _("The selected tokens are revoked."))
