"""Who may reach what: every URL pattern, every role, against own, other-hospital and absent objects.

Another hospital's object must be answered exactly like an object that does not
exist. A URL pattern added to the project without a row here fails
`test_every_url_pattern_is_in_the_matrix`.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from consultations.models import Call, Conclusion, Consultation, Message
from devices.models import Device
from devices.services import device_token_issue
from diagnostics.labs import ResultIn, lab_message_open, lab_results_store
from diagnostics.models import AIReading, Recording, Upload
from hospitals.models import Hospital, Staff, User
from patients.models import Consent, Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, study_make, verified_login
from tests.diagnostics.test_ai import model_make
from tests.diagnostics.test_lab_alerts import troponin_store

ROLES = ("anonymous", "clinician", "specialist", "hospital_admin", "platform_admin")
LOGIN = 302  # anonymous users are sent to the sign-in page
HOSPITAL_ROLES = ("clinician", "specialist", "hospital_admin")


def _everyone(status: int | tuple[int, ...], anonymous: int | tuple[int, ...] = LOGIN) -> dict[str, object]:
    return {"anonymous": anonymous, **dict.fromkeys(ROLES[1:], status)}


@dataclass(frozen=True)
class Route:
    path: str  # with {pk} where the object id goes
    expected: dict[str, object]  # role -> status for an object of the role's own hospital
    method: str = "GET"
    obj: str | None = None  # "hospital" or "staff"
    data: dict[str, str] = field(default_factory=dict)


ADMINS_ONLY = {"anonymous": LOGIN, "clinician": 403, "specialist": 403, "hospital_admin": 200, "platform_admin": 200}
STAFF_OBJECT = {"anonymous": LOGIN, "clinician": 404, "specialist": 404, "hospital_admin": 200, "platform_admin": 200}
STAFF_ACTION = {**STAFF_OBJECT, "hospital_admin": 302, "platform_admin": 302}

CLINICAL_ONLY = {"anonymous": LOGIN, "clinician": 200, "specialist": 200, "hospital_admin": 403, "platform_admin": 403}
PATIENT_OBJECT = {"anonymous": LOGIN, "clinician": 200, "specialist": 200, "hospital_admin": 404, "platform_admin": 404}

API_EVERYONE = _everyone(200, anonymous=401)
API_OBJECT = {**PATIENT_OBJECT, "anonymous": 401}

MATRIX: dict[str, Route] = {
    "": Route("/", _everyone(200)),
    "healthz": Route("/healthz", _everyone((200, 503), anonymous=(200, 503))),
    "i18n/setlang/": Route("/i18n/setlang/", _everyone(302, anonymous=302), "POST", data={"language": "en"}),
    "accounts/login/": Route("/accounts/login/", _everyone(302, anonymous=200)),
    "accounts/logout/": Route("/accounts/logout/", _everyone(302, anonymous=302), "POST"),
    "accounts/password/": Route("/accounts/password/", _everyone(200)),
    # Verified users are sent on; a clinician may enrol an authenticator voluntarily.
    "accounts/second-factor/setup/": Route("/accounts/second-factor/setup/", {**_everyone(302), "clinician": 200}),
    "accounts/second-factor/verify/": Route("/accounts/second-factor/verify/", {**_everyone(302), "clinician": 200}),
    "hospitals/": Route("/hospitals/", _everyone(200)),
    "hospitals/<int:pk>/": Route("/hospitals/{pk}/", _everyone(200), obj="hospital"),
    "staff/": Route("/staff/", ADMINS_ONLY),
    "staff/new/": Route("/staff/new/", ADMINS_ONLY),
    "staff/<int:pk>/": Route("/staff/{pk}/", STAFF_OBJECT, obj="staff"),
    "staff/<int:pk>/deactivate/": Route("/staff/{pk}/deactivate/", STAFF_ACTION, "POST", "staff"),
    "staff/<int:pk>/activate/": Route("/staff/{pk}/activate/", STAFF_ACTION, "POST", "staff"),
    "staff/<int:pk>/reset-second-factor/": Route("/staff/{pk}/reset-second-factor/", STAFF_ACTION, "POST", "staff"),
    "audit/": Route("/audit/", ADMINS_ONLY),
    # Devices (devices/views.py): their hospital's admins, like staff; the token page shows the new token once.
    "devices/": Route("/devices/", ADMINS_ONLY),
    "devices/new/": Route("/devices/new/", ADMINS_ONLY),
    "devices/<int:pk>/": Route("/devices/{pk}/", STAFF_OBJECT, obj="device"),
    "devices/<int:pk>/tokens/": Route(
        "/devices/{pk}/tokens/", {**STAFF_OBJECT, "hospital_admin": 201, "platform_admin": 201}, "POST", "device"
    ),
    "devices/<int:pk>/tokens/<int:token_pk>/revoke/": Route(
        "/devices/{pk}/tokens/{sub}/revoke/", STAFF_ACTION, "POST", "device_token"
    ),
    "devices/<int:pk>/deactivate/": Route("/devices/{pk}/deactivate/", STAFF_ACTION, "POST", "device"),
    "devices/<int:pk>/activate/": Route("/devices/{pk}/activate/", STAFF_ACTION, "POST", "device"),
    # A device's own API: a device token only (tests/devices/test_device_api.py); no person gets in.
    "api/v1/device/heartbeat": Route("/api/v1/device/heartbeat", _everyone(401, anonymous=401), "POST"),
    "api/v1/device/hl7": Route("/api/v1/device/hl7", _everyone(401, anonymous=401), "POST"),
    "api/v1/device/readings": Route("/api/v1/device/readings", _everyone(401, anonymous=401), "POST"),
    "api/v1/device/fhir/Observation": Route("/api/v1/device/fhir/Observation", _everyone(401, anonymous=401), "POST"),
    "notifications/": Route("/notifications/", _everyone(200)),  # one's own, whoever one is
    "notifications/read/": Route("/notifications/read/", _everyone(302), "POST"),
    # Patients: their hospital's clinicians and specialists; admins manage people, not patients.
    "patients/": Route("/patients/", CLINICAL_ONLY),
    "patients/new/": Route("/patients/new/", CLINICAL_ONLY),
    "patients/<int:pk>/": Route("/patients/{pk}/", PATIENT_OBJECT, obj="patient"),
    "patients/<int:pk>/edit/": Route("/patients/{pk}/edit/", PATIENT_OBJECT, obj="patient"),
    "consultations/": Route("/consultations/", CLINICAL_ONLY),
    "consultations/new/": Route("/consultations/new/", CLINICAL_ONLY),
    "consultations/<int:pk>/": Route("/consultations/{pk}/", PATIENT_OBJECT, obj="consultation"),
    "consultations/<int:pk>/messages/": Route(
        "/consultations/{pk}/messages/",
        {**PATIENT_OBJECT, "clinician": 302, "specialist": 302},
        "POST",
        "consultation",
        {"body": "ECG attached tomorrow"},
    ),
    # An empty conclusion form: refused with reasons (400) to both sides that may reach the page.
    "consultations/<int:pk>/conclusion/": Route(
        "/consultations/{pk}/conclusion/",
        {**PATIENT_OBJECT, "clinician": 400, "specialist": 400},
        "POST",
        "consultation",
    ),
    # "accept": the consulted specialist may (302); the requesting clinician is told it is not theirs (409).
    "consultations/<int:pk>/conclusion/<int:version>.pdf": Route(
        "/consultations/{pk}/conclusion/1.pdf", PATIENT_OBJECT, obj="concluded"
    ),
    "consultations/<int:pk>/messages/<int:message_id>/attachment/": Route(
        "/consultations/{pk}/messages/{sub}/attachment/", PATIENT_OBJECT, obj="attachment"
    ),
    "patients/<int:pk>/consent/<int:consent_id>/scan/": Route(
        "/patients/{pk}/consent/{sub}/scan/", PATIENT_OBJECT, obj="consent_scan"
    ),
    "consultations/<int:pk>/<slug:move>/": Route(
        "/consultations/{pk}/accept/", {**PATIENT_OBJECT, "clinician": 409, "specialist": 302}, "POST", "consultation"
    ),
    "patients/<int:pk>/consent/": Route(
        "/patients/{pk}/consent/",
        {**PATIENT_OBJECT, "clinician": 302, "specialist": 302},
        "POST",
        "patient",
        {"telemedicine": "on", "data_sharing": "on"},
    ),
    # Imaging on the patient and consultation pages: whoever may see the patient (diagnostics/views.py).
    "imaging/patients/<int:pk>/": Route("/imaging/patients/{pk}/", PATIENT_OBJECT, obj="patient"),
    "imaging/patients/<int:pk>/uploads/": Route(
        "/imaging/patients/{pk}/uploads/",
        {**PATIENT_OBJECT, "clinician": 201, "specialist": 201},
        "POST",
        "patient",
        {"name": "IM0001.dcm", "size": "1000", "key": "IM0001.dcm|1000|1"},
    ),
    "imaging/uploads/<int:pk>/": Route("/imaging/uploads/{pk}/", PATIENT_OBJECT, obj="upload"),  # its sender's
    "imaging/instances/<int:pk>/thumbnail.jpg": Route(
        "/imaging/instances/{pk}/thumbnail.jpg", PATIENT_OBJECT, obj="instance"
    ),
    # "Try again" on an image that is not failed: told so, back to the page.
    "imaging/instances/<int:pk>/retry/": Route(
        "/imaging/instances/{pk}/retry/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "instance"
    ),
    # Recordings on the patient page: whoever may see the patient (diagnostics/recording_views.py).
    "recordings/patients/<int:pk>/": Route("/recordings/patients/{pk}/", PATIENT_OBJECT, obj="patient"),
    # No file chosen: the form again, naming the field (400).
    "recordings/patients/<int:pk>/upload/": Route(
        "/recordings/patients/{pk}/upload/",
        {**PATIENT_OBJECT, "clinician": 400, "specialist": 400},
        "POST",
        "patient",
        {"kind": "heart"},
    ),
    "recordings/<int:pk>/file": Route("/recordings/{pk}/file", PATIENT_OBJECT, obj="recording"),
    "recordings/<int:pk>/<slug:picture>.png": Route(
        "/recordings/{pk}/spectrogram.png", PATIENT_OBJECT, obj="recording"
    ),
    # "Try again" on a recording that is not failed: told so, back to the page.
    "recordings/<int:pk>/retry/": Route(
        "/recordings/{pk}/retry/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "recording"
    ),
    # Video calls: the consultation's two sides (the specialist who took it); the call rings from the other side.
    "consultations/<int:pk>/call/": Route("/consultations/{pk}/call/", PATIENT_OBJECT, obj="call"),
    "consultations/<int:pk>/call/decline/": Route(
        "/consultations/{pk}/call/decline/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "call"
    ),
    "consultations/<int:pk>/call/guests/": Route(
        "/consultations/{pk}/call/guests/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "call"
    ),
    "consultations/<int:pk>/imaging/": Route("/consultations/{pk}/imaging/", PATIENT_OBJECT, obj="consultation"),
    # No study named: told so, back to the consultation.
    "consultations/<int:pk>/imaging/attach/": Route(
        "/consultations/{pk}/imaging/attach/",
        {**PATIENT_OBJECT, "clinician": 302, "specialist": 302},
        "POST",
        "consultation",
    ),
    # Lab results (diagnostics/lab_views.py): the card for whoever sees the patient; entering and importing for
    # the clinical staff of the patient's own hospital (an empty form: refused with reasons); the review queue
    # and its results are the hospital's own clinical staff's.
    "labs/patients/<int:pk>/": Route("/labs/patients/{pk}/", PATIENT_OBJECT, obj="patient"),
    "labs/patients/<int:pk>/new/": Route(
        "/labs/patients/{pk}/new/", {**PATIENT_OBJECT, "clinician": 400, "specialist": 400}, "POST", "patient"
    ),
    "labs/patients/<int:pk>/import/": Route("/labs/patients/{pk}/import/", PATIENT_OBJECT, obj="patient"),
    "labs/import/": Route("/labs/import/", CLINICAL_ONLY),
    "labs/import/sample.csv": Route("/labs/import/sample.csv", _everyone(200)),  # the format, no patient data
    "labs/review/": Route("/labs/review/", CLINICAL_ONLY),
    "labs/review/count/": Route("/labs/review/count/", CLINICAL_ONLY),
    # No patient chosen / a result without a patient cannot be kept as sent: told so, back to the queue.
    "labs/review/<int:pk>/assign/": Route(
        "/labs/review/{pk}/assign/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "lab_review"
    ),
    "labs/review/<int:pk>/keep/": Route(
        "/labs/review/{pk}/keep/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "lab_review"
    ),
    # Critical result alerts (diagnostics/alert_views.py): the banner is the clinicians' and specialists'; an
    # alert is acknowledged by whoever may see its patient (a Tula patient under consultation with Moscow).
    "labs/alerts/": Route("/labs/alerts/", CLINICAL_ONLY),
    "labs/alerts/<int:pk>/acknowledge/": Route(
        "/labs/alerts/{pk}/acknowledge/", {**PATIENT_OBJECT, "clinician": 302, "specialist": 302}, "POST", "lab_alert"
    ),
    # The API: JSON, 403 without credentials; the same scoping as the pages (admins see empty lists).
    "api/v1/^patients/$": Route("/api/v1/patients/", API_EVERYONE),
    "api/v1/^patients/(?P<pk>[^/.]+)/$": Route("/api/v1/patients/{pk}/", API_OBJECT, obj="patient"),
    "api/v1/^consultations/$": Route("/api/v1/consultations/", API_EVERYONE),
    "api/v1/^consultations/(?P<pk>[^/.]+)/$": Route("/api/v1/consultations/{pk}/", API_OBJECT, obj="consultation"),
    "api/v1/^consultations/(?P<pk>[^/.]+)/messages/$": Route(
        "/api/v1/consultations/{pk}/messages/", API_OBJECT, obj="consultation"
    ),
    "api/v1/^consultations/(?P<pk>[^/.]+)/conclusions/$": Route(
        "/api/v1/consultations/{pk}/conclusions/", API_OBJECT, obj="concluded"
    ),
    "api/v1/^consultations/(?P<pk>[^/.]+)/moves/$": Route(
        "/api/v1/consultations/{pk}/moves/",
        {**API_OBJECT, "clinician": 409, "specialist": 200},
        "POST",
        "consultation",
        {"move": "accept"},
    ),
    # A token is made from a signed-in browser session only: no credentials to challenge for, so 403.
    "api/v1/tokens/": Route("/api/v1/tokens/", _everyone(200, anonymous=403), "POST"),
    # Revoking takes the token itself as credentials: a browser session is not enough.
    "api/v1/tokens/revoke/": Route("/api/v1/tokens/revoke/", _everyone(401, anonymous=401), "POST"),
    "api/schema/": Route("/api/schema/", API_EVERYONE),
    "api/docs/": Route("/api/docs/", API_EVERYONE),
    # Django admin: platform admins only; everyone else goes to the one sign-in page.
    "admin/login/": Route("/admin/login/", _everyone(302, anonymous=302)),
    "admin/": Route("/admin/", {**_everyone(302), "platform_admin": 200}),
    # FHIR R4 (interop/): the API's rules; the CapabilityStatement is public, others' resources like absent ones.
    "fhir/metadata": Route("/fhir/metadata", _everyone(200, anonymous=200)),
    "fhir/<str:type_name>": Route("/fhir/Patient", API_EVERYONE),
    "fhir/<str:type_name>/<str:pk>": Route("/fhir/Patient/{pk}", API_OBJECT, obj="patient"),
    # DICOMweb (diagnostics/dicomweb/): the API's rules; objects named by DICOM UIDs, others' like absent ones.
    "dicom-web/studies": Route("/dicom-web/studies", API_EVERYONE),
    "dicom-web/series": Route("/dicom-web/series", API_EVERYONE),
    "dicom-web/instances": Route("/dicom-web/instances", API_EVERYONE),
    "dicom-web/studies/<str:study>": Route("/dicom-web/studies/{pk}", API_OBJECT, obj="study_uid"),
    "dicom-web/studies/<str:study>/metadata": Route("/dicom-web/studies/{pk}/metadata", API_OBJECT, obj="study_uid"),
    "dicom-web/studies/<str:study>/series": Route("/dicom-web/studies/{pk}/series", API_OBJECT, obj="study_uid"),
    "dicom-web/studies/<str:study>/instances": Route("/dicom-web/studies/{pk}/instances", API_OBJECT, obj="study_uid"),
    "dicom-web/studies/<str:study>/series/<str:series>": Route(
        "/dicom-web/studies/{pk}/series/{sub}", API_OBJECT, obj="series_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/metadata": Route(
        "/dicom-web/studies/{pk}/series/{sub}/metadata", API_OBJECT, obj="series_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances", API_OBJECT, obj="series_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances/<str:instance>": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances/{sop}", API_OBJECT, obj="instance_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances/<str:instance>/metadata": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances/{sop}/metadata", API_OBJECT, obj="instance_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances/<str:instance>/rendered": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances/{sop}/rendered", API_OBJECT, obj="instance_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frames>": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances/{sop}/frames/1", API_OBJECT, obj="instance_uid"
    ),
    "dicom-web/studies/<str:study>/series/<str:series>/instances/<str:instance>/frames/<str:frames>/rendered": Route(
        "/dicom-web/studies/{pk}/series/{sub}/instances/{sop}/frames/1/rendered", API_OBJECT, obj="instance_uid"
    ),
    # The image viewer and the de-identified export: whoever may see the patient (diagnostics/viewer.py).
    "imaging/studies/<int:pk>/viewer/": Route("/imaging/studies/{pk}/viewer/", PATIENT_OBJECT, obj="study"),
    "imaging/studies/<int:pk>/viewer/export/": Route(
        "/imaging/studies/{pk}/viewer/export/", PATIENT_OBJECT, "POST", "study"
    ),
    "imaging/series/<int:pk>/viewer/": Route("/imaging/series/{pk}/viewer/", PATIENT_OBJECT, obj="series"),
    "imaging/series/<int:pk>/viewer/thumbnail.jpg": Route(
        "/imaging/series/{pk}/viewer/thumbnail.jpg", PATIENT_OBJECT, obj="series"
    ),
    "imaging/instances/<int:pk>/viewer/frames/<int:frame>.jpg": Route(
        "/imaging/instances/{pk}/viewer/frames/1.jpg", PATIENT_OBJECT, obj="instance"
    ),
    "imaging/instances/<int:pk>/viewer/frames/<int:frame>.bin": Route(
        "/imaging/instances/{pk}/viewer/frames/1.bin", PATIENT_OBJECT, obj="instance"
    ),
    # AI readings (diagnostics/ai_views.py): specialists decide on findings; whoever may see the patient sees
    # the heat map; platform admins, who keep the model registry, export the decisions.
    "imaging/ai/findings/<int:pk>/decision/": Route(
        "/imaging/ai/findings/{pk}/decision/",
        {**PATIENT_OBJECT, "clinician": 403, "specialist": 302},
        "POST",
        "ai_finding",
        {"decision": "confirmed"},
    ),
    "imaging/ai/readings/<int:pk>/heatmap.png": Route(
        "/imaging/ai/readings/{pk}/heatmap.png", PATIENT_OBJECT, obj="ai_reading"
    ),
    "imaging/ai/models/<int:pk>/decisions.csv": Route(
        "/imaging/ai/models/{pk}/decisions.csv",
        {"anonymous": LOGIN, "clinician": 403, "specialist": 403, "hospital_admin": 403, "platform_admin": 200},
        obj="ai_model",
    ),
}


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and pattern.namespace != "admin":
            routes += _routes(pattern.url_patterns, route)
        else:
            routes.append(route)  # the admin site is one entry: its own pages check is_staff
    return routes


def test_every_url_pattern_is_in_the_matrix() -> None:
    assert sorted(_routes(get_resolver().url_patterns)) == sorted(MATRIX)


@pytest.fixture
def actors(network_a: Network, platform_admin: User) -> dict[str, User | None]:
    home = {"clinician": network_a.regional, "specialist": network_a.central, "hospital_admin": network_a.regional}
    users: dict[str, User | None] = {"anonymous": None, "platform_admin": platform_admin}
    for role, hospital in home.items():
        users[role] = StaffFactory(role=role, hospital=hospital).user
    return users


def _object_ids(kind: str | None, actor: User | None, network_a: Network, network_b: Network) -> dict[str, int]:
    """Ids of an object of the actor's own hospital, of a hospital outside its network, and of nothing."""
    own_hospital = actor.staff.hospital if actor is not None and hasattr(actor, "staff") else network_a.regional
    if kind == "hospital":
        return {"own": own_hospital.pk, "other": network_b.regional.pk, "absent": 987654}
    if kind == "attachment":
        own_message = _with_attachment(consultation_make(PatientFactory(hospital=network_a.regional)))
        other_message = _with_attachment(consultation_make(PatientFactory(hospital=network_b.regional)))
        return {
            "own": (own_message.consultation_id, own_message.pk),
            "other": (other_message.consultation_id, other_message.pk),
            "absent": (987654, 987654),
        }
    if kind == "consent_scan":
        own_consent = _with_scan(PatientFactory(hospital=own_hospital))
        other_consent = _with_scan(PatientFactory(hospital=network_b.regional))
        return {
            "own": (own_consent.patient_id, own_consent.pk),
            "other": (other_consent.patient_id, other_consent.pk),
            "absent": (987654, 987654),
        }
    if kind == "concluded":
        own_concluded = _concluded(PatientFactory(hospital=network_a.regional))
        other_concluded = _concluded(PatientFactory(hospital=network_b.regional))
        return {"own": own_concluded.pk, "other": other_concluded.pk, "absent": 987654}
    if kind == "call":
        # An accepted request from Tula to Moscow, taken by the specialist (the actor, if one), ringing from
        # the actor's other side.
        ids = {}
        for side, network in (("own", network_a), ("other", network_b)):
            acting = actor if side == "own" and actor is not None and hasattr(actor, "staff") else None
            specialist = acting if acting is not None and acting.staff.role == Staff.Role.SPECIALIST else None
            specialist = specialist or StaffFactory(hospital=network.central, role=Staff.Role.SPECIALIST).user
            consultation = consultation_make(
                PatientFactory(hospital=network.regional), state="accepted", assigned_to=specialist
            )
            caller = consultation.requested_by if acting is specialist else specialist
            Call.objects.create(
                consultation=consultation, started_by=caller, ring_until=timezone.now() + timedelta(minutes=1)
            )
            ids[side] = consultation.pk
        return {**ids, "absent": 987654}
    if kind == "consultation":
        # The actor's side of a consultation: a request from Tula (clinician, admin) to Moscow (specialist).
        own_request = consultation_make(PatientFactory(hospital=network_a.regional))
        other_request = consultation_make(PatientFactory(hospital=network_b.regional))
        return {"own": own_request.pk, "other": other_request.pk, "absent": 987654}
    if kind in ("study", "series", "instance"):
        # An imaging study of a Tula patient under consultation with Moscow, so both sides may see it.
        own_study = study_make(consultation_make(PatientFactory(hospital=network_a.regional)).patient)
        other_study = study_make(consultation_make(PatientFactory(hospital=network_b.regional)).patient)
        if kind == "study":
            return {"own": own_study.pk, "other": other_study.pk, "absent": 987654}
        own_series, other_series = own_study.series.get(), other_study.series.get()
        if kind == "series":
            return {"own": own_series.pk, "other": other_series.pk, "absent": 987654}
        return {"own": own_series.instances.get().pk, "other": other_series.instances.get().pk, "absent": 987654}
    if kind in ("study_uid", "series_uid", "instance_uid"):
        # The same as above, named as DICOMweb paths name them: (study, series, SOP instance) UIDs.
        depth = ("study_uid", "series_uid", "instance_uid").index(kind) + 1
        uids = {}
        for side, hospital in (("own", network_a.regional), ("other", network_b.regional)):
            study = study_make(consultation_make(PatientFactory(hospital=hospital)).patient)
            instance = study.series.get().instances.get()
            uids[side] = (study.study_instance_uid, instance.series.series_instance_uid, instance.sop_instance_uid)
        uids["absent"] = ("1.2.3.987654", "1.2.3.987655", "1.2.3.987656")
        return {side: values[0] if depth == 1 else values[:depth] for side, values in uids.items()}
    if kind in ("ai_finding", "ai_reading", "ai_model"):
        # A chest X-ray of a Tula patient under consultation with Moscow, read by a model enabled for Tula.
        readings = {
            side: _ai_reading_of(network.regional) for side, network in (("own", network_a), ("other", network_b))
        }
        if kind == "ai_model":
            return {side: reading.model_id for side, reading in readings.items()} | {"absent": 987654}
        if kind == "ai_reading":
            return {side: reading.pk for side, reading in readings.items()} | {"absent": 987654}
        return {side: reading.findings.first().pk for side, reading in readings.items()} | {"absent": 987654}
    if kind == "recording":
        # A heart sound of a Tula patient under consultation with Moscow, processed (so its pictures exist).
        own_recording = _recording_of(consultation_make(PatientFactory(hospital=network_a.regional)).patient)
        other_recording = _recording_of(PatientFactory(hospital=network_b.regional))
        return {"own": own_recording.pk, "other": other_recording.pk, "absent": 987654}
    if kind == "lab_alert":
        own_alert = troponin_store(consultation_make(PatientFactory(hospital=network_a.regional)).patient)
        other_alert = troponin_store(consultation_make(PatientFactory(hospital=network_b.regional)).patient)
        return {"own": own_alert.pk, "other": other_alert.pk, "absent": 987654}
    if kind == "upload":
        # The actor's own upload, for a Tula patient under consultation with Moscow (both sides see the patient).
        sender = actor or StaffFactory(hospital=network_a.regional).user
        own_upload = _upload_of(sender, consultation_make(PatientFactory(hospital=network_a.regional)).patient)
        other_upload = _upload_of(
            StaffFactory(hospital=network_b.regional).user, PatientFactory(hospital=network_b.regional)
        )
        return {"own": own_upload.pk, "other": other_upload.pk, "absent": 987654}
    if kind == "lab_review":
        # A lab result the hospital received for a record number that matches none of its patients.
        return {"own": _waiting_result(own_hospital), "other": _waiting_result(network_b.regional), "absent": 987654}
    if kind == "patient":
        own_patient = PatientFactory(hospital=own_hospital)
        return {"own": own_patient.pk, "other": PatientFactory(hospital=network_b.regional).pk, "absent": 987654}
    if kind in ("device", "device_token"):
        own_device = Device.objects.create(hospital=own_hospital, name="Glucometer", kind=Device.Kind.GLUCOSE_METER)
        other_device = Device.objects.create(hospital=network_b.regional, name="Glucometer", kind="glucose_meter")
        if kind == "device":
            return {"own": own_device.pk, "other": other_device.pk, "absent": 987654}
        issuer = StaffFactory(hospital=network_a.regional).user
        own_token, _ = device_token_issue(device=own_device, by=issuer)
        other_token, _ = device_token_issue(device=other_device, by=issuer)
        return {
            "own": (own_device.pk, own_token.pk),
            "other": (other_device.pk, other_token.pk),
            "absent": (987654, 987654),
        }
    if kind == "staff":
        own = StaffFactory(hospital=own_hospital, role=Staff.Role.CLINICIAN)
        other = StaffFactory(hospital=network_b.regional, role=Staff.Role.CLINICIAN)
        return {"own": own.pk, "other": other.pk, "absent": 987654}
    return {}


