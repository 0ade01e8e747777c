"""Consultations over the API: the worklist, requests, moves, the thread and signed conclusions."""

from typing import Any, cast

from django.db import transaction
from django.utils.translation import gettext as _
from django_otp import match_token
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from consultations import selectors, services
from consultations.models import Conclusion, Consultation, Icd10Code, Message, Urgency
from hospitals.audit import Action, audit_record
from hospitals.models import Specialty, Staff, User
from hospitals.scoping import patients_visible, request_scope
from patients.models import Patient


class ConsultationSerializer(serializers.ModelSerializer):
    patient_name = serializers.CharField(source="patient.full_name", read_only=True)
    requesting_hospital = serializers.CharField(source="requesting_hospital.name", read_only=True)
    consulted_hospital = serializers.CharField(source="consulted_hospital.name", read_only=True)
    specialty = serializers.SlugRelatedField(slug_field="code", read_only=True)
    assigned_to = serializers.SerializerMethodField()

    class Meta:
        model = Consultation
        fields = [
            "id",
            "patient",
            "patient_name",
            "requesting_hospital",
            "consulted_hospital",
            "specialty",
            "urgency",
            "question",
            "condition",
            "state",
            "assigned_to",
            "decline_reason",
            "requested_at",
            "deadline",
            "overdue_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_assigned_to(self, consultation: Consultation) -> str | None:
        specialist = consultation.assigned_to
        return specialist.get_full_name() if specialist else None


class ConsultationRequestSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    specialty = serializers.SlugRelatedField(slug_field="code", queryset=Specialty.objects.all())
    question = serializers.CharField(max_length=4000)
    condition = serializers.CharField(max_length=4000)
    draft = serializers.BooleanField(default=False)


class MoveSerializer(serializers.Serializer):
    move = serializers.ChoiceField(choices=services.BUTTONS)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.get_full_name", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class ConclusionSerializer(serializers.ModelSerializer):
    diagnosis = serializers.SlugRelatedField(slug_field="code", queryset=Icd10Code.objects.all())
    signed_by = serializers.CharField(source="signed_by.get_full_name", read_only=True)
    code = serializers.RegexField(r"^\d{6}$", write_only=True, help_text="The signer's current six-digit code.")

    class Meta:
        model = Conclusion
        fields = [
            "version",
            "findings",
            "diagnosis",
            "diagnosis_text",
            "recommendation",
            "plan",
            "follow_up",
            "signed_by",
            "signed_at",
            "code",
        ]
        read_only_fields = ["version", "signed_by", "signed_at"]


class ConsultationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Specialists list their hospital's worklist (most urgent first); clinicians their hospital's requests."""

    serializer_class = ConsultationSerializer

    def get_queryset(self) -> Any:
        scope = request_scope(self.request._request)
        if self.action == "list":
            if scope.role == Staff.Role.SPECIALIST:
                return selectors.worklist(scope=scope)
            return selectors.requests_of_hospital(scope=scope)
        return selectors.consultations_visible(scope)

    def _user(self) -> User:
        return cast(User, self.request.user)

    def _audit(self, consultation: Consultation | None, action_: str, **kwargs: Any) -> None:
        audit_record(
            request=self.request._request,
            user=self.request.user,
            action=action_,
            obj=consultation,
            object_type="" if consultation else "consultations.consultation",
            patient_id=consultation.patient_id if consultation else "",
            **kwargs,
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._audit(None, Action.LIST)
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        consultation = self.get_object()
        self._audit(consultation, Action.VIEW)
        return Response(ConsultationSerializer(consultation).data)

    @extend_schema(request=ConsultationRequestSerializer, responses=ConsultationSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ConsultationRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        scope = request_scope(request._request)
        patient = (
            patients_visible(scope, Patient.objects.filter(hospital_id=scope.hospital_id or 0))
            .filter(pk=data["patient"])
            .first()
        )
        if patient is None:
            raise ValidationError({"patient": [_("No patient of your hospital has this id.")]})
        with transaction.atomic():
            consultation = services.consultation_create(
                patient=patient,
                by=self._user(),
                specialty=data["specialty"],
                urgency=data["urgency"],
                question=data["question"],
                condition=data["condition"],
                submit=not data["draft"],
            )
            self._audit(consultation, Action.CREATE)
        return Response(ConsultationSerializer(consultation).data, status=201)

    @extend_schema(request=MoveSerializer, responses=ConsultationSerializer)
    @action(detail=True, methods=["post"])
    def moves(self, request: Request, pk: str | None = None) -> Response:
        """Request, accept, decline (with a note), ask-info (with a note), answer or cancel."""
        consultation = self.get_object()
        incoming = MoveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        move, note = incoming.validated_data["move"], incoming.validated_data["note"]
        with transaction.atomic():
            moved = services.consultation_move(consultation=consultation, move=move, by=self._user(), note=note)
            self._audit(moved, Action.UPDATE, detail=f"{move} from {consultation.state}")
        return Response(ConsultationSerializer(moved).data)

    @extend_schema(request=MessageSerializer, responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def messages(self, request: Request, pk: str | None = None) -> Response:
        consultation = self.get_object()
        if request.method == "GET":
            self._audit(consultation, Action.VIEW, detail="messages")
            return Response(MessageSerializer(consultation.messages.select_related("author"), many=True).data)
        incoming = MessageSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        with transaction.atomic():
            message = services.message_post(
                consultation=consultation, by=self._user(), body=incoming.validated_data["body"]
            )
            self._audit(consultation, Action.CREATE, detail="message")
        return Response(MessageSerializer(message).data, status=201)

    @extend_schema(request=ConclusionSerializer, responses=ConclusionSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def conclusions(self, request: Request, pk: str | None = None) -> Response:
        """Signed versions, newest first. POST signs a new one; it needs the signer's current code."""
        consultation = self.get_object()
        if request.method == "GET":
            self._audit(consultation, Action.VIEW, detail="conclusions")
            versions = consultation.conclusions.select_related("diagnosis", "signed_by")
            return Response(ConclusionSerializer(versions, many=True).data)
        incoming = ConclusionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        if match_token(request.user, data.pop("code")) is None:
            raise ValidationError({"code": [_("That code is not right or has expired; nothing was signed.")]})
        with transaction.atomic():
            conclusion = services.conclusion_sign(consultation=consultation, by=self._user(), **data)
            self._audit(consultation, Action.CREATE, detail=f"conclusion v{conclusion.version} signed")
        return Response(ConclusionSerializer(conclusion).data, status=201)
