"""Demo patients of Tula, with consent recorded, added to `manage.py load_demo` (idempotent)."""

from datetime import date

from hospitals.models import Hospital, User
from patients.models import Consent, Patient

TULA = "Tula Regional Hospital"
# record number, family, given, patronymic, sex, birth date
PATIENTS = [
    ("TUL-DEMO-1", "Кузнецова", "Мария", "Андреевна", Patient.Sex.FEMALE, date(1966, 11, 2)),
    ("TUL-DEMO-2", "Соколов", "Виктор", "Иванович", Patient.Sex.MALE, date(1957, 5, 30)),
]


def demo_patients_load(hospitals: dict[str, Hospital]) -> None:
    if TULA not in hospitals:
        return
    clinician = User.objects.filter(username="tula.clinician").first()
    for record, family, given, patronymic, sex, born in PATIENTS:
        patient, created = Patient.objects.get_or_create(
            hospital=hospitals[TULA],
            record_number=record,
            defaults={
                "family_name": family,
                "given_name": given,
                "patronymic": patronymic,
                "sex": sex,
                "birth_date": born,
                "created_by": clinician,
            },
        )
        if created and clinician is not None:
            Consent.objects.create(patient=patient, telemedicine=True, data_sharing=True, recorded_by=clinician)