def _recording_of(patient: Patient) -> Recording:
    """A second of a 440 Hz tone as a 16-bit WAV, stored for the patient and processed (inline)."""
    import io
    import math
    import struct
    import wave

    from django.test import TestCase

    from diagnostics.recordings import recording_store

    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        tone = [int(8000 * math.sin(2 * math.pi * 440 * n / 8000 + patient.pk)) for n in range(8000)]
        sound.writeframes(struct.pack(f"<{len(tone)}h", *tone))
    with TestCase.captureOnCommitCallbacks(execute=True):
        stored = recording_store(
            data=out.getvalue(), filename="apex.wav", kind="heart", patient=patient, hospital_id=patient.hospital_id
        )
    return stored.recording


def _ai_reading_of(hospital: Hospital) -> AIReading:
    model = model_make(hospital, name=f"Chest brightness for {hospital.pk}")
    patient = consultation_make(PatientFactory(hospital=hospital)).patient
    return AIReading.objects.get(instance=study_make(patient, "RG1_UNCR.dcm").series.get().instances.get(), model=model)


def _waiting_result(hospital: Hospital) -> int:
    message, _new = lab_message_open(
        hospital_id=hospital.pk, source="hl7", sender="device:1", control_id=f"MSG-{hospital.pk}", raw="MSH|..."
    )
    result = ResultIn(
        value="5.1", observed_at=timezone.now() - timedelta(hours=1), code="GLU", unit="mmol/L", record_number="NOBODY"
    )
    return lab_results_store(message=message, results=[result]).stored[0].pk


