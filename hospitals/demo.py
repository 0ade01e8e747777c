"""Demo hospitals, departments and staff, loaded by `make run` (idempotent)."""

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.models import Department, Hospital, Specialty, Staff, User

DEMO_PASSWORD = "Demo-Hospital-2026"

SPECIALTIES = [
    ("cardiology", "Cardiology", "Кардиология"),
    ("radiology", "Radiology", "Рентгенология"),
    ("ultrasound", "Ultrasound diagnostics", "Ультразвуковая диагностика"),
    ("endocrinology", "Endocrinology", "Эндокринология"),
    ("urology", "Urology", "Урология"),
    ("pulmonology", "Pulmonology", "Пульмонология"),
    ("general-practice", "General practice", "Общая врачебная практика"),
]

MOSCOW = "Central Clinical Hospital No. 1, Moscow"
HOSPITALS = [
    # name, kind, region, time zone, refers to
    (MOSCOW, Hospital.Kind.CENTRAL, "Moscow", "Europe/Moscow", None),
    ("Tula Regional Hospital", Hospital.Kind.REGIONAL, "Tula Oblast", "Europe/Moscow", MOSCOW),
    ("Yaroslavl Regional Hospital", Hospital.Kind.REGIONAL, "Yaroslavl Oblast", "Europe/Moscow", MOSCOW),
    (
        "Medical car, train 002 Moscow–Vladivostok",
        Hospital.Kind.MOBILE_UNIT,
        "Trans-Siberian Railway",
        "Europe/Moscow",
        MOSCOW,
    ),
]

DEPARTMENTS = {
    MOSCOW: [("Cardiology", "cardiology"), ("Radiology", "radiology"), ("Ultrasound diagnostics", "ultrasound")],
    "Tula Regional Hospital": [("Therapy", "general-practice")],
    "Yaroslavl Regional Hospital": [("Therapy", "general-practice")],
}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    name: str
    role: str
    hospital: str
    totp_secret: str


STAFF = [
    # username, family name, given name, role, hospital, specialties
    ("moscow.cardiologist", "Соколова", "Анна", Staff.Role.SPECIALIST, MOSCOW, ["cardiology"]),
    ("moscow.radiologist", "Орлов", "Дмитрий", Staff.Role.SPECIALIST, MOSCOW, ["radiology", "ultrasound"]),
    ("moscow.clinician", "Петрова", "Мария", Staff.Role.CLINICIAN, MOSCOW, []),
    ("moscow.admin", "Кузнецов", "Игорь", Staff.Role.HOSPITAL_ADMIN, MOSCOW, []),
    ("tula.clinician", "Иванов", "Сергей", Staff.Role.CLINICIAN, "Tula Regional Hospital", ["general-practice"]),
    ("tula.admin", "Смирнова", "Ольга", Staff.Role.HOSPITAL_ADMIN, "Tula Regional Hospital", []),
    ("yaroslavl.clinician", "Волков", "Алексей", Staff.Role.CLINICIAN, "Yaroslavl Regional Hospital", []),
    ("yaroslavl.admin", "Новикова", "Елена", Staff.Role.HOSPITAL_ADMIN, "Yaroslavl Regional Hospital", []),
    ("train.clinician", "Морозов", "Павел", Staff.Role.CLINICIAN, "Medical car, train 002 Moscow–Vladivostok", []),
    ("train.admin", "Лебедева", "Татьяна", Staff.Role.HOSPITAL_ADMIN, "Medical car, train 002 Moscow–Vladivostok", []),
]
PLATFORM_ADMIN = "platform.admin"


# Other apps add their demo rows (devices, ...) through a registered loader, so this module imports none of
# them. A loader runs inside demo_load's transaction, gets the demo hospitals by name, and must be idempotent.
DemoLoader = Callable[[dict[str, Hospital]], None]
_demo_loaders: list[DemoLoader] = []


def demo_loader_register(loader: DemoLoader) -> None:
    if loader not in _demo_loaders:
        _demo_loaders.append(loader)


def demo_totp_key(username: str) -> str:
    """A fixed authenticator key per demo user, so the printed secret stays valid across runs."""
    return hashlib.sha1(f"mhospital-demo:{username}".encode()).hexdigest()


def totp_secret(hex_key: str) -> str:
    return base64.b32encode(bytes.fromhex(hex_key)).decode()


@transaction.atomic
def demo_load() -> list[DemoLogin]:
    specialties = {
        code: Specialty.objects.update_or_create(code=code, defaults={"name_en": en, "name_ru": ru})[0]
        for code, en, ru in SPECIALTIES
    }
    hospitals: dict[str, Hospital] = {}
    for name, kind, region, zone, central in HOSPITALS:
        hospitals[name] = Hospital.objects.update_or_create(
            name=name,
            defaults={
                "kind": kind,
                "region": region,
                "time_zone": zone,
                "central_hospital": hospitals[central] if central else None,
            },
        )[0]
    for hospital_name, departments in DEPARTMENTS.items():
        for department_name, code in departments:
            Department.objects.update_or_create(
                hospital=hospitals[hospital_name], name=department_name, defaults={"specialty": specialties[code]}
            )

    logins = []
    for username, last, first, role, hospital_name, codes in STAFF:
        user = _demo_user(username, first, last)
        staff, _ = Staff.objects.update_or_create(
            user=user, defaults={"hospital": hospitals[hospital_name], "role": role}
        )
        staff.specialties.set([specialties[c] for c in codes])
        secret = _demo_device(user) if staff.needs_second_factor else ""
        logins.append(DemoLogin(username, f"{last} {first}", staff.get_role_display(), hospital_name, secret))
    admin = _demo_user(PLATFORM_ADMIN, "Platform", "Admin", is_superuser=True)
    logins.append(DemoLogin(PLATFORM_ADMIN, "Admin Platform", "Platform admin", "—", _demo_device(admin)))
    for loader in _demo_loaders:
        loader(hospitals)
    return logins


def _demo_user(username: str, first: str, last: str, *, is_superuser: bool = False) -> User:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"first_name": first, "last_name": last, "is_superuser": is_superuser, "is_staff": is_superuser},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _demo_device(user: User) -> str:
    key = demo_totp_key(user.username)
    TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "demo", "key": key})
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return totp_secret(device.key) if device else ""
