"""Reference data of the workflow: default response deadlines and the ICD-10 codes in scope.

Loaded by migration 0002; call `reference_data_load()` to put it back after a database was emptied
(tests that flush tables, a restored dump). Safe to run again: existing rows keep their edits.
"""

import json
from pathlib import Path

from consultations.models import DEFAULT_DEADLINE_HOURS, Icd10Code, ResponseDeadline

ICD10 = Path(__file__).resolve().parent / "data" / "icd10_in_scope.json"


def reference_data_load() -> None:
    for urgency, hours in DEFAULT_DEADLINE_HOURS.items():
        ResponseDeadline.objects.get_or_create(urgency=urgency, defaults={"hours": hours})
    for row in json.loads(ICD10.read_text(encoding="utf-8")):
        Icd10Code.objects.get_or_create(code=row["code"], defaults=row)
