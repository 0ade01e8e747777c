"""Default response deadlines (Order 965n practice) and the ICD-10 codes of the diseases in scope."""

import json
from pathlib import Path

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

DEADLINE_HOURS = {"emergency": 2, "urgent": 24, "planned": 7 * 24}
ICD10 = Path(__file__).resolve().parent.parent / "data" / "icd10_in_scope.json"


def load(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    deadline = apps.get_model("consultations", "ResponseDeadline")
    for urgency, hours in DEADLINE_HOURS.items():
        deadline.objects.get_or_create(urgency=urgency, defaults={"hours": hours})
    code = apps.get_model("consultations", "Icd10Code")
    for row in json.loads(ICD10.read_text(encoding="utf-8")):
        code.objects.update_or_create(code=row["code"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("consultations", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
