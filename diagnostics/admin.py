"""Reference data for platform admins: lab tests, unit conversions, reference ranges and critical limits;
the AI model registry.
Results themselves are not in the admin: patient data is read through the scoped, audited pages only."""

from django.contrib import admin
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from diagnostics.ai_forms import AIModelForm
from diagnostics.models import AIModel, LabTest, LabUnit, ReferenceRange
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


@admin.register(AIModel)
class AIModelAdmin(AuditedAdmin):
    """The AI model registry: a file is checked (loaded and run once) before it is kept; a model that later
    fails in the pipeline shows why in "last error" and is skipped until it is fixed."""

    form = AIModelForm
    list_display = ("name", "version", "modalities", "body_part", "enabled_for", "readings", "last_error_short")
    search_fields = ("name", "version")
    filter_horizontal = ("hospitals",)
    readonly_fields = ("sha256", "input_channels", "has_heatmap", "last_error", "last_error_at", "decisions_link")
    fieldsets = (
        (None, {"fields": ("name", "version", "upload", "sha256", "intended_use", "disclaimer")}),
        (_("What it reads"), {"fields": ("modalities", "body_part")}),
        (
            _("Input and output"),
            {
                "fields": (
                    "input_width",
                    "input_height",
                    "input_channels",
                    "mean",
                    "std",
                    "activation",
                    "labels_text",
                    "has_heatmap",
                )
            },
        ),
        (_("Where it runs"), {"fields": ("hospitals",)}),
        (_("Health and evaluation"), {"fields": ("last_error", "last_error_at", "decisions_link")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[AIModel]:
        return super().get_queryset(request).annotate(reading_count=Count("readings", distinct=True))

    def save_model(self, request: HttpRequest, obj: AIModel, form: ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.display(description=_("enabled for"))
    def enabled_for(self, obj: AIModel) -> str:
        return ", ".join(hospital.name for hospital in obj.hospitals.all()) or "—"

    @admin.display(description=_("images read"), ordering="reading_count")
    def readings(self, obj: AIModel) -> int:
        return int(getattr(obj, "reading_count", 0))

    @admin.display(description=_("last error"))
    def last_error_short(self, obj: AIModel) -> str:
        return Truncator(obj.last_error).chars(80) or "—"

    @admin.display(description=_("specialists' decisions"))
    def decisions_link(self, obj: AIModel) -> str:
        if not obj.pk:
            return "—"
        url = reverse("ai:decisions_csv", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download as CSV (for model evaluation)"))
