"""Critical results reach both sides live, stay on every page of a clinician or specialist until someone on
that side acknowledges them, and the acknowledgement is audited."""

import datetime
import json
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from diagnostics.labs import ResultIn, lab_message_open, lab_results_store
from diagnostics.models import LabAlert, LabAlertAck
from hospitals.audit import Action, Outcome
from hospitals.events import hospital_group
from hospitals.models import AuditEntry, Hospital, Staff, User
from patients.models import Patient
from tests.conftest import (
    REQUIRE_SERVICES,
    Network,
    PatientFactory,
    StaffFactory,
    UserFactory,
    consultation_make,
    need,
    verified_login,
)

pytestmark = [pytest.mark.usefixtures("lab_reference")]

ALERTS = "/labs/alerts/"


def _ack_url(alert: LabAlert | int) -> str:
    return f"/labs/alerts/{getattr(alert, 'pk', alert)}/acknowledge/"


def troponin_store(patient: Patient, *, value: str = "0.45", control_id: str = "") -> LabAlert:
    """A conventional troponin I from the patient's hospital's analyser, as a device posts it: 0.45 ng/mL is
    450 ng/L, far above the myocardial-infarction cut-off."""
    message, _new = lab_message_open(
        hospital_id=patient.hospital_id,
        source="json",
        sender="device:7",
        control_id=control_id or f"TNI-{patient.pk}-{value}",
        raw=json.dumps({"code": "TNI", "value": value, "unit": "ng/mL"}),
    )
    taken = timezone.now() - datetime.timedelta(minutes=20)
    result = ResultIn(value=value, code="TNI", unit="ng/mL", record_number=patient.record_number, observed_at=taken)
    (observation,) = lab_results_store(message=message, results=[result]).stored
    return LabAlert.objects.get(observation=observation)


def _staff(hospital: Hospital, role: str = Staff.Role.CLINICIAN) -> User:
    return StaffFactory(hospital=hospital, role=role).user


def _alert_ids(client: Client, path: str = ALERTS) -> set[int]:
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    return {int(part.split('"', 1)[0]) for part in page.split('data-alert="')[1:]}


# Live, over the notification socket of every page.


def troponin_store_committed(patient: Patient) -> tuple[LabAlert, float]:
    """The alert and the moment its result was committed, the issue's "accepted message": the second is counted
    from there, with the publishing in it, and without the analyser's post and the database writes before it,
    which a shared machine can stretch past a second on their own."""
    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.monotonic()))  # runs before the store's own
        alert = troponin_store(patient)
    return alert, committed[0]


@pytest.mark.django_db(transaction=True)
def test_a_critical_troponin_from_a_device_reaches_the_consulted_specialists_socket_within_a_second(
    network_a: Network, network_b: Network
) -> None:
    """Through the real ASGI application (session cookie, origin check, consumer) and the configured channel
    layer: Redis where REDIS_URL is set (CI, production, where it crosses processes), else in memory."""
    need("Redis (REDIS_URL)", bool(settings.REDIS_URL) or not REQUIRE_SERVICES)
    if settings.REDIS_URL:
        from channels.layers import InMemoryChannelLayer

        assert not isinstance(get_channel_layer(), InMemoryChannelLayer)
    from mhospital.asgi import application

    patient = PatientFactory(hospital=network_a.regional)
    consultation_make(patient, state="accepted")
    specialist = verified_login(Client(), _staff(network_a.central, Staff.Role.SPECIALIST))
    clinician = verified_login(Client(), _staff(network_a.regional))
    stranger = verified_login(Client(), _staff(network_b.regional))

    def socket(client: Client) -> WebsocketCommunicator:
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()
        return WebsocketCommunicator(
            application, "/ws/notifications/", headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)]
        )

    async def until(communicator: WebsocketCommunicator, kind: str, deadline: float) -> dict[str, Any]:
        while True:
            message = await communicator.receive_json_from(timeout=max(deadline - time.monotonic(), 0.01))
            if message.get("kind") == kind:
                return message  # type: ignore[no-any-return]

    async def scenario() -> dict[str, Any]:
        sockets = {"specialist": socket(specialist), "clinician": socket(clinician), "stranger": socket(stranger)}
        for communicator in sockets.values():
            assert (await communicator.connect())[0]
        alert, started = await sync_to_async(troponin_store_committed)(patient)
        raised = await until(sockets["specialist"], "lab_alert", started + 1.0)
        seen = {"raised": raised, "after": time.monotonic() - started, "alert": alert}
        seen["at_home"] = await until(sockets["clinician"], "lab_alert", started + 1.0)
        seen["stranger_heard_nothing"] = await sockets["stranger"].receive_nothing(timeout=0.3)

        # The specialist acknowledges: Moscow's other screens are told; Tula's alert stays until Tula's own.
        response = await sync_to_async(specialist.post)(_ack_url(alert))
        seen["ack_status"] = response.status_code
        seen["ack"] = await until(sockets["specialist"], "lab_alert_ack", time.monotonic() + 1.0)
        seen["home_heard_no_ack"] = await sockets["clinician"].receive_nothing(timeout=0.3)
        for communicator in sockets.values():
            await communicator.disconnect()
        return seen

    seen = async_to_sync(scenario)()
    alert = seen["alert"]
    expected = {"kind": "lab_alert", "id": alert.pk, "patient": patient.pk, "flag": "critical_high"}
    assert seen["raised"] == expected and seen["after"] < 1.0
    assert seen["at_home"] == expected
    assert seen["stranger_heard_nothing"]
    assert seen["ack_status"] == 302 and seen["ack"] == {"kind": "lab_alert_ack", "id": alert.pk}
    assert seen["home_heard_no_ack"]
    ack = LabAlertAck.objects.get()
    assert (ack.alert, ack.hospital) == (alert, network_a.central)
    entry = AuditEntry.objects.get(object_type="diagnostics.labalert", action=Action.UPDATE)
    assert entry.patient_id == str(patient.pk) and entry.object_id == str(alert.pk)
    assert entry.actor_hospital_id == network_a.central.pk and "acknowledged" in entry.detail


