"""Demo devices, added to `manage.py load_demo` through hospitals.demo's loader hook (idempotent).

No tokens: an admin issues one on a device's page when trying the device API.
"""

from devices.models import Device
from hospitals.models import Hospital

# (hospital name, device name): the other fields
DEVICES: dict[tuple[str, str], dict[str, str]] = {
    ("Tula Regional Hospital", "Portable ultrasound 1"): {
        "kind": Device.Kind.ULTRASOUND,
        "ae_title": "TULA_US1",
        "vendor": "Mindray",
        "model_name": "M7",
        "serial": "DEMO-US-0001",
        "location": "Emergency department",
    },
    ("Tula Regional Hospital", "Blood analyser 1"): {
        "kind": Device.Kind.LAB_ANALYSER,
        "vendor": "Mindray",
        "model_name": "BC-5150",
        "serial": "DEMO-BC-0001",
        "location": "Laboratory, building 2",
    },
    ("Tula Regional Hospital", "Glucometer, ward 3"): {
        "kind": Device.Kind.GLUCOSE_METER,
        "vendor": "Elta",
        "model_name": "Satellit Express",
        "serial": "DEMO-GM-0001",
        "location": "Ward 3",
    },
}


def demo_devices_load(hospitals: dict[str, Hospital]) -> None:
    for (hospital_name, name), fields in DEVICES.items():
        if hospital_name in hospitals:
            Device.objects.update_or_create(
                hospital=hospitals[hospital_name], name=name, defaults={**fields, "active": True}
            )
