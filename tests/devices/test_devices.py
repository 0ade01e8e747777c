"""Platform admins keep the allow-list of modalities in the Django admin; the demo brings Tula's ultrasound unit."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from devices.models import Device, DeviceToken
from hospitals.models import AuditEntry, User
from tests.conftest import Network


def test_platform_admin_registers_a_modality_and_the_change_is_audited(
    network_a: Network, platform_admin: User, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(platform_admin)
    response = client.post(
        "/admin/devices/device/add/",
        {
            "hospital": network_a.regional.pk,
            "name": "Portable ultrasound 2",
            "kind": "ultrasound",
            "ae_title": "TULA_US2",
        },
    )

    assert response.status_code == 302
    device = Device.objects.get(ae_title="TULA_US2")
    assert device.hospital == network_a.regional and not device.active  # an unticked box: not yet allowed
    assert AuditEntry.objects.filter(action="create", object_type="devices.device", object_id=str(device.pk)).exists()
    page = client.get("/admin/devices/device/", {"q": "TULA_US2"}).content.decode()
    assert "Portable ultrasound 2" in page


@pytest.mark.parametrize(
    ("ae_title", "message"),
    [
        ("A_TITLE_LONGER_THAN_16", "Ensure this value has at most 16 characters"),
        ("BACK\\SLASH", "only Latin letters"),
        ("TAB\tHERE", "only Latin letters"),
        ("УЗИ_ТУЛА", "only Latin letters"),
        (" LEADING", "no spaces at its start or end"),
    ],
)
def test_an_ae_title_must_be_one_a_modality_can_send(ae_title: str, message: str, network_a: Network) -> None:
    device = Device(hospital=network_a.regional, name="US", kind=Device.Kind.ULTRASOUND, ae_title=ae_title)
    with pytest.raises(ValidationError, match=message):
        device.full_clean()


def test_two_devices_cannot_share_an_ae_title_but_many_need_none(network_a: Network, network_b: Network) -> None:
    Device.objects.create(hospital=network_a.regional, name="US", kind=Device.Kind.ULTRASOUND, ae_title="US1")
    Device.objects.create(hospital=network_a.regional, name="Glucose 1", kind=Device.Kind.GLUCOSE_METER)
    Device.objects.create(hospital=network_a.regional, name="Glucose 2", kind=Device.Kind.GLUCOSE_METER)
    twin = Device(hospital=network_b.regional, name="US", kind=Device.Kind.ULTRASOUND, ae_title="US1")
    with pytest.raises(ValidationError, match="Another device already has this AE title"):
        twin.full_clean()


def test_the_demo_has_tulas_ultrasound_analyser_and_glucometer_once(db) -> None:  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=StringIO())
    out = StringIO()
    call_command("load_demo", stdout=out)

    device = Device.objects.get(ae_title="TULA_US1")
    assert (device.ae_title, device.hospital.name, device.kind, device.active) == (
        "TULA_US1",
        "Tula Regional Hospital",
        "ultrasound",
        True,
    )
    others = Device.objects.exclude(pk=device.pk).order_by("kind")
    assert [(d.kind, d.hospital.name, d.ae_title) for d in others] == [
        ("glucose_meter", "Tula Regional Hospital", ""),
        ("lab_analyser", "Tula Regional Hospital", ""),
    ]
    assert all(d.vendor and d.model_name and d.serial and d.location for d in others)
    assert not DeviceToken.objects.exists() and "mhd_" not in out.getvalue()
