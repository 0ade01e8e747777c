"""Lab reference data for platform admins: tests, unit conversions, reference ranges and critical limits.
Results themselves are not in the admin: patient data is read through the scoped, audited pages only."""

from django.contrib import admin
from django.db import transaction
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from diagnostics.models import LabTest, LabUnit, ReferenceRange
from hospitals.admin import AuditedAdmin
from hospitals.audit import Action, audit_record


class LabUnitInline(admin.TabularInline):
    model = LabUnit
    extra = 0


class ReferenceRangeInline(admin.TabularInline):
    model = ReferenceRange
    extra = 0


@admin.register(LabTest)
class LabTestAdmin(AuditedAdmin):
    list_display = ("short_name", "name", "loinc", "unit", "critical_low", "critical_high", "trend")
    list_editable = ("critical_low", "critical_high")
    search_fields = ("loinc", "name", "short_name")
    inlines = (LabUnitInline, ReferenceRangeInline)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            for obj in [*formset.new_objects, *(obj for obj, _fields in formset.changed_objects)]:
                audit_record(request=request, action=Action.UPDATE, obj=obj, detail=f"admin: {form.instance}")
            for obj in formset.deleted_objects:
                audit_record(request=request, action=Action.DELETE, obj=obj, detail=f"admin: {form.instance}")
