"""`make run` loads the demo: twice in a row gives the same hospitals and people, and the printed logins work."""

from io import StringIO

from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.demo import DEMO_PASSWORD
from hospitals.models import Department, Hospital, Staff, User


def test_loading_the_demo_twice_changes_nothing_the_second_time(db) -> None:  # type: ignore[no-untyped-def]
    first = StringIO()
    call_command("load_demo", stdout=first)
    counts = [m.objects.count() for m in (Hospital, Department, Staff, User, TOTPDevice)]
    second = StringIO()
    call_command("load_demo", stdout=second)
    assert [m.objects.count() for m in (Hospital, Department, Staff, User, TOTPDevice)] == counts
    assert first.getvalue() == second.getvalue()  # the same logins and authenticator keys are printed
    assert counts[0] == 4
    kinds = set(Hospital.objects.values_list("kind", flat=True))
    assert kinds == {"central", "regional", "mobile_unit"}
    for username in ("tula.clinician", "moscow.cardiologist", "yaroslavl.admin", "train.clinician", "platform.admin"):
        assert username in first.getvalue()


def test_the_printed_demo_login_and_code_get_a_specialist_in(db) -> None:  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=StringIO())
    client = Client()
    client.post("/accounts/login/", {"username": "moscow.cardiologist", "password": DEMO_PASSWORD})
    code = StringIO()
    call_command("demo_code", "moscow.cardiologist", stdout=code)
    response = client.post("/accounts/second-factor/verify/", {"token": code.getvalue().strip(), "next": "/"})
    assert response["Location"] == "/"
    assert "Worklist" in client.get("/").content.decode()
    assert Staff.objects.get(user__username="moscow.cardiologist").hospital.name.startswith("Central Clinical")


def test_the_demo_has_a_tula_patient_with_consent_and_images_ready_to_view(db) -> None:  # type: ignore[no-untyped-def]
    from django.test import TestCase

    from diagnostics.models import Instance
    from patients.models import Patient

    with TestCase.captureOnCommitCallbacks(execute=True):  # the pipeline, inline as the worker would run it
        call_command("load_demo", stdout=StringIO())
        call_command("load_demo", stdout=StringIO())
    patient = Patient.objects.get(record_number="TUL-DEMO-1")
    assert patient.hospital.name == "Tula Regional Hospital" and patient.consents.get().is_valid
    images = Instance.objects.filter(series__study__patient=patient)
    assert sorted(images.values_list("series__study__description", "status", "frames")) == [
        ("CT chest", "ready", 1),
        ("Ultrasound, kidneys", "ready", 30),
    ]


def test_the_demo_patient_has_lab_results_with_a_critical_troponin_once(db, lab_reference) -> None:  # type: ignore[no-untyped-def]
    from diagnostics.models import LabAlert, Observation

    call_command("load_demo", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())
    results = Observation.objects.filter(patient__record_number="TUL-DEMO-1")
    assert results.filter(test__short_name="GLU").count() == 5  # a trend chart's worth, stored once
    troponin = results.get(flag=Observation.Flag.CRITICAL_HIGH)
    assert (troponin.test.short_name, troponin.value) == ("hs-TnI", 180)
    assert LabAlert.objects.get().observation == troponin