def _upload_of(sender: User, patient: Patient) -> Upload:
    return Upload.objects.create(owner=sender, patient=patient, name="IM0001.dcm", key="k", size=1000)


def _with_attachment(consultation: Consultation) -> Message:
    return Message.objects.create(
        consultation=consultation,
        author=consultation.requested_by,
        body="ECG",
        attachment=SimpleUploadedFile("ecg.pdf", b"%PDF-1.7 ecg"),
    )


def _with_scan(patient: Patient) -> Consent:
    return Consent.objects.create(
        patient=patient,
        telemedicine=True,
        data_sharing=True,
        recorded_by=StaffFactory(hospital=patient.hospital).user,
        form_scan=SimpleUploadedFile("consent.pdf", b"%PDF-1.7 consent"),
    )


def _concluded(patient: Patient) -> Consultation:
    specialist = StaffFactory(hospital=patient.hospital.central_hospital, role=Staff.Role.SPECIALIST).user
    consultation = consultation_make(patient, state="concluded", assigned_to=specialist)
    Conclusion.objects.create(
        consultation=consultation,
        version=1,
        findings="ST elevation",
        diagnosis_id="I21.1",
        diagnosis_text="Inferior STEMI",
        recommendation="transfer",
        plan="Transfer today",
        signed_by=specialist,
    )
    return consultation


