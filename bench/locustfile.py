"""Load for the worklist and patient search (issue 3): run by bench/worklist_bench.sh, never by the tests.

Two kinds of users against 127.0.0.1 only: central specialists reading the worklist (page and API) and
regional clinicians searching patients (page and API). Sessions come from bench/seed_worklist.py.
"""

import json
import random
from pathlib import Path

from locust import HttpUser, between, task

SESSIONS = json.loads((Path(__file__).resolve().parent / ".sessions.json").read_text())
QUERIES = ["иванов", "смирнова", "петров сергей", "ольга", "кузнецов алексей", "фёдоров", "B-0012345", "12.03.1961"]


class _Signed(HttpUser):
    abstract = True
    role = ""
    wait_time = between(0.5, 1.5)  # a person reads the page before the next click

    def on_start(self) -> None:
        self.client.cookies.set("sessionid", SESSIONS[self.role])


class Specialist(_Signed):
    role = "specialist"

    @task(3)
    def worklist_page(self) -> None:
        self.client.get("/consultations/", name="worklist page")

    @task(3)
    def worklist_api(self) -> None:
        self.client.get("/api/v1/consultations/", name="worklist API")


class Clinician(_Signed):
    role = "clinician"

    @task(3)
    def search_page(self) -> None:
        self.client.get(f"/patients/?q={random.choice(QUERIES)}", name="patient search page")

    @task(3)
    def search_api(self) -> None:
        self.client.get(f"/api/v1/patients/?q={random.choice(QUERIES)}", name="patient search API")
