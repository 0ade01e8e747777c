"""Russian and English throughout, a language switcher, and times in the hospital's own time zone."""

import gettext
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from django.test import Client

from hospitals.audit import Action, audit_record
from hospitals.models import Staff
from tests.conftest import HospitalFactory, StaffFactory

PO = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES" / "django.po"


def test_the_platform_speaks_russian_by_default(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "ru"
    page = Client().get("/accounts/login/").content.decode()
    assert '<html lang="ru">' in page
    assert "Войти" in page and "Имя пользователя" in page and "Пароль" in page
    assert "Sign in" not in page


def test_the_browser_language_and_the_switcher_choose_the_language(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "ru"
    client = Client()
    assert "Sign in" in client.get("/accounts/login/", headers={"accept-language": "en-GB,en;q=0.9"}).content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert "Sign in" in client.get("/accounts/login/").content.decode()
    client.post("/i18n/setlang/", {"language": "ru", "next": "/accounts/login/"})
    assert "Войти" in client.get("/accounts/login/").content.decode()


def test_error_messages_are_translated_too(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LANGUAGE_CODE = "ru"
    clinician = StaffFactory().user
    from tests.conftest import verified_login

    page = verified_login(Client(), clinician).get("/audit/").content.decode()
    assert "Журнал аудита" in page or "аудит" in page.lower()
    assert "Only hospital admins" not in page


def test_every_message_has_a_russian_translation_and_the_catalogue_is_compiled() -> None:
    source = PO.read_text(encoding="utf-8")
    entries = re.split(r"\n\n+", source.strip())[1:]  # the first block is the header
    untranslated = [e for e in entries if re.search(r'^msgstr(\[\d\])? ""$(?!\n")', e, re.M)]
    assert not untranslated, untranslated[:3]
    assert "#, fuzzy" not in source
    catalogue = gettext.GNUTranslations(PO.with_suffix(".mo").open("rb"))
    for entry in entries:
        if "msgid_plural" in entry or not (found := re.search(r'^msgid "(.+)"$', entry, re.M)):
            continue  # multi-line and plural ids are covered by the compiled count below
        context = re.search(r'^msgctxt "(.+)"$', entry, re.M)
        msgid = found.group(1).encode().decode("unicode_escape").encode("latin-1").decode()
        translated = catalogue.pgettext(context.group(1), msgid) if context else catalogue.gettext(msgid)
        assert translated != msgid or msgid in {"M-Hospital"}, f"{msgid!r} is missing from django.mo: compile it"


def test_times_are_shown_in_the_hospitals_time_zone(db, login) -> None:  # type: ignore[no-untyped-def]
    vladivostok = HospitalFactory(name="Vladivostok station clinic", time_zone="Asia/Vladivostok")
    admin = StaffFactory(hospital=vladivostok, role=Staff.Role.HOSPITAL_ADMIN).user
    entry = audit_record(request=None, user=admin, action=Action.VIEW, object_type="x")
    page = login(admin).get("/audit/").content.decode()
    local = entry.at.astimezone(ZoneInfo("Asia/Vladivostok")).strftime("%Y-%m-%d %H:%M:%S")
    moscow = entry.at.astimezone(ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%d %H:%M:%S")
    assert local in page
    assert moscow not in page
