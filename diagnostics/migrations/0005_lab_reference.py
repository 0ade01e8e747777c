from django.db import migrations


def load(apps, schema_editor):
    from diagnostics.lab_reference import lab_reference_load

    lab_reference_load(apps)


class Migration(migrations.Migration):
    dependencies = [("diagnostics", "0004_labs")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
