"""Queries per request of the pages and API calls the load benchmark hits (on the seeded bench database)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

SESSIONS = json.loads((Path(__file__).resolve().parent / ".sessions.json").read_text())
CALLS = {
    "specialist": ["/consultations/", "/api/v1/consultations/"],
    "clinician": ["/patients/?q=иванов", "/api/v1/patients/?q=иванов", "/patients/?q=12.03.1961"],
}

for role, paths in CALLS.items():
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = SESSIONS[role]
    for path in paths:
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as captured:
            status = client.get(path).status_code
        print(f"| {path} | {role} | {status} | {len(captured)} queries |")
