"""Patients over the API: the same scoping, validation and audit as the pages."""

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from hospitals.audit import Action, audit_record
from hospitals.scoping import request_membership, request_scope
from patients import selectors, services
from patients.forms import PatientForm
from patients.models import PATIENT_FIELDS, Patient


class PatientSerializer(serializers.ModelSerializer):
    hospital = serializers.CharField(source="hospital.name", read_only=True)
    has_consent = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = ["id", "hospital", *PATIENT_FIELDS, "has_consent", "created_at", "updated_at"]
        read_only_fields = ["id", "hospital", "has_consent", "created_at", "updated_at"]

    def get_has_consent(self, patient: Patient) -> bool:
        consents = list(patient.consents.all())
        return bool(consents) and consents[0].is_valid


class PatientViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Patients the caller may see. `?q=` searches names (case and ё/е ignored), record numbers, SNILS and
    birth dates. Registering and correcting are for the patient's home hospital."""

    serializer_class = PatientSerializer
    http_method_names = ["get", "post", "put", "head", "options"]

    def get_queryset(self) -> Any:
        query = self.request.query_params.get("q", "").replace("\x00", "")[:100]
        return selectors.patient_search(scope=request_scope(self.request._request), query=query).prefetch_related(
            "consents"
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        audit_record(request=request._request, user=request.user, action=Action.LIST, object_type="patients.patient")
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        audit_record(
            request=request._request, user=request.user, action=Action.VIEW, obj=patient, patient_id=patient.pk
        )
        return Response(self.get_serializer(patient).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        staff = request_membership(request._request)
        if staff is None or not request_scope(request._request).has_patients:
            raise ValidationError({"hospital": _("Patients are registered by clinicians and specialists.")})
        form = PatientForm(_form_data(request.data), hospital=staff.hospital)
        return self._save(
            request,
            form,
            lambda data: services.patient_create(hospital=staff.hospital, by=request.user, **data),
            created=True,
        )

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        if patient.hospital_id != request_scope(request._request).hospital_id:
            raise ValidationError({"hospital": _("Only the patient's home hospital corrects their record.")})
        form = PatientForm(
            {**_form_data(request.data), "confirm_not_duplicate": True}, instance=patient, hospital=patient.hospital
        )
        return self._save(request, form, lambda data: services.patient_update(patient=patient, **data), created=False)

    def _save(self, request: Request, form: PatientForm, write: Any, *, created: bool) -> Response:
        """The page's form validates (one set of rules and messages); the service writes."""
        action = Action.CREATE if created else Action.UPDATE
        if not form.is_valid() and form.is_likely_duplicate:
            return Response(
                {
                    "code": "likely_duplicate",
                    "detail": str(form.non_field_errors()[0]),
                    "duplicates": [p.pk for p in form.duplicates],
                    "hint": _("Send confirm_not_duplicate=true if this is a different person."),
                },
                status=409,
            )
        if not form.is_valid():
            audit_record(
                request=request._request,
                user=request.user,
                action=action,
                outcome="invalid",
                object_type="patients.patient",
                detail=", ".join(form.errors),
            )
            raise ValidationError({field: [str(e) for e in errors] for field, errors in form.errors.items()})
        data = {k: v for k, v in form.cleaned_data.items() if k != "confirm_not_duplicate"}
        try:
            with transaction.atomic():
                patient = write(data)
                audit_record(
                    request=request._request, user=request.user, action=action, obj=patient, patient_id=patient.pk
                )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error
        return Response(self.get_serializer(patient).data, status=201 if created else 200)


def _form_data(data: Any) -> dict[str, Any]:
    """The request's body as the page's form reads it: an object of single text values. A list or an object
    where a field takes one value is refused by the field's name (the form's fields would fail on it)."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": [_("Send the patient as one JSON object of fields.")]})
    wrong = {
        name: [_("Send one value here, not a list or an object.")]
        for name, value in data.items()
        if isinstance(value, list | dict)
    }
    if wrong:
        raise ValidationError(wrong)
    # Form fields read text, as a page posts it: a JSON number or true/false becomes its text.
    return {name: value if value is None or isinstance(value, str) else str(value) for name, value in data.items()}