def _request(client: Client, route: Route, pk: int | str | tuple[int | str, ...] | None = None) -> tuple[int, str]:
    """Request the route for an object id (or an (object, sub-object[, sub-sub-object]) tuple); the answer with
    the ids blanked."""
    ids = pk if isinstance(pk, tuple) else (pk, None)
    path = route.path.format(**dict(zip(("pk", "sub", "sop"), ids, strict=False)))
    response = client.post(path, route.data) if route.method == "POST" else client.get(path)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    body = content.decode(errors="replace") + response.get("Location", "")
    body = re.sub(r"[A-Za-z0-9]{64}", "<csrf>", body)  # tokens differ per request
    for value in ids:
        if value is not None:
            body = body.replace(f"/{value}/", "/<id>/")  # the path echoes the ids the client sent, nothing more
    return response.status_code, body


@pytest.mark.usefixtures("lab_reference")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_access(name: str, role: str, actors: dict[str, User | None], network_a: Network, network_b: Network) -> None:
    route = MATRIX[name]
    actor = actors[role]

    def client() -> Client:
        return Client() if actor is None else verified_login(Client(), actor)

    expected = route.expected[role]
    if route.obj is None:
        status, _ = _request(client(), route)
        assert status in (expected if isinstance(expected, tuple) else (expected,))
        return

    ids = _object_ids(route.obj, actor, network_a, network_b)
    own_status, _ = _request(client(), route, ids["own"])
    other_status, other_body = _request(client(), route, ids["other"])
    absent_status, absent_body = _request(client(), route, ids["absent"])
    assert own_status == expected
    assert absent_status in (404, LOGIN, 401, 403)
    if role == "platform_admin":
        assert other_status == own_status  # platform admins see every hospital
    else:
        assert (other_status, other_body) == (absent_status, absent_body)