@pytest.mark.django_db
def test_an_acknowledgement_is_announced_to_the_acknowledging_hospital_only(
    network_a: Network, django_capture_on_commit_callbacks, layer_listener
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    consultation_make(patient)
    alert = troponin_store(patient)
    tula = layer_listener.channel(hospital_group(network_a.regional.pk))
    moscow = layer_listener.channel(hospital_group(network_a.central.pk))
    client = verified_login(Client(), _staff(network_a.regional))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(_ack_url(alert))
    with django_capture_on_commit_callbacks(execute=True) as again:
        client.post(_ack_url(alert))  # a second click: nothing new to announce

    assert layer_listener.receive(tula) == {"type": "notify", "payload": {"kind": "lab_alert_ack", "id": alert.pk}}
    assert layer_listener.receive(moscow, timeout=0.3) is None
    assert not again and layer_listener.receive(tula, timeout=0.3) is None


# Acknowledging, per side.


@pytest.mark.django_db
def test_each_side_acknowledges_for_itself_and_it_is_audited(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    consultation_make(patient)
    alert = troponin_store(patient)
    clinician, colleague = (verified_login(Client(), _staff(network_a.regional)) for _ in range(2))
    moscow = [_staff(network_a.central, Staff.Role.SPECIALIST) for _ in range(2)]
    specialist, other_specialist = (verified_login(Client(), user) for user in moscow)
    for client in (clinician, colleague, specialist, other_specialist):
        assert _alert_ids(client) == {alert.pk}

    response = specialist.post(_ack_url(alert), {"next": f"/patients/{patient.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
    entry = AuditEntry.objects.filter(object_type="diagnostics.labalert", action=Action.UPDATE).get()
    assert (entry.patient_id, entry.object_id, entry.outcome) == (str(patient.pk), str(alert.pk), Outcome.SUCCESS)
    assert (entry.actor_id, entry.actor_hospital_id) == (moscow[0].pk, network_a.central.pk)
    # Gone from Moscow's screens, everyone's there; still on Tula's until Tula acknowledges too.
    assert _alert_ids(specialist) == _alert_ids(other_specialist) == set()
    assert _alert_ids(clinician) == _alert_ids(colleague) == {alert.pk}

    banner = clinician.post(_ack_url(alert), headers={"HX-Request": "true"})
    assert banner.status_code == 200 and b'id="lab-alerts"' in banner.content and b"data-alert=" not in banner.content
    assert _alert_ids(clinician) == _alert_ids(colleague) == set()

    # A colleague's later click changes nothing: the first acknowledgement of each side stands, audited again.
    first = LabAlertAck.objects.get(hospital=network_a.regional)
    assert colleague.post(_ack_url(alert)).status_code == 302
    assert list(LabAlertAck.objects.filter(hospital=network_a.regional)) == [first]
    assert LabAlertAck.objects.count() == 2
    assert AuditEntry.objects.filter(object_type="diagnostics.labalert", action=Action.UPDATE).count() == 3
    assert "already acknowledged" in AuditEntry.objects.filter(action=Action.UPDATE).latest("id").detail


@pytest.mark.django_db
def test_another_hospitals_alert_is_not_found_like_an_absent_one(network_a: Network, network_b: Network) -> None:
    elsewhere = troponin_store(PatientFactory(hospital=network_b.regional))
    neighbour = troponin_store(PatientFactory(hospital=network_a.regional))  # same network, Tula's patient
    yaroslavl = Hospital.objects.create(
        name="Yaroslavl Regional Hospital", kind=Hospital.Kind.REGIONAL, region="Y", central_hospital=network_a.central
    )
    for user in (
        _staff(network_a.regional),
        _staff(network_a.central, Staff.Role.SPECIALIST),  # Tula has not asked Moscow about this patient
        _staff(yaroslavl),
    ):
        client = verified_login(Client(), user)
        visible = _alert_ids(client)
        for alert in (elsewhere, neighbour):
            if alert.pk in visible:
                continue
            other, absent = client.post(_ack_url(alert)), client.post(_ack_url(987654))
            assert other.status_code == absent.status_code == 404
        assert elsewhere.pk not in visible
        assert (neighbour.pk in visible) is (user.staff.hospital == network_a.regional)
    assert not LabAlertAck.objects.filter(alert=elsewhere).exists()
    refused = AuditEntry.objects.filter(object_type="diagnostics.labalert", object_id=str(elsewhere.pk))
    assert [entry.outcome for entry in refused] == [Outcome.NOT_FOUND] * 3


@pytest.mark.django_db
def test_admins_see_no_alerts_and_cannot_acknowledge(network_a: Network, platform_admin: User) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    consultation_make(patient)
    alert = troponin_store(patient)
    for user in (_staff(network_a.regional, Staff.Role.HOSPITAL_ADMIN), platform_admin):
        client = verified_login(Client(), user)
        assert client.get(ALERTS).status_code == 403
        assert client.post(_ack_url(alert)).status_code == 404
        page = client.get("/").content.decode()
        assert 'id="lab-alerts"' not in page and patient.family_name not in page
    assert not LabAlertAck.objects.exists()


# The banner on every page.


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/patients/", "/hospitals/", "/notifications/"])
def test_every_page_of_a_clinician_carries_the_banner_and_reading_it_is_audited(path: str, network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional, family_name="Морозова", given_name="Ирина")
    alert = troponin_store(patient)
    client = verified_login(Client(), _staff(network_a.regional))

    page = client.get(path).content.decode()

    start = page.index('id="lab-alerts"')
    banner = page[page.rindex("<div", 0, start) : page.index("</div>", start)]
    assert 'role="alert"' in banner and " hidden" not in banner
    for shown in (
        f'href="/patients/{patient.pk}/"',
        "Морозова Ирина",
        patient.record_number,
        "hs-TnI",
        "450 ng/L",  # 0.45 ng/mL as sent, in the test's unit and decimals
        "critically high",
        f'action="/labs/alerts/{alert.pk}/acknowledge/"',
        "csrfmiddlewaretoken",
        "Acknowledge",
        'hx-trigger="mh:lab_alert from:body, mh:lab_alert_ack from:body"',
    ):
        assert shown in banner, shown
    read = AuditEntry.objects.get(object_type="diagnostics.labalert", action=Action.LIST)
    assert read.patient_id == str(patient.pk) and f"alerts {alert.pk} " in read.detail


@pytest.mark.django_db
def test_without_open_alerts_the_banner_is_empty_and_nothing_is_audited(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    alert = troponin_store(patient)
    LabAlertAck.objects.create(alert=alert, hospital=network_a.regional, user=_staff(network_a.regional))
    client = verified_login(Client(), _staff(network_a.regional))
    for path in ("/", ALERTS):
        page = client.get(path).content.decode()
        assert 'id="lab-alerts"' in page and "data-alert=" not in page and patient.family_name not in page
    assert not AuditEntry.objects.filter(object_type="diagnostics.labalert").exists()


@pytest.mark.django_db
def test_a_page_before_the_second_factor_shows_no_alert(network_a: Network) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    consultation_make(patient)
    troponin_store(patient)
    client = Client()
    client.force_login(_staff(network_a.central, Staff.Role.SPECIALIST))  # password only, no second factor yet
    page = client.get("/accounts/second-factor/setup/").content.decode()
    assert 'id="lab-alerts"' not in page and patient.family_name not in page
    assert client.get(ALERTS).status_code == 302  # to the second factor first


@pytest.mark.django_db
def test_the_banner_costs_the_same_queries_for_many_alerts(network_a: Network) -> None:
    client = verified_login(Client(), _staff(network_a.regional))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(ALERTS).status_code == 200
        return len(captured)

    for n in range(3):
        troponin_store(PatientFactory(hospital=network_a.regional), value=f"0.{n + 5}")
    client.get(ALERTS)  # the first request also refreshes the session's idle clock
    few = queries()
    for n in range(12):
        troponin_store(PatientFactory(hospital=network_a.regional), value=f"0.{n + 10}")
    assert queries() == few + 1  # one more: the count of those beyond the first ten
    page = client.get(ALERTS).content.decode()
    assert page.count('data-testid="lab-alert"') == 10 and "and 5 more" in page


@pytest.mark.django_db
def test_the_service_refuses_a_user_without_a_clinical_role(network_a: Network) -> None:
    from django.core.exceptions import PermissionDenied

    from diagnostics.lab_alerts import lab_alert_acknowledge

    alert = troponin_store(PatientFactory(hospital=network_a.regional))
    with pytest.raises(PermissionDenied):
        lab_alert_acknowledge(alert=alert, by=_staff(network_a.regional, Staff.Role.HOSPITAL_ADMIN))
    with pytest.raises(PermissionDenied):
        lab_alert_acknowledge(alert=alert, by=UserFactory())
    assert not LabAlertAck.objects.exists()
