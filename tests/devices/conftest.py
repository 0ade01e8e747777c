"""Devices of the two networks and their admins, for the registry and device API tests."""

import pytest

from devices import services
from devices.models import Device, DeviceToken
from hospitals.models import Staff, User
from tests.conftest import Network, StaffFactory


@pytest.fixture
def tula_admin(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN, user__username="o.smirnova").user


@pytest.fixture
def analyser(network_a: Network) -> Device:
    """Tula's blood analyser, which sends its results over the API."""
    return Device.objects.create(
        hospital=network_a.regional,
        name="Blood analyser 1",
        kind=Device.Kind.LAB_ANALYSER,
        vendor="Mindray",
        model_name="BC-5150",
        serial="SN-0042",
        location="Laboratory",
    )


@pytest.fixture
def kostroma_device(network_b: Network) -> Device:
    return Device.objects.create(
        hospital=network_b.regional, name="Kostroma glucometer", kind=Device.Kind.GLUCOSE_METER, serial="KOS-1"
    )


def token_for(device: Device, by: User) -> tuple[DeviceToken, str]:
    """A token issued for the device as its admin would: the row and the token itself."""
    return services.device_token_issue(device=device, by=by)


# A real Celery worker process, as the imaging pipeline tests start one (tests/diagnostics/conftest.py).
from tests.diagnostics.conftest import celery_worker  # noqa: E402, F401