def test_network_neighbours_are_visible_but_other_networks_are_not(
    network_a: Network, network_b: Network, login
) -> None:  # type: ignore[no-untyped-def]
    yaroslavl = Hospital.objects.create(
        name="Yaroslavl Regional Hospital", kind=Hospital.Kind.REGIONAL, region="Y", central_hospital=network_a.central
    )
    clinician = StaffFactory(hospital=network_a.regional).user
    page = login(clinician).get("/hospitals/").content.decode()
    assert network_a.central.name in page and yaroslavl.name in page and network_a.regional.name in page
    assert network_b.central.name not in page and network_b.regional.name not in page


# WebSocket routes: which roles' sockets are accepted; for a route of an object, on their own side's object,
# while the same socket on another network's object, or on none, is refused.
WS_MATRIX: dict[str, dict[str, bool]] = {
    "ws/notifications/": {
        "anonymous": False,
        "clinician": True,
        "specialist": True,
        "hospital_admin": True,
        "platform_admin": True,
    },
    # A consultation's call room: its clinician's side and the specialist who took it; no admin.
    "ws/consultations/<int:pk>/call/": {
        "anonymous": False,
        "clinician": True,
        "specialist": True,
        "hospital_admin": False,
        "platform_admin": False,
    },
}


def test_every_websocket_route_is_in_the_matrix() -> None:
    from mhospital.routing import websocket_urlpatterns

    assert sorted(str(p.pattern) for p in websocket_urlpatterns) == sorted(WS_MATRIX)


