"""Shared fixtures: two hospital networks, staff of every role, and signed-in clients.

Network A: Moscow (central) <- Tula (regional). Network B: Kazan (central) <- Kostroma (regional).
Staff of network A never see network B.
"""

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass

import factory
import pytest
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals.models import Hospital, Staff, User

REQUIRE_SERVICES = os.environ.get("MHOSPITAL_REQUIRE_SERVICES") == "1"


def need(what: str, available: bool) -> None:
    """Skip a test whose real service is missing here; under CI's flag, fail instead."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (MHOSPITAL_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital

    name = factory.Sequence(lambda n: f"Hospital {n}")
    kind = Hospital.Kind.REGIONAL
    region = "Test Oblast"
    time_zone = "Europe/Moscow"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Ivan"
    last_name = factory.Sequence(lambda n: f"Petrov{n}")
    password = "!unusable"


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Staff

    user = factory.SubFactory(UserFactory)
    hospital = factory.SubFactory(HospitalFactory)
    role = Staff.Role.CLINICIAN


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "patients.Patient"

    hospital = factory.SubFactory(HospitalFactory)
    record_number = factory.Sequence(lambda n: f"MR-{n:06d}")
    family_name = factory.Sequence(lambda n: f"Петров{n}")
    given_name = "Иван"
    patronymic = "Сергеевич"
    sex = "male"
    birth_date = datetime.date(1961, 3, 12)


def consultation_make(patient, *, state: str = "requested", urgency: str = "urgent", **fields):  # type: ignore[no-untyped-def]
    """A consultation of the patient's hospital to its central hospital, put straight into `state`."""
    from django.utils import timezone

    from consultations.models import Consultation
    from hospitals.models import Specialty

    specialty, _ = Specialty.objects.get_or_create(
        code="cardiology", defaults={"name_en": "Cardiology", "name_ru": "Кардиология"}
    )
    now = timezone.now()
    return Consultation.objects.create(
        patient=patient,
        requesting_hospital=patient.hospital,
        consulted_hospital=patient.hospital.central_hospital,
        requested_by=fields.pop("requested_by", None) or StaffFactory(hospital=patient.hospital).user,
        specialty=specialty,
        urgency=urgency,
        question="Chest pain for 3 hours, ST elevation?",
        condition="BP 150/90, HR 96",
        state=state,
        requested_at=now,
        deadline=fields.pop("deadline", now + timezone.timedelta(hours=24)),
        **fields,
    )


@dataclass
class Network:
    central: Hospital
    regional: Hospital


@pytest.fixture(autouse=True)
def english(settings):  # type: ignore[no-untyped-def]
    """Assertions read English messages; tests/mhospital/test_i18n.py checks the Russian."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Uploaded files of a test land in its own folder, never in the developer's media."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True, scope="session")
def channel_prefix_of_this_run():  # type: ignore[no-untyped-def]
    """Redis pub/sub is one namespace for every database of a server: two test runs on one machine would hear
    each other's groups (hospital.1, ...). This run's layer, and the workers and servers it starts (they
    inherit the environment), use a prefix of its own."""
    from django.conf import settings

    prefix = f"mh-test-{os.getpid()}"
    os.environ["CHANNELS_PREFIX"] = prefix
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    if "prefix" in config:
        config["prefix"] = prefix


@pytest.fixture(autouse=True)
def channel_layer_fresh():  # type: ignore[no-untyped-def]
    """Each test gets its own channel layer: channels-redis binds its locks and pools to the event loop that
    first used them, and each asyncio test runs in a loop of its own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def lab_reference_unremembered():  # type: ignore[no-untyped-def]
    """No test sees another's copy of the lab reference tables: a transactional test's flush empties the
    tables without the signals that drop the copy, and a stale copy names tests that are no longer there."""
    from diagnostics.labs import reference_forget

    reference_forget()


@pytest.fixture
def network_a(db) -> Network:  # type: ignore[no-untyped-def]
    moscow = HospitalFactory(name="Central Clinical Hospital No. 1, Moscow", kind=Hospital.Kind.CENTRAL)
    return Network(moscow, HospitalFactory(name="Tula Regional Hospital", central_hospital=moscow))


@pytest.fixture
def network_b(db) -> Network:  # type: ignore[no-untyped-def]
    kazan = HospitalFactory(name="Kazan Central Hospital", kind=Hospital.Kind.CENTRAL)
    return Network(kazan, HospitalFactory(name="Kostroma Regional Hospital", central_hospital=kazan))


