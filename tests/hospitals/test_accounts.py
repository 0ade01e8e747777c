"""Sign-in as people meet it: passwords, lockout, the second factor, expired and ended sessions, forged forms."""

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.models import AuditEntry, Staff, User
from tests.conftest import Network, StaffFactory

PASSWORD = "Correct-Horse-Battery-9"


def _person(hospital, role: str = Staff.Role.CLINICIAN, username: str = "s.ivanov") -> User:  # type: ignore[no-untyped-def]
    staff = StaffFactory(hospital=hospital, role=role, user__username=username)
    staff.user.set_password(PASSWORD)
    staff.user.save()
    return staff.user


def _sign_in(client: Client, username: str, password: str = PASSWORD, ip: str = "10.20.30.40"):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_passwords_are_stored_with_argon2(network_a: Network) -> None:
    user = _person(network_a.regional)
    assert user.password.startswith("argon2$")


def test_a_clinician_signs_in_and_reaches_the_dashboard(network_a: Network) -> None:
    _person(network_a.regional)
    client = Client()
    response = _sign_in(client, "s.ivanov")
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/").content.decode()
    assert "My patients" in page and "Tula Regional Hospital" in page
    entry = AuditEntry.objects.get(action="login")
    assert (entry.actor_username, entry.ip) == ("s.ivanov", "10.20.30.40")


def test_a_wrong_password_is_refused_with_a_clear_message_and_audited(network_a: Network) -> None:
    _person(network_a.regional)
    response = _sign_in(Client(), "s.ivanov", "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome, entry.actor_username) == ("login_failure", "denied", "s.ivanov")


def test_lockout_is_per_username_and_address_not_per_hospital_nat(network_a: Network, settings) -> None:  # type: ignore[no-untyped-def]
    _person(network_a.regional, username="typo.prone")
    _person(network_a.regional, username="colleague")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(Client(), "typo.prone", "wrong", ip="10.0.0.1")

    locked = _sign_in(Client(), "typo.prone", PASSWORD, ip="10.0.0.1")
    assert locked.status_code == 429
    assert "Try again in 15 minutes" in locked.content.decode()
    assert "Other people at your hospital can still sign in." in locked.content.decode()

    # Same hospital NAT address, another person: signs in.
    assert _sign_in(Client(), "colleague", PASSWORD, ip="10.0.0.1")["Location"] == "/"
    # The locked person from another address (home, another ward's network): signs in too.
    assert _sign_in(Client(), "typo.prone", PASSWORD, ip="10.9.9.9")["Location"] == "/"
    assert AuditEntry.objects.filter(action="login_failure", detail__contains="locked out").exists()


def test_the_lockout_cools_off(network_a: Network, settings) -> None:  # type: ignore[no-untyped-def]
    from axes.models import AccessAttempt
    from django.utils import timezone

    _person(network_a.regional)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(Client(), "s.ivanov", "wrong")
    assert _sign_in(Client(), "s.ivanov").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)
    assert _sign_in(Client(), "s.ivanov")["Location"] == "/"


def test_a_specialist_without_a_second_factor_cannot_reach_protected_pages(network_a: Network) -> None:
    _person(network_a.central, Staff.Role.SPECIALIST, username="a.sokolova")
    client = Client()
    assert _sign_in(client, "a.sokolova")["Location"] == "/"
    for path in ("/", "/hospitals/", f"/hospitals/{network_a.central.pk}/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/second-factor/setup/")


def test_a_specialist_enrols_an_authenticator_with_the_qr_page_and_gets_in(network_a: Network) -> None:
    specialist = _person(network_a.central, Staff.Role.SPECIALIST, username="a.sokolova")
    client = Client()
    _sign_in(client, "a.sokolova")
    page = client.get("/accounts/second-factor/setup/?next=/hospitals/")
    assert page.status_code == 200
    assert "<svg" in page.content.decode()  # the QR code, drawn by the server: no CDN
    device = TOTPDevice.objects.get(user=specialist, confirmed=False)

    wrong = client.post("/accounts/second-factor/setup/", {"token": "000000", "next": "/hospitals/"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()

    # Right after a wrong code the device pauses; the page says how long, rather than "wrong" again.
    paused = client.post("/accounts/second-factor/setup/", {"token": _current_code(device), "next": "/hospitals/"})
    assert paused.status_code == 400 and "Too many wrong codes. Wait" in paused.content.decode()
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=10)  # the pause has passed
    )
    done = client.post("/accounts/second-factor/setup/", {"token": _current_code(device), "next": "/hospitals/"})
    assert done["Location"] == "/hospitals/"
    assert TOTPDevice.objects.get(user=specialist).confirmed
    assert client.get("/hospitals/").status_code == 200