def _ws_paths(route: str, actor: User | None, network_a: Network, network_b: Network) -> dict[str, str]:
    """The route's path on the actor's own object, another network's and none; one path if it takes no id."""
    if "<int:pk>" not in route:
        return {"own": f"/{route}"}
    specialist = (
        actor if actor is not None and getattr(actor, "staff", None) and actor.staff.role == "specialist" else None
    )
    own = consultation_make(
        PatientFactory(hospital=network_a.regional),
        state="accepted",
        assigned_to=specialist or StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user,
    )
    other = consultation_make(
        PatientFactory(hospital=network_b.regional),
        state="accepted",
        assigned_to=StaffFactory(hospital=network_b.central, role=Staff.Role.SPECIALIST).user,
    )
    return {
        side: "/" + route.replace("<int:pk>", str(pk))
        for side, pk in (("own", own.pk), ("other", other.pk), ("absent", 987654))
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(WS_MATRIX))
def test_websocket_access(route: str, role: str, network_a: Network, network_b: Network, platform_admin: User) -> None:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.conf import settings

    from mhospital.asgi import application

    home = {"clinician": network_a.regional, "specialist": network_a.central, "hospital_admin": network_a.regional}
    actor = platform_admin if role == "platform_admin" else None
    if role in home:
        actor = StaffFactory(role=role, hospital=home[role]).user
    headers = [(b"origin", b"http://testserver")]
    if actor is not None:
        client = verified_login(Client(), actor)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()))

    async def connect(path: str) -> bool:
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect()
        await socket.disconnect()
        return connected

    paths = _ws_paths(route, actor, network_a, network_b)
    assert async_to_sync(connect)(paths["own"]) is WS_MATRIX[route][role]
    for side in ("other", "absent"):
        if side in paths:
            assert async_to_sync(connect)(paths[side]) is False, side
