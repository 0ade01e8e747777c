"""Devices call the API with their own token: they may write for their hospital, never read, and a token that
does not hold is refused with the reason and an audit row."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from devices import services
from devices.models import Device
from hospitals.models import AuditEntry, User
from tests.conftest import Network, PatientFactory, StaffFactory
from tests.devices.conftest import token_for

HEARTBEAT = "/api/v1/device/heartbeat"


def _send(token: str, path: str = HEARTBEAT, method: str = "post") -> object:
    return getattr(Client(), method)(path, HTTP_AUTHORIZATION=f"Device {token}")


def test_a_heartbeat_with_a_valid_token_is_answered_204_and_marks_the_device_seen(
    analyser: Device, tula_admin: User
) -> None:
    token, plain = token_for(analyser, tula_admin)
    response = _send(plain)

    assert response.status_code == 204  # type: ignore[attr-defined]
    analyser.refresh_from_db()
    token.refresh_from_db()
    assert analyser.last_seen_at is not None and token.last_used_at is not None
    assert timezone.now() - analyser.last_seen_at < timedelta(seconds=10)


def test_a_revoked_token_is_refused_with_the_reason_and_the_attempt_audited(analyser: Device, tula_admin: User) -> None:
    token, plain = token_for(analyser, tula_admin)
    services.device_token_revoke(token=token, by=tula_admin)
    response = _send(plain)

    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response["WWW-Authenticate"] == 'Device realm="api"'  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "device_token_revoked"
    assert "was revoked on" in body["detail"] and "Ask the hospital admin for a new token" in body["detail"]
    entry = AuditEntry.objects.get(action="login_failure")
    assert (entry.outcome, entry.object_type, entry.object_id) == ("denied", "devices.device", str(analyser.pk))
    assert token.prefix in entry.detail and plain.split("_", 2)[2] not in entry.detail
    analyser.refresh_from_db()
    assert analyser.last_seen_at is None


@pytest.mark.parametrize(
    ("header", "code", "sentence"),
    [
        ("Device mhd_0123456789ab_" + "A" * 43, "device_token_unknown", "not known to the platform"),
        ("Device not-a-token", "device_token_malformed", "followed by the device's whole token"),
        ("Device", "device_token_malformed", "followed by the device's whole token"),
        ("Token 0123456789", "device_token_missing", "Authorization: Device <token>"),
        ("", "device_token_missing", "Authorization: Device <token>"),
    ],
)
def test_a_missing_unknown_or_malformed_token_is_refused_and_audited(
    header: str, code: str, sentence: str, db: None
) -> None:
    response = Client().post(HEARTBEAT, HTTP_AUTHORIZATION=header) if header else Client().post(HEARTBEAT)
    assert response.status_code == 401
    assert response.json()["code"] == code and sentence in response.json()["detail"]
    entry = AuditEntry.objects.get(action="login_failure")
    assert entry.outcome == "denied" and code in entry.detail


def test_a_token_of_a_deactivated_device_or_hospital_is_refused(analyser: Device, tula_admin: User) -> None:
    _, plain = token_for(analyser, tula_admin)
    services.device_deactivate(device=analyser, by=tula_admin)
    response = _send(plain)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.json()["code"] == "device_inactive"  # type: ignore[attr-defined]

    services.device_activate(device=analyser, by=tula_admin)
    assert _send(plain).status_code == 204  # type: ignore[attr-defined]  # its token works again

    analyser.hospital.is_active = False
    analyser.hospital.save()
    response = _send(plain)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.json()["code"] == "hospital_inactive"  # type: ignore[attr-defined]


def test_after_rotation_the_old_token_stops_working_and_the_new_one_works(analyser: Device, tula_admin: User) -> None:
    _, old = token_for(analyser, tula_admin)
    assert _send(old).status_code == 204  # type: ignore[attr-defined]
    _, new = services.device_token_rotate(device=analyser, by=tula_admin)

    assert _send(old).json()["code"] == "device_token_revoked"  # type: ignore[attr-defined]
    assert _send(new).status_code == 204  # type: ignore[attr-defined]


def test_a_device_cannot_read(analyser: Device, tula_admin: User, network_a: Network) -> None:
    PatientFactory(hospital=network_a.regional)
    _, plain = token_for(analyser, tula_admin)
    for path in ("/api/v1/patients/", "/api/v1/consultations/", "/dicom-web/studies"):
        response = _send(plain, path, "get")
        assert response.status_code in (401, 403), path  # type: ignore[attr-defined]
        assert "record_number" not in response.content.decode()  # type: ignore[attr-defined]
    assert _send(plain, "/patients/", "get").status_code == 302  # type: ignore[attr-defined]  # pages: sign in first
    assert _send(plain, HEARTBEAT, "get").status_code == 405  # type: ignore[attr-defined]


def test_a_person_cannot_call_the_device_api(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    response = login(StaffFactory(hospital=network_a.regional).user).post(HEARTBEAT)
    assert response.status_code == 401 and response.json()["code"] == "device_token_missing"


def test_a_busy_device_costs_one_write_a_minute(analyser: Device, tula_admin: User) -> None:
    token, plain = token_for(analyser, tula_admin)
    _send(plain)
    token.refresh_from_db()
    first = token.last_used_at
    _send(plain)
    token.refresh_from_db()
    assert token.last_used_at == first

    type(token).objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    _send(plain)
    token.refresh_from_db()
    assert token.last_used_at is not None and first is not None and token.last_used_at > first
