"""A hospital admin manages their own hospital's staff from the platform's pages."""

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.models import AuditEntry, Staff, User
from tests.conftest import Network, StaffFactory


@pytest.fixture
def tula_admin(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN, user__username="o.smirnova").user


def _form(**overrides: object) -> dict[str, object]:
    return {"first_name": "Сергей", "last_name": "Иванов-Петров", "role": "clinician", "job_title": "", **overrides}


def test_an_admin_creates_an_account_whose_temporary_password_works_once(
    tula_admin: User, network_a: Network, network_b: Network, login
) -> None:  # type: ignore[no-untyped-def]
    response = login(tula_admin).post(
        "/staff/new/", {**_form(), "username": "s.ivanov", "hospital": network_b.regional.pk}
    )
    assert response.status_code == 201
    password = response.context["password"]
    assert password in response.content.decode()
    staff = Staff.objects.get(user__username="s.ivanov")
    assert staff.hospital == network_a.regional  # the admin's own hospital, whatever the form claimed
    assert staff.user.get_full_name() == "Сергей Иванов-Петров"

    newcomer = Client()
    newcomer.post("/accounts/login/", {"username": "s.ivanov", "password": password})
    assert newcomer.get("/")["Location"] == "/accounts/password/"


def test_a_specialist_role_needs_a_central_hospital(tula_admin: User, login) -> None:  # type: ignore[no-untyped-def]
    response = login(tula_admin).post("/staff/new/", {**_form(role="specialist"), "username": "x.y"})
    assert response.status_code == 400
    assert "Central specialists work at a central hospital." in response.content.decode()
    assert not User.objects.filter(username="x.y").exists()


