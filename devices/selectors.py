"""Reads about devices."""

from devices.models import Device


def device_for_ae_title(*, ae_title: str) -> Device | None:
    """The active device of an active hospital that calls itself `ae_title`: the DICOM allow-list."""
    if not ae_title:
        return None
    return (
        Device.objects.filter(ae_title=ae_title, active=True, hospital__is_active=True)
        .select_related("hospital")
        .first()
    )
