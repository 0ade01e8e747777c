"""Demo devices, added to `manage.py load_demo` through hospitals.demo's loader hook (idempotent)."""

from devices.models import Device
from hospitals.models import Hospital

# hospital name, device name, kind, AE title
DEVICES = [
    ("Tula Regional Hospital", "Portable ultrasound 1", Device.Kind.ULTRASOUND, "TULA_US1"),
]


def demo_devices_load(hospitals: dict[str, Hospital]) -> None:
    for hospital_name, name, kind, ae_title in DEVICES:
        if hospital_name in hospitals:
            Device.objects.update_or_create(
                ae_title=ae_title,
                defaults={"hospital": hospitals[hospital_name], "name": name, "kind": kind, "active": True},
            )
