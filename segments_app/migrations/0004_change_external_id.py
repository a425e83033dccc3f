"""Keep an erased contact's "exited" changes: a nullable contact and the erased contact's external_id.

Both are cheap on a large change log: dropping NOT NULL and adding a nullable column rewrite nothing.
There is nothing to backfill: `external_id` is set only on rows written for an erasure (their contact is
null); every other row keeps reading the external_id from its contact.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('segments_app', '0003_change_log_bulk_writes'),
    ]

    operations = [
        migrations.AddField(
            model_name='segmentchange',
            name='external_id',
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name='segmentchange',
            name='contact',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='segment_changes', to='contacts.contact'),
        ),
    ]