def test_an_enrolled_specialist_must_type_the_current_code_at_each_sign_in(network_a: Network) -> None:
    specialist = _person(network_a.central, Staff.Role.SPECIALIST, username="a.sokolova")
    device = TOTPDevice.objects.create(user=specialist, name="phone", confirmed=True)
    client = Client()
    _sign_in(client, "a.sokolova")
    assert client.get("/")["Location"].startswith("/accounts/second-factor/verify/")
    # The enrolment page cannot be used to swap in a new authenticator without the admin's reset.
    assert client.get("/accounts/second-factor/setup/")["Location"].startswith("/accounts/second-factor/verify/")

    # Until the code is typed, the page offers nothing the gate would refuse: no navigation, no live badges.
    waiting = client.get("/accounts/second-factor/verify/").content.decode()
    assert "Worklist" not in waiting and "lab-review-count" not in waiting and "data-user=" not in waiting
    assert "Sign out" in waiting

    bad = client.post("/accounts/second-factor/verify/", {"token": "12345x", "next": "/"})
    assert bad.status_code == 400 and "Enter the six digits" in bad.content.decode()
    assert (
        client.post("/accounts/second-factor/verify/", {"token": _current_code(device), "next": "/"})["Location"] == "/"
    )
    assert "Worklist" in client.get("/").content.decode()


