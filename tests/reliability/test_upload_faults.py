"""Resumable uploads over a link that breaks: requests cut at random offsets, answers lost, delays. The client
resumes as the upload page does (ask the offset, send from there); every file ends stored once, byte for
byte. MHOSPITAL_FAULT_SEED replays a run; MHOSPITAL_FAULT_ROUNDS makes a longer one."""

import hashlib
import os
import secrets
import time
from typing import Any

import pytest
import requests
from django.core.files.storage import default_storage

from diagnostics.models import Instance, Upload
from tests.conftest import Network, PatientFactory, StaffFactory, dicom_for, verified_login
from tests.reliability.fault_proxy import FaultProxy

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("MHOSPITAL_FAULT_SEED", "20261128"))
ROUNDS = int(os.environ.get("MHOSPITAL_FAULT_ROUNDS", "1"))
SAMPLES = ("CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm")
CHUNK = 12_000
ATTEMPTS = 400  # requests a file may take before the test gives up: bounded, however bad the luck


def _session(base: str, user: Any) -> requests.Session:
    """The clinician's browser: the session cookie of a verified sign-in and a CSRF token."""
    from django.test import Client

    client = verified_login(Client(), user)
    csrf = secrets.token_hex(16)  # a 32-character secret, as Django's own cookie holds
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.cookies.set("csrftoken", csrf)
    # A connection per request, so that each meets the link's luck afresh.
    session.headers.update({"X-CSRFToken": csrf, "Referer": f"{base}/", "Connection": "close"})
    return session


def _upload(
    session: requests.Session, base: str, patient_pk: int, name: str, data: bytes
) -> tuple[dict[str, Any], int]:
    """upload.js's loop: create (or find again) the upload by its key, send chunks from the server's
    offset, and after any failure start over from asking. The final state and the requests it took."""
    key = f"{name}|{len(data)}|1700000000"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            state = session.post(
                f"{base}/imaging/patients/{patient_pk}/uploads/",
                json={"name": name, "size": len(data), "key": key},
                timeout=30,
            )
            state.raise_for_status()
            state = state.json()
            while state["status"] != Upload.Status.DONE:
                if state["status"] == Upload.Status.STORING:
                    time.sleep(0.05)
                    state = session.get(base + state["url"], timeout=30).json()
                    continue
                offset = state["offset"]
                sent = session.patch(
                    base + state["url"],
                    data=data[offset : offset + CHUNK],
                    headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                    timeout=30,
                )
                if sent.status_code == 409:  # the server holds more than we thought: its offset wins
                    state = {**state, "offset": int(sent.headers["Upload-Offset"])}
                    continue
                sent.raise_for_status()
                state = sent.json()
            return state, attempt
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
            continue  # the link broke; an answer that came (even an error) is the server's word and counts
    raise AssertionError(f"{name} did not finish in {ATTEMPTS} attempts")


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_uploads_cut_at_random_offsets_end_stored_once_and_byte_identical(
    round_: int, asgi_server: str, network_a: Network
) -> None:
    clinician = StaffFactory(hospital=network_a.regional).user
    patient = PatientFactory(hospital=network_a.regional)
    files = {f"study/{sample}": dicom_for(patient, sample) for sample in SAMPLES}
    upstream = int(asgi_server.rsplit(":", 1)[1])

    with FaultProxy(upstream_port=upstream, seed=SEED + round_) as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        session = _session(base, clinician)
        results = {name: _upload(session, base, patient.pk, name, data) for name, data in files.items()}
        # And once more, as a retry of the whole folder after the page was closed: nothing new is stored.
        again = {name: _upload(_session(base, clinician), base, patient.pk, name, data) for name, data in files.items()}

    # The link really broke, in each of its ways, and the uploads went on.
    assert proxy.fates["cut_request"] > 0 and proxy.fates["cut_response"] > 0 and proxy.fates["delay"] > 0
    for name, (state, _attempts) in results.items():
        assert state["status"] == "done" and state["offset"] == len(files[name]), (name, state)
        # "already" when the last chunk's answer was lost and the page asked again: its bytes were stored
        # by then, and the upload's own record says so.
        assert [result["outcome"] for result in state["results"]] in (["stored"], ["already"]), state["results"]
        assert [result["outcome"] for result in Upload.objects.get(pk=state["id"]).results] == ["stored"]
    assert all(state["status"] == "done" for state, _ in again.values())
    # One upload per file (the key finds the same one again), one image per file, each the very bytes sent.
    assert Upload.objects.count() == len(files)
    instances = list(Instance.objects.all())
    assert len(instances) == len(files)
    stored = {hashlib.sha256(default_storage.open(i.file.name).read()).hexdigest() for i in instances}
    assert stored == {hashlib.sha256(data).hexdigest() for data in files.values()}