def test_a_taken_username_is_refused(tula_admin: User, login) -> None:  # type: ignore[no-untyped-def]
    response = login(tula_admin).post("/staff/new/", {**_form(), "username": "O.Smirnova"})
    assert response.status_code == 400
    assert "This username is taken" in response.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("last_name", "Я" * 151, "Ensure this value has at most 150 characters (it has 151)."),
        ("last_name", "<script>alert(1)</script>", "Use only letters, spaces, hyphens, apostrophes and dots"),
        ("first_name", "Robert'); DROP TABLE staff;--", "Use only letters, spaces, hyphens, apostrophes and dots"),
        ("job_title", "<img src=x onerror=alert(1)>", "Remove the characters &lt; and &gt;."),
        ("role", "superuser", "Select a valid choice."),
    ],
)
def test_bad_input_changes_nothing_says_why_and_is_audited(
    field: str, value: str, message: str, tula_admin: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    target = StaffFactory(hospital=network_a.regional)
    before = (target.user.first_name, target.user.last_name, target.role, target.job_title)
    response = login(tula_admin).post(f"/staff/{target.pk}/", _form(**{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    target.refresh_from_db()
    target.user.refresh_from_db()
    assert (target.user.first_name, target.user.last_name, target.role, target.job_title) == before
    assert AuditEntry.objects.filter(action="update", outcome="invalid", object_id=str(target.pk)).count() == 1


def test_an_admin_cannot_touch_another_hospitals_staff(
    tula_admin: User, network_a: Network, network_b: Network, login
) -> None:  # type: ignore[no-untyped-def]
    foreign = StaffFactory(hospital=network_b.regional)
    client = login(tula_admin)
    for path, data in [
        (f"/staff/{foreign.pk}/", _form(last_name="Hacked")),
        (f"/staff/{foreign.pk}/deactivate/", {}),
        (f"/staff/{foreign.pk}/activate/", {}),
        (f"/staff/{foreign.pk}/reset-second-factor/", {}),
    ]:
        assert client.post(path, data).status_code == 404
    foreign.refresh_from_db()
    foreign.user.refresh_from_db()
    assert foreign.is_active and foreign.user.last_name != "Hacked"
    assert AuditEntry.objects.filter(outcome="not_found", object_id=str(foreign.pk)).count() == 4


def test_a_platform_admin_working_at_a_hospital_is_beyond_its_hospital_admin(
    tula_admin: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    operator = StaffFactory(hospital=network_a.regional, user__is_superuser=True)
    client = login(tula_admin)
    assert client.post(f"/staff/{operator.pk}/deactivate/").status_code == 404
    assert client.post(f"/staff/{operator.pk}/reset-second-factor/").status_code == 404
    operator.refresh_from_db()
    assert operator.is_active


def test_an_admin_changes_a_role_and_specialties(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    from hospitals.models import Specialty

    cardiology = Specialty.objects.create(code="cardiology", name_en="Cardiology", name_ru="Кардиология")
    moscow_admin = StaffFactory(hospital=network_a.central, role=Staff.Role.HOSPITAL_ADMIN).user
    doctor = StaffFactory(hospital=network_a.central)
    response = login(moscow_admin).post(
        f"/staff/{doctor.pk}/", _form(role="specialist", specialties=[cardiology.pk], job_title="Cardiologist")
    )
    assert response.status_code == 302
    doctor.refresh_from_db()
    assert doctor.role == Staff.Role.SPECIALIST
    assert list(doctor.specialties.all()) == [cardiology]


def test_an_admin_cannot_lock_themselves_out(tula_admin: User, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_admin)
    own = tula_admin.staff
    client.post(f"/staff/{own.pk}/deactivate/")
    response = client.post(f"/staff/{own.pk}/", _form(role="clinician"), follow=True)
    assert "You cannot change your own role" in response.content.decode()
    own.refresh_from_db()
    assert own.is_active and own.role == Staff.Role.HOSPITAL_ADMIN


def test_deactivate_then_reactivate_leaves_old_sessions_ended(tula_admin: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    target = StaffFactory(hospital=network_a.regional)
    old_session = login(target.user)
    client = login(tula_admin)
    page = client.post(f"/staff/{target.pk}/deactivate/", follow=True).content.decode()
    assert "is deactivated and signed out everywhere" in page
    target.refresh_from_db()
    assert not target.is_active and not target.user.is_active

    page = client.post(f"/staff/{target.pk}/activate/", follow=True).content.decode()
    assert "can sign in again" in page
    target.refresh_from_db()
    target.user.refresh_from_db()
    assert target.is_active
    # The cookie from before the deactivation does not come back to life.
    assert old_session.get("/")["Location"] == "/accounts/login/?next=/"
    assert login(target.user).get("/").status_code == 200


def test_resetting_a_lost_second_factor_ends_sessions_and_makes_the_person_enrol_again(
    network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    moscow_admin = StaffFactory(hospital=network_a.central, role=Staff.Role.HOSPITAL_ADMIN).user
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST, user__username="d.orlov")
    specialist.user.set_password("Orlov-Radiology-77")
    specialist.user.save()
    specialist_client = login(specialist.user)
    assert specialist_client.get("/").status_code == 200

    login(moscow_admin).post(f"/staff/{specialist.pk}/reset-second-factor/")

    assert not TOTPDevice.objects.filter(user=specialist.user).exists()
    # Whoever holds the lost phone's session is out: the password is needed again before enrolling.
    assert specialist_client.get("/")["Location"] == "/accounts/login/?next=/"
    fresh = Client()
    fresh.post("/accounts/login/", {"username": "d.orlov", "password": "Orlov-Radiology-77"})
    assert fresh.get("/")["Location"].startswith("/accounts/second-factor/setup/")


def test_the_staff_list_shows_only_own_hospital_and_searches(tula_admin: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    StaffFactory(hospital=network_a.regional, user__last_name="Volkova")
    StaffFactory(hospital=network_a.central, user__last_name="Moskvina")
    client = login(tula_admin)
    page = client.get("/staff/").content.decode()
    assert "Volkova" in page and "Moskvina" not in page
    page = client.get("/staff/", {"q": "volk"}).content.decode()
    assert "Volkova" in page and "o.smirnova" not in page