def test_the_next_parameter_cannot_send_people_off_site(network_a: Network) -> None:
    specialist = _person(network_a.central, Staff.Role.SPECIALIST, username="a.sokolova")
    device = TOTPDevice.objects.create(user=specialist, name="phone", confirmed=True)
    client = Client()
    _sign_in(client, "a.sokolova")
    response = client.post(
        "/accounts/second-factor/verify/", {"token": _current_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_new_account_must_replace_its_temporary_password(network_a: Network) -> None:
    user = _person(network_a.regional)
    User.objects.filter(pk=user.pk).update(must_change_password=True)
    client = Client()
    _sign_in(client, "s.ivanov")
    assert client.get("/")["Location"] == "/accounts/password/"
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": "Tula-Winter-Night-42", "new_password2": "Tula-Winter-Night-42"},
    )
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    user.refresh_from_db()
    assert not user.must_change_password and user.check_password("Tula-Winter-Night-42")


def test_a_weak_new_password_is_refused_with_reasons(network_a: Network) -> None:
    _person(network_a.regional)
    client = Client()
    _sign_in(client, "s.ivanov")
    response = client.post(
        "/accounts/password/", {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"}
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "This password is too short" in text and "entirely numeric" in text


def test_the_session_expires_after_the_idle_timeout(network_a: Network, settings) -> None:  # type: ignore[no-untyped-def]
    _person(network_a.regional)
    client = Client()
    _sign_in(client, "s.ivanov")
    client.get("/")
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE == 30 * 60
    session = client.session
    session.set_expiry(-1)  # what the clock does after thirty idle minutes
    session.save()
    assert client.get("/")["Location"] == "/accounts/login/?next=/"


def test_a_deactivated_users_old_session_cookie_is_refused_and_audited(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional)
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    old_session = login(clinician.user)
    assert old_session.get("/").status_code == 200

    login(admin).post(f"/staff/{clinician.pk}/deactivate/")

    response = old_session.get("/hospitals/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in old_session.session
    entry = AuditEntry.objects.filter(action="permission_denied").get()
    assert (entry.actor_username, entry.object_type) == (clinician.user.username, "session")
    # And the password no longer opens a new session.
    clinician.user.refresh_from_db()
    clinician.user.set_password(PASSWORD)
    clinician.user.save()
    assert _sign_in(Client(), clinician.user.username).status_code == 200


def test_a_forged_csrf_post_changes_nothing_and_is_audited(network_a: Network) -> None:
    target = StaffFactory(hospital=network_a.regional)
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    from tests.conftest import verified_login

    verified_login(client, admin)
    response = client.post(f"/staff/{target.pk}/deactivate/", {"csrfmiddlewaretoken": "forged"})
    assert response.status_code == 403
    assert "did not come from this site, so nothing was changed" in response.content.decode()
    target.refresh_from_db()
    assert target.is_active
    assert AuditEntry.objects.filter(object_type="csrf", outcome="denied").count() == 1


def test_sign_out_ends_the_session(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    client = login(StaffFactory(hospital=network_a.regional).user)
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert client.get("/")["Location"] == "/accounts/login/?next=/"


@pytest.mark.parametrize("username", ["", "x" * 500, "<script>alert(1)</script>"])
def test_junk_in_the_login_form_gets_a_message_not_a_crash(username: str, db) -> None:  # type: ignore[no-untyped-def]
    response = _sign_in(Client(), username, "whatever")
    assert response.status_code == 200
    text = response.content.decode()
    assert "<script>alert(1)</script>" not in text
    assert "Please enter a correct username and password" in text or "This field is required." in text


def test_wrong_current_passwords_on_the_change_page_are_audited_and_lock_out(network_a: Network, settings) -> None:  # type: ignore[no-untyped-def]
    _person(network_a.regional)
    client = Client()
    _sign_in(client, "s.ivanov")
    new = {"new_password1": "Tula-Winter-Night-42", "new_password2": "Tula-Winter-Night-42"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/accounts/password/", {"old_password": "guess", **new}, REMOTE_ADDR="10.20.30.40")
        assert "Your old password was entered incorrectly" in response.content.decode()
    response = client.post("/accounts/password/", {"old_password": "guess", **new}, REMOTE_ADDR="10.20.30.40")
    assert response.status_code == 429  # the limit is reached: the same pause as on the sign-in page
    assert AuditEntry.objects.filter(outcome="denied", detail__contains="wrong current password").count() == (
        settings.AXES_FAILURE_LIMIT
    )
    # The right password no longer helps from this address: the guessing stopped here.
    response = client.post("/accounts/password/", {"old_password": PASSWORD, **new}, REMOTE_ADDR="10.20.30.40")
    assert response.status_code == 429
    assert User.objects.get(username="s.ivanov").check_password(PASSWORD)


def test_activity_keeps_the_session_alive(network_a: Network) -> None:
    from django.contrib.sessions.models import Session

    _person(network_a.regional)
    client = Client()
    _sign_in(client, "s.ivanov")
    key = client.session.session_key
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timedelta(minutes=1))  # nearly idle
    assert client.get("/").status_code == 200
    remaining = Session.objects.get(pk=key).expire_date - timezone.now()
    assert remaining > timedelta(minutes=29)  # the request restarted the 30-minute idle clock


@pytest.mark.parametrize("username", ["a\x00b", "x" * 151])
def test_a_nul_or_overlong_username_is_refused_not_a_server_error(username: str, db) -> None:  # type: ignore[no-untyped-def]
    response = _sign_in(Client(), username, "whatever")
    assert response.status_code == 200
    assert AuditEntry.objects.get().action == "login_failure"


@pytest.mark.parametrize(
    ("address", "stored"),
    [("2001:DB8::0:1", "2001:db8::1"), ("10.1.2.3", "10.1.2.3"), ("not-an-address", "0.0.0.0")],
)
def test_the_client_address_is_recorded_as_stored_and_the_chain_still_verifies(
    address: str, stored: str | None, network_a: Network
) -> None:
    from django.core.management import call_command

    _person(network_a.regional)
    _sign_in(Client(), "s.ivanov", ip=address)
    assert AuditEntry.objects.get(action="login").ip == stored
    call_command("verify_audit")  # raises if the stored row no longer matches its hash
