"""Reference data of the workflow for platform admins. Consultations themselves are not in the admin:
patient data is read through the scoped, audited pages only."""

from django.contrib import admin

from consultations.models import Icd10Code, ResponseDeadline
from hospitals.admin import AuditedAdmin


@admin.register(ResponseDeadline)
class ResponseDeadlineAdmin(AuditedAdmin):
    list_display = ("urgency", "hours")


@admin.register(Icd10Code)
class Icd10CodeAdmin(AuditedAdmin):
    list_display = ("code", "title_ru", "title_en")
    search_fields = ("code", "title_ru", "title_en")
