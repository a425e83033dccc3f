"""Order items and contact tags carry their workspace, like every other row of a contact's data.

Added empty, filled in from the order / the contact in one UPDATE each, then required.
"""

import django.db.models.deletion
from django.db import migrations, models

FILL_ITEMS = """
    UPDATE contacts_orderitem SET workspace_id = o.workspace_id
    FROM contacts_order o WHERE o.id = contacts_orderitem.order_id
"""
FILL_TAGS = """
    UPDATE contacts_contacttag SET workspace_id = c.workspace_id
    FROM contacts_contact c WHERE c.id = contacts_contacttag.contact_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ("contacts", "0008_contact_covering_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderitem",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE,
                related_name="+", to="contacts.workspace",
            ),
        ),
        migrations.AddField(
            model_name="contacttag",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                to="contacts.workspace",
            ),
        ),
        migrations.RunSQL(FILL_ITEMS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(FILL_TAGS, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="orderitem",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                to="contacts.workspace",
            ),
        ),
        migrations.AlterField(
            model_name="contacttag",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                to="contacts.workspace",
            ),
        ),
    ]
