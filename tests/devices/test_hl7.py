"""An analyser posts HL7 v2 ORU^R01 messages with its token: results are stored under its hospital with flags,
a critical one raises an alert, and every message gets an HL7 ACK that says what became of it."""

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from devices import results
from devices.hl7 import CONTENT_TYPE, ack_read
from devices.models import Device
from diagnostics.models import LabAlert, LabMessage, Observation
from hospitals.models import AuditEntry, User
from patients.models import Patient
from tests.conftest import Network, PatientFactory
from tests.devices.conftest import token_for

pytestmark = [pytest.mark.usefixtures("lab_reference")]

URL = "/api/v1/device/hl7"


def hl7_time(minutes_ago: int = 30) -> str:
    return (timezone.localtime() - datetime.timedelta(minutes=minutes_ago)).strftime("%Y%m%d%H%M%S%z")


def oru(
    record: str, *obx: str, control_id: str = "MSG-1", kind: str = "ORU^R01^ORU_R01", newline: str = "\r", ago: int = 30
) -> str:
    """An ORU^R01 as an analyser writes it, taken `ago` minutes ago; each OBX given without its set id."""
    taken = hl7_time(ago)
    lines = [
        f"MSH|^~\\&|BC5150|TULA_LAB|MHOSPITAL|MH|{taken}||{kind}|{control_id}|P|2.5.1",
        f"PID|1||{record}^^^TULA^MR||Ivanov^Ivan",
        f"OBR|1||S-1|24323-8^Metabolic panel^LN|||{taken}",
        *(f"OBX|{n}|{row}" for n, row in enumerate(obx, start=1)),
    ]
    return newline.join(lines) + newline


GLUCOSE = "NM|2345-7^Glucose^LN||7.9|mmol/L|3.9-6.1|H|||F"
HBA1C = "NM|4548-4^HbA1c^LN||5.1|%|4.0-6.0|N|||F"
POTASSIUM_LOW = "NM|2823-3^Potassium^LN||3.1|mmol/L|3.5-5.1|L|||F"
TROPONIN = "NM|10839-9^Troponin I^LN||0.45|ng/mL|<0.04|HH|||F"


