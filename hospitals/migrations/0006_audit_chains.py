"""The audit trail as several hash chains (hospitals/audit.py): each entry names its chain, numbered within it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hospitals", "0005_notifications"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={"ordering": ["-id"], "verbose_name": "audit entry", "verbose_name_plural": "audit trail"},
        ),
        migrations.AddField(
            model_name="auditentry",
            name="lane",
            field=models.PositiveSmallIntegerField(db_default=1, default=1, verbose_name="chain"),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.PositiveBigIntegerField(verbose_name="sequence"),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("lane", "seq"), name="audit_seq_unique_per_chain"),
        ),
    ]