def verified_login(client: Client, user: User) -> Client:
    """Sign in; specialists and admins have also confirmed their second factor."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    staff = Staff.objects.filter(user=user).first()
    if not (user.is_superuser or (staff is not None and staff.needs_second_factor)):
        return client
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="phone", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def login() -> Callable[[User], Client]:
    """A fresh client signed in as the user (second factor confirmed where the role needs one)."""

    def sign_in(user: User) -> Client:
        return verified_login(Client(), user)

    return sign_in


@pytest.fixture
def platform_admin(db) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(username="platform", is_superuser=True, is_staff=True)


# Imaging.


@pytest.fixture(autouse=True)
def celery_inline():  # type: ignore[no-untyped-def]
    """Tasks queued by a test run inline, in the test's process and database; tests/diagnostics's
    `celery_worker` fixture turns this off and starts a real worker instead."""
    from mhospital.celery import app

    # The app reads its settings under the CELERY_ namespace: that key is looked up before the plain
    # `task_always_eager`, so only it takes effect.
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER = False


def database_url() -> str:
    """The test database, as a process started by a test (a worker, a listener) must reach it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}{port}/{db['NAME']}"


def dicom_bytes(name: str) -> bytes:
    """A sample file of pydicom or pydicom-data (real images from real modalities) by file name."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, f"{name} is not among pydicom's sample files"
    with open(path, "rb") as sample:
        return sample.read()


def dicom_for(patient, name: str = "CT_small.dcm", **header: str) -> bytes:  # type: ignore[no-untyped-def]
    """A sample DICOM file relabelled for the patient (PatientID = record number) with fresh UIDs unless
    given; `header` overrides any keyword (StudyInstanceUID, SOPInstanceUID, ...)."""
    import io

    import pydicom
    from pydicom.uid import generate_uid

    dataset = pydicom.dcmread(io.BytesIO(dicom_bytes(name)))
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: Cyrillic names, as Russian modalities write them
    dataset.PatientID = patient.record_number
    dataset.PatientName = f"{patient.family_name}^{patient.given_name}"
    dataset.StudyInstanceUID = header.pop("StudyInstanceUID", None) or generate_uid()
    dataset.SeriesInstanceUID = header.pop("SeriesInstanceUID", None) or generate_uid()
    dataset.SOPInstanceUID = header.pop("SOPInstanceUID", None) or generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    for keyword, value in header.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def store_now(patient, data: bytes, source: str = "browser"):  # type: ignore[no-untyped-def]
    """instance_store for the patient, with its on-commit work (the pipeline, inline; the live events) run
    at once even inside a test's transaction."""
    from django.test import TestCase

    from diagnostics.services import instance_store

    with TestCase.captureOnCommitCallbacks(execute=True):
        return instance_store(data=data, hospital_id=patient.hospital_id, source=source, patient=patient)


def study_make(patient, name: str = "CT_small.dcm", **header: str):  # type: ignore[no-untyped-def]
    """An imaging study of the patient with one processed instance (the pipeline runs inline)."""
    return store_now(patient, dicom_for(patient, name, **header)).instance.series.study


# A live server.


@pytest.fixture
def asgi_server(transactional_db):  # type: ignore[no-untyped-def]
    """The real ASGI application (HTTP and WebSockets) under uvicorn on 127.0.0.1, in a thread of this process,
    for browsers (live updates reach them) and HTTP clients such as dicomweb-client. Yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from mhospital.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            application, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the ASGI server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


# Lab results.


@pytest.fixture
def lab_reference(db):  # type: ignore[no-untyped-def]
    """The shipped lab reference tables, fresh: put back if a transactional test emptied them, and no
    process copy left over from another test's edits."""
    from diagnostics.lab_reference import lab_reference_load
    from diagnostics.labs import reference_forget
    from diagnostics.models import LabTest

    if not LabTest.objects.exists():
        lab_reference_load()
    reference_forget()
    yield
    reference_forget()


# The channel layer, listened to as a server process listens.


class LayerListener:
    """Channels in groups, held by an event loop in a thread of its own, as a server process holds its
    sockets' channels. The pub/sub layer keeps subscriptions per event loop, so a channel made in one
    `async_to_sync` call would be gone in the next; the core and in-memory layers work the same way here."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _run(self, coroutine, timeout: float):  # type: ignore[no-untyped-def]
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def channel(self, *groups: str) -> str:
        """A new channel, added to the groups."""

        async def make() -> str:
            name: str = await self.layer.new_channel()
            for group in groups:
                await self.layer.group_add(group, name)
            return name

        return self._run(make(), 10)  # type: ignore[no-any-return]

    def receive(self, channel: str, timeout: float = 5.0) -> dict | None:  # type: ignore[type-arg]
        """The channel's next message, or None if none comes within `timeout` seconds."""
        import asyncio

        async def next_message() -> dict | None:  # type: ignore[type-arg]
            try:
                return await asyncio.wait_for(self.layer.receive(channel), timeout)  # type: ignore[no-any-return]
            except TimeoutError:
                return None

        return self._run(next_message(), timeout + 5)  # type: ignore[no-any-return]

    def close(self) -> None:
        async def shut() -> None:
            close_pools = getattr(self.layer, "close_pools", None)  # Redis layers; in the loop (pub/sub)
            if close_pools is not None:
                await close_pools()

        self._run(shut(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def layer_listener():  # type: ignore[no-untyped-def]
    listener = LayerListener()
    yield listener
    listener.close()
