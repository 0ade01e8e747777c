"""On PostgreSQL the database itself refuses UPDATE and DELETE on the audit trail."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE OR REPLACE FUNCTION hospitals_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER hospitals_auditentry_append_only
    BEFORE UPDATE OR DELETE ON hospitals_auditentry
    FOR EACH ROW EXECUTE FUNCTION hospitals_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS hospitals_auditentry_append_only ON hospitals_auditentry;
DROP FUNCTION IF EXISTS hospitals_audit_append_only();
"""


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("hospitals", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
