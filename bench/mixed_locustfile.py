"""The mixed load of issue 8, run by bench/mixed_load.sh (never by the tests), against 127.0.0.1 only.

Regional clinicians browse and search patients and upload images through the resumable protocol (a fresh
small CT each time, in 16 KB chunks as over a slow link); central specialists read the worklist and open
consultations; lab analysers post HL7 results. Video calls signal beside it (bench/signalling_bench.py,
started by the script). Sessions and ids come from bench/seed_worklist.py and bench/seed_mixed.py.
"""

import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pydicom
from locust import HttpUser, between, task
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

HERE = Path(__file__).resolve().parent
SESSIONS = json.loads((HERE / ".sessions.json").read_text())
MIXED = json.loads((HERE / ".mixed.json").read_text())
CT = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
CSRF = "benchcsrfbenchcsrfbenchcsrfbench"  # a 32-character secret, the cookie and the header alike
CHUNK = 16_384
QUERIES = ["иванов", "смирнова", "петров сергей", "ольга", "кузнецов алексей", "фёдоров"]


class _Signed(HttpUser):
    abstract = True
    role = ""

    def on_start(self) -> None:
        self.client.cookies.set("sessionid", SESSIONS[self.role])
        self.client.cookies.set("csrftoken", CSRF)
        self.client.headers.update({"X-CSRFToken": CSRF})


class Clinician(_Signed):
    role = "clinician"
    weight = 50
    wait_time = between(1, 3)

    @task(4)
    def patient_page(self) -> None:
        pk, _record = random.choice(MIXED["patients"])
        self.client.get(f"/patients/{pk}/", name="patient page")

    @task(3)
    def search(self) -> None:
        self.client.get(f"/patients/?q={random.choice(QUERIES)}", name="patient search page")

    @task(2)
    def upload(self) -> None:
        pk, record = random.choice(MIXED["patients"])
        image = CT.copy()
        image.PatientID = record
        image.StudyInstanceUID, image.SeriesInstanceUID, image.SOPInstanceUID = (generate_uid() for _ in range(3))
        image.file_meta.MediaStorageSOPInstanceUID = image.SOPInstanceUID
        out = io.BytesIO()
        image.save_as(out, enforce_file_format=True)
        data = out.getvalue()
        created = self.client.post(
            f"/imaging/patients/{pk}/uploads/",
            json={"name": "CT/IM0001.dcm", "size": len(data), "key": image.SOPInstanceUID},
            name="upload: create",
        )
        if created.status_code not in (200, 201):
            return
        state = created.json()
        while state["offset"] < len(data):
            offset = state["offset"]
            sent = self.client.patch(
                state["url"],
                data=data[offset : offset + CHUNK],
                headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                name="upload: chunk",
            )
            if sent.status_code != 200:
                return
            state = sent.json()


class Specialist(_Signed):
    role = "specialist"
    weight = 10
    wait_time = between(1, 3)

    @task(3)
    def worklist_page(self) -> None:
        self.client.get("/consultations/", name="worklist page")

    @task(2)
    def worklist_api(self) -> None:
        self.client.get("/api/v1/consultations/", name="worklist API")

    @task(3)
    def consultation(self) -> None:
        self.client.get(f"/consultations/{random.choice(MIXED['consultations'])}/", name="consultation page")


class Analyser(HttpUser):
    weight = 5
    wait_time = between(0.5, 1.5)

    @task
    def results(self) -> None:
        _pk, record = random.choice(MIXED["patients"])
        taken = (datetime.now().astimezone() - timedelta(minutes=random.randrange(1, 10_000))).strftime(
            "%Y%m%d%H%M%S%z"
        )
        control = generate_uid(prefix=None)[-20:]
        message = "\r".join(
            [
                f"MSH|^~\\&|BENCH|LAB|MHOSPITAL|MH|{taken}||ORU^R01^ORU_R01|{control}|P|2.5.1",
                f"PID|1||{record}^^^LAB^MR||Bench^Patient",
                f"OBR|1||S-{control}|24323-8^Metabolic panel^LN|||{taken}",
                "OBX|1|NM|2345-7^Glucose^LN||7.9|mmol/L|3.9-6.1|H|||F",
                "OBX|2|NM|4548-4^HbA1c^LN||5.1|%|4.0-6.0|N|||F",
                "OBX|3|NM|2823-3^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||F",
            ]
        )
        self.client.post(
            "/api/v1/device/hl7",
            data=(message + "\r").encode(),
            headers={
                "Authorization": f"Device {MIXED['device_token']}",
                "Content-Type": "x-application/hl7-v2+er7; charset=utf-8",
            },
            name="HL7 results",
        )
