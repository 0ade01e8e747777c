"""The images table loses two indexes no query needs: the hospital's own (the unique index of hospital and SOP
Instance UID leads with the hospital) and the file hash's, with its LIKE twin on PostgreSQL (no image is looked
up by its hash). On PostgreSQL they are dropped CONCURRENTLY: a plain DROP INDEX waits for every transaction
on the table (a backup's dump, a long export) while holding up each store and viewer query behind it."""

import copy
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

TABLE = "diagnostics_instance"
UNINDEXED = {"hospital": "hospital_id", "sha256": "sha256"}  # field: column


def indexes_drop(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    concurrently = "CONCURRENTLY " if connection.vendor == "postgresql" else ""
    for name, constraint in constraints.items():
        if (
            constraint["index"]
            and not constraint["unique"]
            and not constraint["primary_key"]
            and constraint["columns"] in [[column] for column in UNINDEXED.values()]
        ):
            schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(name)}")


def indexes_make(apps: Any, schema_editor: Any) -> None:
    """Back: the indexes as Django made them for db_index (the state here is the one before this migration)."""
    instance = apps.get_model("diagnostics", "Instance")
    for name in UNINDEXED:
        indexed = instance._meta.get_field(name)
        unindexed = copy.copy(indexed)
        unindexed.db_index = False
        schema_editor.alter_field(instance, unindexed, indexed)


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("diagnostics", "0009_lab_message_reading"),
        ("hospitals", "0006_audit_chains"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="instance",
                    name="hospital",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="hospitals.hospital",
                    ),
                ),
                migrations.AlterField(model_name="instance", name="sha256", field=models.CharField(max_length=64)),
            ],
            database_operations=[migrations.RunPython(indexes_drop, indexes_make)],
        )
    ]
