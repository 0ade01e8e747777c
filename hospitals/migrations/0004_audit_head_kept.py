"""On PostgreSQL the database refuses to delete the audit chain head (its UPDATEs are how the chain moves on)."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE TRIGGER hospitals_auditchainhead_kept
    BEFORE DELETE ON hospitals_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION hospitals_audit_append_only();
"""
DROP = "DROP TRIGGER IF EXISTS hospitals_auditchainhead_kept ON hospitals_auditchainhead;"


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("hospitals", "0003_session_epoch")]
    operations = [migrations.RunPython(create, drop)]