@pytest.fixture
def post(analyser: Device, tula_admin: User, django_capture_on_commit_callbacks) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """Post a message as the analyser, running what the commit queues (the worker's task, in eager mode)."""
    _, plain = token_for(analyser, tula_admin)

    def send(body: str | bytes, content_type: str = CONTENT_TYPE, token: str | None = plain) -> object:
        headers = {"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(URL, body, content_type=content_type, **headers)

    return send


def _ack(response: object) -> tuple[str, str, list[str]]:
    assert response["Content-Type"].startswith(CONTENT_TYPE)  # type: ignore[index]
    return ack_read(response.content.decode())  # type: ignore[attr-defined]


def test_an_oru_with_several_results_is_stored_with_flags_and_answered_aa(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional, sex="male", birth_date=datetime.date(1970, 1, 1))
    response = post(oru(patient.record_number, GLUCOSE, HBA1C, POTASSIUM_LOW))

    assert response.status_code == 200
    assert _ack(response) == ("AA", "MSG-1", [])
    ack = response.content.decode()
    assert ack.startswith("MSH|^~\\&|MHOSPITAL|MH|BC5150|TULA_LAB|")  # sender and receiver swapped
    observations = {o.test.short_name: o for o in Observation.objects.select_related("test")}
    assert {name: o.flag for name, o in observations.items()} == {"GLU": "high", "HbA1c": "normal", "K": "low"}
    assert all(o.patient == patient and o.hospital == network_a.regional for o in observations.values())
    assert observations["GLU"].value == Decimal("7.9") and observations["GLU"].unit == "mmol/L"
    message = LabMessage.objects.get()
    assert (message.source, message.status, message.stored) == ("hl7", "done", 3)
    assert message.raw.startswith("MSH|") and "OBX|3|" in message.raw  # kept as it came
    entry = AuditEntry.objects.get(object_type="diagnostics.labmessage", patient_id=str(patient.pk))
    assert entry.detail == "3 lab results from HL7 v2 message MSG-1, 0 critical"


def test_segments_may_end_with_newlines_and_the_body_be_text_plain(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = post(oru(patient.record_number, GLUCOSE, newline="\r\n"), content_type="text/plain")
    assert _ack(response)[0] == "AA" and Observation.objects.get().patient == patient


# The ORU^R01 example of the HL7 v2.4 standard (chapter 7), which python-hl7 uses in its documentation and
# tests: a structured numeric (SN) glucose in mg/dL, a range written "70_105", the LOINC long name where the
# coding system should be, and a date in 2002.
STANDARD_EXAMPLE = "\r".join(
    [
        "MSH|^~\\&|GHH LAB|ELAB-3|GHH OE|BLDG4|200202150930||ORU^R01|CNTRL-3456|P|2.4",
        "PID|||555-44-4444||EVERYWOMAN^EVE^E^^^^L|JONES|19620320|F|||153 FERNWOOD DR.^^STATESVILLE^OH^35292"
        "||(206)3345232|(206)752-121||||AC555444444||67-A4335^OH^20030520",
        "OBR|1|845439^GHH OE|1045813^GHH LAB|15545^GLUCOSE|||200202150730|||||||||555-55-5555^PRIMARY^PATRICIA P"
        "^^^^MD^^|||||||||F||||||444-44-4444^HIPPOCRATES^HOWARD H^^^^MD",
        "OBX|1|SN|1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN||^182|mg/dl|70_105|H|||F",
    ]
)


def test_the_hl7_standards_example_message_is_stored_as_a_glucose_in_mmol_per_litre(  # type: ignore[no-untyped-def]
    network_a: Network, post
) -> None:
    patient = PatientFactory(hospital=network_a.regional, record_number="555-44-4444", sex="female")
    response = post(STANDARD_EXAMPLE)

    assert _ack(response) == ("AA", "CNTRL-3456", [])
    assert response.content.decode().startswith("MSH|^~\\&|GHH OE|BLDG4|GHH LAB|ELAB-3|")  # the addressee answers
    observation = Observation.objects.select_related("test").get()
    assert observation.patient == patient and observation.test.short_name == "GLU"
    assert (observation.value_sent, observation.unit_sent) == ("182", "mg/dl")  # kept as sent
    assert observation.unit == "mmol/L" and abs(observation.value - Decimal("10.1")) < Decimal("0.05")
    assert observation.flag == "high"
    assert timezone.localtime(observation.observed_at).strftime("%Y-%m-%d %H:%M") == "2002-02-15 07:30"


def test_escape_sequences_repeated_order_groups_and_notes_are_read(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    """Two OBR groups, a note between them, and names with HL7 escapes (\\T\\ is "&", \\S\\ is "^")."""
    patient = PatientFactory(hospital=network_a.regional)
    taken = hl7_time()
    body = "\r".join(
        [
            f"MSH|^~\\&|BC5150|TULA_LAB|MHOSPITAL|MH|{taken}||ORU^R01^ORU_R01|ESC-1|P|2.5.1",
            f"PID|1||{patient.record_number}^^^TULA^MR||Ivanov^Ivan",
            f"OBR|1||S-1|24323-8^Metabolic panel^LN|||{taken}",
            "OBX|1|NM|2345-7^Glucose \\T\\ fasting^LN||5.2|mmol/L|3.9-6.1|N|||F",
            "NTE|1||Sample slightly haemolysed \\F\\ repeat advised",
            f"OBR|2||S-2|CARDIAC^Cardiac markers \\S\\ urgent^L|||{taken}",
            "OBX|1|NM|2823-3^Potassium^LN||6.4|mmol/L|3.5-5.1|HH|||F",
        ]
    )
    response = post(body)

    assert _ack(response) == ("AA", "ESC-1", [])
    observations = {o.test.short_name: o for o in Observation.objects.select_related("test")}
    assert set(observations) == {"GLU", "K"}
    assert observations["GLU"].name_sent == "Glucose & fasting"
    assert observations["K"].flag == "critical_high"
    assert LabAlert.objects.get().observation == observations["K"]


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        # A field separator other than the one the MSH declares everywhere else: the segments do not line up.
        (
            "MSH#^~\\&#BC5150#TULA_LAB#MH#MH#20261128##ORU^R01#S-1#P#2.5\rPID|1||TUL-1\rOBX|1|NM|GLU||5|mmol/L",
            "no results",
        ),
        # Cut off in the middle of the MSH.
        ("MSH|^~\\&|BC5150|TULA_LAB", "Only results are taken (ORU^R01)"),
    ],
)
def test_a_wrong_separator_or_a_truncated_message_is_refused_ar(body: str, sentence: str, post) -> None:  # type: ignore[no-untyped-def]
    response = post(body)
    assert response.status_code == 400
    code, _control_id, errors = _ack(response)
    assert code == "AR" and sentence in errors[0]
    assert not LabMessage.objects.exists() and not Observation.objects.exists()


def test_a_critical_troponin_raises_an_alert(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = post(oru(patient.record_number, TROPONIN))
    assert _ack(response)[0] == "AA"
    alert = LabAlert.objects.get()
    assert alert.patient == patient and alert.observation.flag == "critical_high"


def test_the_same_message_twice_is_stored_once_and_answered_the_same(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    body = oru(patient.record_number, GLUCOSE, "NM|2345-7^Glucose^LN||high|mmol/L|||||F", control_id="DUP-7")
    first, second = post(body), post(body)

    assert first.status_code == second.status_code == 200
    assert _ack(first) == _ack(second)
    assert _ack(first)[:2] == ("AE", "DUP-7")
    assert LabMessage.objects.count() == 1 and Observation.objects.count() == 1


def test_a_control_id_used_again_for_another_message_stores_that_message_too(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    """Many analysers count control ids from 1 again after a restart."""
    patient = PatientFactory(hospital=network_a.regional)
    before = post(oru(patient.record_number, GLUCOSE, control_id="1", ago=600))
    after_restart = post(oru(patient.record_number, HBA1C, control_id="1", ago=5).encode("utf-8-sig"))

    assert _ack(before)[:2] == _ack(after_restart)[:2] == ("AA", "1")
    assert sorted(o.test.short_name for o in Observation.objects.all()) == ["GLU", "HbA1c"]
    assert LabMessage.objects.count() == 2


def test_mixed_good_and_bad_rows_store_the_good_and_answer_ae_naming_the_bad(network_a: Network, post) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    body = oru(
        patient.record_number,
        GLUCOSE,
        "NM|2823-3^Potassium^LN||see comment|mmol/L|||||F",
        "NM|2951-2^Sodium^LN||140|mmol/L|||||F|||2025x",
        "NM|2345-7^Glucose^LN||6.0|mmol/L|||||D",  # a device may not withdraw a result
        "NM|2345-7^Glucose^LN|||mmol/L|||||X",  # could not be obtained: nothing to store, nothing wrong
    )
    response = post(body)

    code, control_id, errors = _ack(response)
    assert response.status_code == 200 and (code, control_id) == ("AE", "MSG-1")
    assert len(errors) == 3
    assert "“see comment” of Potassium is not a number" in errors[0]
    assert "“2025x”" in errors[1] and "not an HL7 time" in errors[1]
    assert "cannot withdraw or delete a result" in errors[2]
    ack = response.content.decode()
    assert "ERR|OBX^2^5^102&Data type error&HL70357|OBX^2^5|102^Data type error^HL70357|E||||The value “see" in ack
    assert [o.test.short_name for o in Observation.objects.all()] == ["GLU"]
    message = LabMessage.objects.get()
    assert message.status == "partial" and [e["where"] for e in message.errors] == ["OBX 3", "OBX 4", "OBX 2"]


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ("", "The message is empty"),
        ("hello, analyser here", "must begin with an MSH segment"),
        ("MSH|^~\\&|BC5150|TULA_LAB|MH|MH|20261128||ADT^A01|A-1|P|2.5\rPID|1||X", "Only results are taken (ORU^R01)"),
        ("MSH|^~\\&|BC5150|TULA_LAB|MH|MH|20261128||ORU^R01||P|2.5\rOBX|1|NM|GLU||5|mmol/L", "no control id"),
        ("MSH|^~\\&|BC5150|TULA_LAB|MH|MH|20261128||ORU^R01|N-1|P|2.5\rPID|1||X", "no results"),
    ],
)
def test_what_is_not_a_readable_oru_is_refused_ar_with_400(body: str, sentence: str, analyser: Device, post) -> None:  # type: ignore[no-untyped-def]
    response = post(body)
    assert response.status_code == 400
    code, _control_id, errors = _ack(response)
    assert code == "AR" and sentence in errors[0]
    assert not LabMessage.objects.exists()
    entry = AuditEntry.objects.get(outcome="invalid", object_type="devices.device")
    assert entry.object_id == str(analyser.pk) and "refused" in entry.detail


def test_the_ack_of_a_refused_message_names_its_control_id(post) -> None:  # type: ignore[no-untyped-def]
    response = post(oru("TUL-1", GLUCOSE, kind="ORU^R30", control_id="R30-1"))
    assert _ack(response)[:2] == ("AR", "R30-1")


@pytest.mark.parametrize("token", [None, "mhd_0123456789ab_" + "A" * 43])
def test_without_a_valid_token_nothing_is_taken(token: str | None, post) -> None:  # type: ignore[no-untyped-def]
    response = Client().post(
        URL,
        oru("TUL-1", GLUCOSE),
        content_type=CONTENT_TYPE,
        **({"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}),
    )
    assert response.status_code == 401
    assert not LabMessage.objects.exists()


def test_a_patient_of_another_hospital_is_not_matched_and_waits_for_review(  # type: ignore[no-untyped-def]
    network_a: Network, network_b: Network, post
) -> None:
    stranger = PatientFactory(hospital=network_b.regional, record_number="KOS-0001")
    response = post(oru(stranger.record_number, TROPONIN))

    assert _ack(response)[0] == "AA"
    observation = Observation.objects.get()
    assert observation.patient is None and observation.review == Observation.Review.PATIENT
    assert observation.hospital == network_a.regional and observation.record_number == "KOS-0001"
    assert not LabAlert.objects.exists()  # no alert for a patient nobody has matched
    assert not Patient.objects.get(pk=stranger.pk).observations.exists()


def test_an_oversized_body_is_refused_413(post) -> None:  # type: ignore[no-untyped-def]
    response = post(oru("TUL-1", *[GLUCOSE] * 20000))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large" and "at most 1048576 bytes" in response.json()["detail"]


def test_a_message_left_queued_is_drained_by_the_sweep(network_a: Network, analyser: Device, settings) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    answer = results.hl7_receive(device=analyser, data=oru(patient.record_number, GLUCOSE).encode())  # task lost
    assert answer.code == "AA" and LabMessage.objects.get().status == "queued"

    settings.LAB_STUCK_MINUTES = 0
    assert results.hl7_messages_requeue_stuck() == 1  # the drain runs eagerly here

    message = LabMessage.objects.get()
    assert message.status == "done" and Observation.objects.get().patient == patient
    assert results.hl7_messages_requeue_stuck() == 0
    assert results.hl7_messages_drain() == 0  # run again: nothing stored twice
    assert Observation.objects.count() == 1


def test_a_backlog_is_drained_in_batches_with_the_same_outcome_as_one_by_one(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device, django_assert_max_num_queries
) -> None:
    patients = [PatientFactory(hospital=network_a.regional) for _ in range(3)]
    bodies = [oru(patients[n % 3].record_number, GLUCOSE, HBA1C, control_id=f"B-{n}", ago=30 + n) for n in range(30)]
    bodies.append(oru(patients[0].record_number, TROPONIN, "NM|2823-3^K^LN||bad|mmol/L|||||F", control_id="B-X"))
    bodies.append(bodies[0].replace("B-0", "B-0-again"))  # the same results in another message
    for body in bodies:
        results.hl7_receive(device=analyser, data=body.encode())  # queued, no worker yet

    assert LabMessage.objects.get(control_id="B-X").status == "partial"  # critical: stored when it came

    with django_assert_max_num_queries(30):  # a few queries for the batch, not a few per message
        assert results.hl7_messages_drain(limit=100) == 31

    assert Observation.objects.count() == 30 * 2 + 1
    statuses = dict(LabMessage.objects.values_list("control_id", "status"))
    assert statuses["B-X"] == "partial" and statuses["B-0-again"] == "done" and statuses["B-7"] == "done"
    assert LabMessage.objects.get(control_id="B-0-again").stored == 0
    assert LabMessage.objects.get(control_id="B-7").stored == 2
    assert LabAlert.objects.get().patient == patients[0]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_drains_what_the_endpoint_accepted(
    network_a: Network, analyser: Device, tula_admin: User, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    import time

    from django.core.cache import cache

    cache.delete(results.DRAIN_PENDING)  # no nudge left over from an earlier run
    patient = PatientFactory(hospital=network_a.regional)
    _, plain = token_for(analyser, tula_admin)
    response = Client().post(
        URL,
        oru(patient.record_number, GLUCOSE, TROPONIN),
        content_type=CONTENT_TYPE,
        HTTP_AUTHORIZATION=f"Device {plain}",
    )
    assert _ack(response)[0] == "AA"  # answered before it is stored

    deadline = time.monotonic() + 60
    while LabMessage.objects.get().status == "queued":
        assert time.monotonic() < deadline, "the worker did not store the message within 60 s"
        time.sleep(0.05)
    assert LabMessage.objects.get().status == "done" and Observation.objects.filter(patient=patient).count() == 2
    assert LabAlert.objects.get().patient == patient


def test_the_device_page_shows_what_became_of_its_messages_without_patient_data(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device, tula_admin: User, post, login
) -> None:
    """The hospital's admin sees whether the analyser's messages get through, and why a row was refused."""
    patient = PatientFactory(hospital=network_a.regional, record_number="TUL-7731", family_name="Соколова")
    post(oru(patient.record_number, GLUCOSE, control_id="OK-1"))
    post(oru(patient.record_number, GLUCOSE, "NM|2823-3^Potassium^LN||see comment|mmol/L|||||F", control_id="BAD-2"))
    page = login(tula_admin).get(f"/devices/{analyser.pk}/").content.decode()

    rows = page.split('data-testid="device-message"')[1:]
    assert len(rows) == 2
    assert 'data-status="partial"' in rows[0] and "BAD-2" in rows[0] and "stored, with errors" in rows[0]
    assert "OBX 2" in rows[0] and "“see comment” of Potassium is not a number" in rows[0]
    assert 'data-status="done"' in rows[1] and "OK-1" in rows[1]
    assert "TUL-7731" not in page and "Соколова" not in page  # results are read on the patient's page


def _batch(*messages: str, file: bool = False) -> str:
    taken = hl7_time()
    lines = [f"BHS|^~\\&|LIS|TULA_LAB|MHOSPITAL|MH|{taken}||||B-42"]  # BHS-11: the batch control id
    lines += [segment for message in messages for segment in message.strip("\r").split("\r")]
    lines.append(f"BTS|{len(messages)}")
    if file:
        lines = [f"FHS|^~\\&|LIS|TULA_LAB|MHOSPITAL|MH|{taken}||||F-1|F-1", *lines, "FTS|1"]
    return "\r".join(lines) + "\r"


def _msas(response: object) -> list[tuple[str, str]]:
    segments = response.content.decode().strip("\r").split("\r")  # type: ignore[attr-defined]
    return [tuple(segment.split("|")[1:3]) for segment in segments if segment.startswith("MSA|")]  # type: ignore[misc]


def test_a_batch_is_taken_message_by_message_and_answered_with_a_batch_of_acks(  # type: ignore[no-untyped-def]
    network_a: Network, post
) -> None:
    """Lab middleware sends a run as one HL7 batch: each message is kept (or refused) as if it came alone."""
    patient = PatientFactory(hospital=network_a.regional)
    record = patient.record_number
    body = _batch(
        oru(record, GLUCOSE, control_id="B-1"),
        oru(record, HBA1C, "NM|2823-3^Potassium^LN||see comment|mmol/L|||||F", control_id="B-2"),
        oru(record, GLUCOSE, kind="ADT^A01", control_id="B-3"),
        oru(record, TROPONIN, control_id="B-4"),
    )
    response = post(body)

    assert response.status_code == 200
    segments = response.content.decode().strip("\r").split("\r")
    assert segments[0].startswith("BHS|^~\\&|MHOSPITAL|MH|LIS|TULA_LAB|")
    assert segments[0].endswith("|B-42")  # BHS-12: the batch answered
    assert segments[-1] == "BTS|4"
    assert _msas(response) == [("AA", "B-1"), ("AE", "B-2"), ("AR", "B-3"), ("AA", "B-4")]
    assert sorted(LabMessage.objects.values_list("control_id", flat=True)) == ["B-1", "B-2", "B-4"]
    stored = {o.test.short_name for o in Observation.objects.select_related("test")}
    assert stored == {"GLU", "HbA1c", "hs-TnI"}  # B-2's potassium refused, the rest of it kept
    assert LabAlert.objects.get().patient == patient

    again = post(body)  # the whole run sent again: the same answers, nothing stored twice
    assert _msas(again) == _msas(response) and Observation.objects.count() == 3


def test_a_file_of_batches_is_answered_as_a_file_and_an_empty_batch_is_refused(  # type: ignore[no-untyped-def]
    network_a: Network, post
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    response = post(_batch(oru(patient.record_number, GLUCOSE, control_id="F-1"), file=True))
    segments = response.content.decode().strip("\r").split("\r")
    assert segments[0].startswith("FHS|") and segments[1].startswith("BHS|") and segments[-1] == "FTS|1"
    assert _msas(response) == [("AA", "F-1")]

    empty = post(_batch())
    assert empty.status_code == 400
    assert _msas(empty)[0][0] == "AR" and "The batch holds no message" in empty.content.decode()


def test_a_critical_result_is_stored_at_once_while_others_wait_for_the_worker(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device, tula_admin: User
) -> None:
    """With the worker behind (here: not started at all), a routine message waits in the queue, but a
    critical troponin is stored by the request itself and its alert is raised."""
    patient = PatientFactory(hospital=network_a.regional)
    _, plain = token_for(analyser, tula_admin)
    client = Client(HTTP_AUTHORIZATION=f"Device {plain}")

    routine = client.post(URL, oru(patient.record_number, GLUCOSE, control_id="R-1"), content_type=CONTENT_TYPE)
    critical = client.post(URL, oru(patient.record_number, TROPONIN, control_id="C-1"), content_type=CONTENT_TYPE)

    assert _ack(routine)[0] == _ack(critical)[0] == "AA"
    assert LabMessage.objects.get(control_id="R-1").status == "queued"
    assert LabMessage.objects.get(control_id="C-1").status == "done"
    assert LabAlert.objects.get().observation.test.short_name == "hs-TnI"
    assert not Observation.objects.filter(message__control_id="R-1").exists()


def test_the_worker_stores_what_the_request_read_without_reading_the_message_again(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device, monkeypatch
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    results.hl7_receive(device=analyser, data=oru(patient.record_number, GLUCOSE, HBA1C).encode())  # queued
    assert LabMessage.objects.get().reading is not None

    def unreadable(*args: object, **kwargs: object) -> None:
        raise AssertionError("the drain read the raw message again")

    monkeypatch.setattr(results.hl7, "oru_read", unreadable)
    assert results.hl7_messages_drain() == 1

    message = LabMessage.objects.get()
    assert message.status == "done" and message.stored == 2 and message.reading is None  # not kept twice
    glucose = Observation.objects.get(test__short_name="GLU")
    assert glucose.patient == patient and glucose.value == Decimal("7.9") and glucose.flag == "high"


def test_a_message_queued_without_its_reading_is_read_again_by_the_worker(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device
) -> None:
    """Messages kept before the request's reading was kept with them still drain."""
    patient = PatientFactory(hospital=network_a.regional)
    results.hl7_receive(device=analyser, data=oru(patient.record_number, GLUCOSE).encode())
    LabMessage.objects.update(reading=None)

    assert results.hl7_messages_drain() == 1
    assert LabMessage.objects.get().status == "done" and Observation.objects.get().patient == patient


def test_a_batch_is_kept_with_a_few_queries_and_a_message_in_it_twice_is_kept_once(  # type: ignore[no-untyped-def]
    network_a: Network, analyser: Device, django_assert_max_num_queries
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    record = patient.record_number
    messages = [oru(record, GLUCOSE, control_id=f"Q-{n}", ago=30 + n) for n in range(40)]
    with django_assert_max_num_queries(10):  # the messages known, one insert, the reference tables: not per message
        answer = results.hl7_receive(device=analyser, data=_batch(*messages, messages[3]).encode())

    msas = [tuple(s.split("|")[1:3]) for s in answer.ack.split("\r") if s.startswith("MSA|")]
    assert msas == [("AA", f"Q-{n}") for n in range(40)] + [("AA", "Q-3")]
    assert LabMessage.objects.count() == 40
    kept = LabMessage.objects.get(control_id="Q-5")  # (on PostgreSQL written by COPY: every column as it should)
    assert (kept.status, kept.errors, kept.stored, kept.raw) == ("queued", [], 0, messages[5].strip("\r"))
    assert kept.reading["results"][0]["value"] == "7.9" and kept.received_at is not None
    assert kept.source == "hl7" and kept.device_id == analyser.pk and kept.hospital_id == analyser.hospital_id
    assert results.hl7_messages_drain() == 40
    assert Observation.objects.filter(patient=patient).count() == 40


def test_a_batch_with_messages_kept_before_and_a_control_id_used_again_is_answered_as_one_by_one(  # type: ignore[no-untyped-def]
    network_a: Network, post
) -> None:
    patient = PatientFactory(hospital=network_a.regional)
    record = patient.record_number
    first = oru(record, GLUCOSE, "NM|2345-7^Glucose^LN||high|mmol/L|||||F", control_id="K-1", ago=90)
    assert _msas(post(_batch(first))) == [("AE", "K-1")]
    restarted = oru(record, HBA1C, control_id="K-1", ago=10)  # the analyser counts from 1 again
    response = post(_batch(first, restarted, oru(record, POTASSIUM_LOW, control_id="K-2")))

    assert _msas(response) == [("AE", "K-1"), ("AA", "K-1"), ("AA", "K-2")]
    assert "“high” of Glucose is not a number" in response.content.decode()  # the first answer, repeated
    assert LabMessage.objects.count() == 3
    assert sorted(o.test.short_name for o in Observation.objects.select_related("test")) == ["GLU", "HbA1c", "K"]


_MSH = "MSH|^~\\&|BC5150|TULA_LAB|MHOSPITAL|MH|20261128100500+0300||ORU^R01^ORU_R01|{id}|P|2.5.1"
READER_CORPUS = [
    oru("TUL-1", GLUCOSE, HBA1C, POTASSIUM_LOW, TROPONIN),
    # PID-3 repeated, the MR one second; PID-2 alone; two patients in one message; lower-case segment names.
    f"{_MSH.format(id='R-1')}\rPID|1||123^^^TULA^PI~TUL-2^^^TULA^MR\rOBR|1||S|P|||20261128093000\rOBX|1|NM|GLU||5|mmol/L",
    f"{_MSH.format(id='R-2')}\rPID|1|TUL-3\robr|1||S|P|||202611280930\robx|1|NM|2345-7^Glucose^LN||5,4|mmol/L|||||F",
    f"{_MSH.format(id='R-3')}\rPID|1||A\rOBX|1|NM|X|||\rPID|2||B&sub^^^T^MR\rOBX|1|NM|Y||7|",
    # SN values; a local code with a LOINC alternate; the unit in OBX-6.2; subcomponents; trailing separators.
    f"{_MSH.format(id='R-4')}\rPID|1||T\rOBX|1|SN|TNI^Troponin^L^10839-9^Troponin I^LN||<^0.01|ng/mL||||F|||",
    f"{_MSH.format(id='R-5')}\rPID|1||T\rOBX|1|SN|K||^1^:^2|^mmol/L|1&2-3|H&X|||R||||20261128",
    f"{_MSH.format(id='R-6')}\rPID|1||T\rOBX|1|NM|K^^LN||>^5\rOBX|2\rOBX|3|NM\rNTE|1||note\rZXX|1|a~b",
    # statuses: not a result, withdrawn, a bad time; an OBX before any PID or OBR.
    f"{_MSH.format(id='R-7')}\rOBX|1|NM|GLU||5|mmol/L||||X\rOBX|2|NM|GLU||5|mmol/L|||||W\rOBX|3|NM|GLU||5||||||F|||2025x",
    # not taken whole: another type, no control id, no OBX; blank fields of the MSH.
    _MSH.format(id="R-8").replace("ORU^R01^ORU_R01", "ADT^A01") + "\rPID|1||T",
    _MSH.format(id="") + "\rOBX|1|NM|GLU||5",
    _MSH.format(id="R-9") + "\rPID|1||T",
    "MSH|^~\\&||||||||ORU^R01|R-10\rOBX|1|NM|GLU||5|mmol/L|||||F|||20261128",
]


@pytest.mark.parametrize("text", READER_CORPUS)
def test_the_plain_reader_reads_every_message_as_python_hl7_does(text: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Messages without escape sequences are split by hand, not by python-hl7: the reading is the same."""
    from zoneinfo import ZoneInfo

    from devices import hl7

    def read() -> object:
        try:
            return hl7.oru_read(text, local=ZoneInfo("Europe/Moscow"))
        except hl7.Hl7Refused as refused:
            return (refused.reason, refused.code, refused.location, refused.header)

    assert hl7._plain(hl7._segments(text)) is not None  # the corpus takes the quick way
    quick = read()
    monkeypatch.setattr(hl7, "_plain", lambda text: None)
    assert quick == read()
