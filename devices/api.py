"""The API devices call. Device endpoints live under /api/v1/device/ and take only a device's token; what a
device sends is filed under its own hospital (devices.auth.device_of)."""

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from devices import fhir, hl7, results, services
from devices.auth import DeviceAPIView, device_of
from diagnostics.labs import FUTURE_TOLERANCE, ResultIn, value_parse
from diagnostics.models import Observation
from diagnostics.models.labs import Source


class DeviceHeartbeatView(DeviceAPIView):
    """POST: the device is on and can reach the platform. Answers 204 and sets the device's "last seen"."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.device_seen(device=device_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# HL7 v2.


class Hl7Parser(parsers.BaseParser):
    """The body as it came (bytes): the HL7 reader decides its character set."""

    media_type = hl7.CONTENT_TYPE

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> bytes:
        return stream.read() if stream is not None else b""


def _hl7_parsers() -> list[type[parsers.BaseParser]]:
    return [type(f"Hl7Parser{n}", (Hl7Parser,), {"media_type": name}) for n, name in enumerate(hl7.MEDIA_TYPES)]


EXAMPLE_ORU = (
    "MSH|^~\\&|BC5150|TULA_LAB|MHOSPITAL|MH|20261128100500+0300||ORU^R01^ORU_R01|MSG00042|P|2.5.1\r"
    "PID|1||TUL-0001^^^TULA^MR||Ivanov^Ivan\r"
    "OBR|1||S-881|24323-8^Metabolic panel^LN|||20261128093000+0300\r"
    "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-6.1|N|||F\r"
    "OBX|2|NM|10839-9^Troponin I^LN||0.45|ng/mL|<0.04|HH|||F\r"
)


class Hl7View(DeviceAPIView):
    """POST one HL7 v2 ORU^R01 message; the answer is its HL7 ACK.

    An accept acknowledgement: AA means the message is kept and its results are being stored (a worker does
    it within moments; anything it cannot place waits in the hospital's review queue). AE names, in ERR
    segments, the OBX rows that will not be stored (the rest are). AR (HTTP 400) refuses the whole message:
    not HL7, not an ORU^R01, no control id. The same message again (same MSH-10) is stored once and gets the
    same answer."""

    parser_classes = _hl7_parsers()

    @extend_schema(
        operation_id="device_hl7_oru",
        request={hl7.CONTENT_TYPE: OpenApiTypes.STR, "text/plain": OpenApiTypes.STR},
        responses={
            (200, hl7.CONTENT_TYPE): OpenApiResponse(OpenApiTypes.STR, description="ACK with MSA-1 AA or AE"),
            (400, hl7.CONTENT_TYPE): OpenApiResponse(OpenApiTypes.STR, description="ACK with MSA-1 AR"),
        },
        examples=[OpenApiExample("ORU^R01", value=EXAMPLE_ORU, request_only=True)],
    )
    def post(self, request: Request) -> HttpResponse:
        # A body without a Content-Type reaches no parser: it is read as it came all the same.
        data = request.data if isinstance(request.data, bytes) else request._request.body
        answer = results.hl7_receive(device=device_of(request), data=data, peer=request.META.get("REMOTE_ADDR", ""))
        return HttpResponse(
            answer.ack.encode(),
            status=status.HTTP_400_BAD_REQUEST if answer.code == "AR" else status.HTTP_200_OK,
            content_type=f"{hl7.CONTENT_TYPE}; charset=utf-8",
        )


# JSON readings.


class ReadingSerializer(serializers.Serializer):
    id = serializers.CharField(
        max_length=64, required=False, help_text="The device's own id of the reading, echoed in errors."
    )
    patient = serializers.CharField(max_length=40, help_text="The patient's record number in the device's hospital.")
    code = serializers.CharField(max_length=40, required=False, help_text="LOINC code (or the device's own code).")
    name = serializers.CharField(max_length=120, required=False, help_text="The test's name, if no code is sent.")
    value = serializers.CharField(max_length=64, help_text='A number: 5.4, "5,4", "<0.01".')
    unit = serializers.CharField(max_length=24, required=False, allow_blank=True, help_text="UCUM, e.g. mmol/L.")
    observed_at = serializers.DateTimeField(
        help_text="When it was taken, ISO 8601; without an offset, the hospital's local time."
    )
    range = serializers.CharField(max_length=60, required=False, allow_blank=True)
    flag = serializers.CharField(max_length=8, required=False, allow_blank=True)

    def validate_value(self, value: str) -> str:
        if value_parse(value) is None:
            raise ValidationError(
                _("“%(value)s” is not a number. Send the value alone, e.g. 5.4 or <0.01.") % {"value": value[:40]}
            )
        return value

    def validate_observed_at(self, value: datetime) -> datetime:
        if value > timezone.now() + FUTURE_TOLERANCE:
            raise ValidationError(_("This time is in the future: check the device's clock."))
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("code") and not attrs.get("name"):
            raise ValidationError({"code": [_("Name the test: its LOINC code in “code”, or its name in “name”.")]})
        return attrs


class ReadingsSerializer(serializers.Serializer):
    id = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The request's id: the same id again is not stored twice (default: the readings' own hash).",
    )
    readings = ReadingSerializer(many=True, allow_empty=False)

    def validate_readings(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > settings.DEVICE_MAX_READINGS:
            raise ValidationError(
                _("At most %(count)s readings per request; send the rest in another.")
                % {"count": settings.DEVICE_MAX_READINGS}
            )
        return value


class ObservationOutSerializer(serializers.Serializer):
    """A stored result as the device is told of it."""

    id = serializers.IntegerField(source="pk")
    patient = serializers.CharField(source="record_number")
    matched = serializers.SerializerMethodField(help_text="Whether the record number is a patient of the hospital.")
    test = serializers.CharField(source="test.loinc", default="")
    value = serializers.DecimalField(max_digits=16, decimal_places=6, allow_null=True)
    unit = serializers.CharField()
    flag = serializers.CharField()
    review = serializers.CharField(help_text="Why it waits for a person: patient, analyte or unit; empty if not.")
    observed_at = serializers.DateTimeField()

    def get_matched(self, observation: Observation) -> bool:
        return observation.patient_id is not None


class ProblemSerializer(serializers.Serializer):
    where = serializers.CharField()
    field = serializers.CharField()
    reason = serializers.CharField()


class ReadingsAnswerSerializer(serializers.Serializer):
    message = serializers.IntegerField()
    status = serializers.CharField()
    stored = ObservationOutSerializer(many=True)
    duplicates = serializers.IntegerField(help_text="Readings stored before (sent again).")
    errors = ProblemSerializer(many=True)


EXAMPLE_READINGS = {
    "id": "meter-7-2026-11-28-0001",
    "readings": [
        {
            "id": "c1d9a6b2",
            "patient": "TUL-0001",
            "code": "2345-7",
            "value": "5.4",
            "unit": "mmol/L",
            "observed_at": "2026-11-28T10:00:00+03:00",
        }
    ],
}


def _answer(stored: results.Stored) -> dict[str, Any]:
    return {
        "message": stored.message.pk,
        "status": stored.message.status,
        "stored": ObservationOutSerializer(stored.observations, many=True).data,
        "duplicates": stored.duplicates,
        "errors": [problem.as_json() for problem in stored.problems],
    }


class ReadingsView(DeviceAPIView):
    """POST readings (a glucometer's, an analyser's): `{"readings": [...]}`, a list, or one reading object.

    Each reading names the patient by record number, the test by LOINC `code` (or `name`), the value, the
    unit and when it was taken. They are stored before the answer: 201 with each stored result, its flag and
    whether it waits for review (an unknown record number, test or unit); 400 names each field to correct,
    and then nothing is stored. The same request again (its `id`, else the same readings) stores nothing and
    answers 200 with what the first stored."""

    parser_classes = [parsers.JSONParser]

    @extend_schema(
        operation_id="device_readings",
        request=ReadingsSerializer,
        responses={201: ReadingsAnswerSerializer, 200: ReadingsAnswerSerializer, 400: ReadingsAnswerSerializer},
        examples=[OpenApiExample("A glucose reading", value=EXAMPLE_READINGS, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        device = device_of(request)
        body = request.data
        if isinstance(body, list):
            body = {"readings": body}
        elif isinstance(body, dict) and "readings" not in body and "value" in body:
            body = {"id": body["id"], "readings": [body]} if body.get("id") else {"readings": [body]}
        with timezone.override(ZoneInfo(device.hospital.time_zone)):  # a time without an offset is local
            serializer = ReadingsSerializer(data=body)
            serializer.is_valid(raise_exception=True)
        readings = serializer.validated_data["readings"]
        control_id = serializer.validated_data.get("id") or results.body_digest(readings)
        rows = [
            ResultIn(
                value=reading["value"],
                observed_at=reading["observed_at"],
                code=reading.get("code", ""),
                name=reading.get("name", ""),
                unit=reading.get("unit", ""),
                range=reading.get("range", ""),
                flag=reading.get("flag", ""),
                record_number=reading["patient"],
                where=reading.get("id") or f"reading {number}",
            )
            for number, reading in enumerate(readings, start=1)
        ]
        stored = results.results_receive(
            device=device,
            source=Source.JSON,
            control_id=control_id,
            raw=json.dumps(request.data, ensure_ascii=False, default=str),
            results=rows,
            problems=[],
        )
        if not stored.observations and not stored.duplicates and stored.problems:
            code = status.HTTP_400_BAD_REQUEST  # kept (audited), but nothing in it could be stored
        else:
            code = status.HTTP_201_CREATED if stored.new else status.HTTP_200_OK
        return Response(_answer(stored), status=code)


# FHIR R4.


class FhirJsonParser(parsers.JSONParser):
    media_type = "application/fhir+json"


class FhirObservationView(DeviceAPIView):
    """POST a FHIR R4 Observation, or a Bundle of them (batch, transaction or collection).

    Checked against the FHIR R4 (R4B) model: the patient is `subject.identifier.value` (a record number of
    the device's hospital), the test a LOINC coding of `code`, the value `valueQuantity` (its UCUM `code`,
    else its `unit`), the time `effectiveDateTime`. 201 with the stored Observation's id (a Bundle: an
    OperationOutcome listing what was stored); 400 with an OperationOutcome naming each issue. The same
    resource again (its identifier, else the same content) stores nothing and answers 200."""

    parser_classes = [FhirJsonParser, parsers.JSONParser]

    @extend_schema(
        operation_id="device_fhir_observation",
        request={"application/fhir+json": OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={
            (201, "application/fhir+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the Observation"),
            (200, "application/fhir+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="already stored"),
            (400, "application/fhir+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome"),
        },
        examples=[OpenApiExample("Observation", value=fhir.EXAMPLE_OBSERVATION, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        device = device_of(request)
        try:
            body = request.data
        except ParseError as exc:
            return _fhir(fhir.outcome(fhir.issue(str(exc.detail), code="structure")), status.HTTP_400_BAD_REQUEST)
        try:
            read = fhir.observations_read(body)
        except fhir.FhirRefused as refused:
            return _fhir(refused.outcome, status.HTTP_400_BAD_REQUEST)
        stored = results.results_receive(
            device=device,
            source=Source.FHIR,
            control_id=read.control_id,
            raw=json.dumps(body, ensure_ascii=False),
            results=read.results,
            problems=read.problems,
        )
        if not stored.observations and stored.problems:
            return _fhir(fhir.outcome_of(stored.problems), status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if stored.new and stored.observations else status.HTTP_200_OK
        if read.single and stored.observations:
            observation = stored.observations[0]
            response = _fhir({**read.single, "id": str(observation.pk)}, code)
            response["Location"] = request.build_absolute_uri(f"{request.path}/{observation.pk}")
            return response
        return _fhir(fhir.outcome_of(stored.problems, stored=stored.observations, duplicates=stored.duplicates), code)


def _fhir(body: dict[str, Any], code: int) -> Response:
    return Response(body, status=code, content_type="application/fhir+json")
