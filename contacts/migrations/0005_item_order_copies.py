"""Each order item carries copies of its order's contact_id and ordered_at, indexed by (product, ordered_at).

Segment conditions on items in a window then read one index range instead of joining the orders (see
the OrderItem docstring). The columns are added nullable, filled from the orders, then made NOT NULL;
the old (product, order) covering index is dropped first so the backfill does not maintain it, and the
new one is built last, once, over the filled table.
"""

import django.db.models.deletion
from django.db import migrations, models


def copy_from_orders(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    items = quote(apps.get_model("contacts", "OrderItem")._meta.db_table)
    orders = quote(apps.get_model("contacts", "Order")._meta.db_table)
    if connection.vendor == "postgresql":
        # One hash join of the two tables; the correlated form below would probe the orders per item.
        sql = (
            f"UPDATE {items} AS i SET contact_id = o.contact_id, ordered_at = o.ordered_at "
            f"FROM {orders} AS o WHERE o.id = i.order_id"
        )
    else:
        sql = (
            f"UPDATE {items} SET "
            f"contact_id = (SELECT o.contact_id FROM {orders} AS o WHERE o.id = {items}.order_id), "
            f"ordered_at = (SELECT o.ordered_at FROM {orders} AS o WHERE o.id = {items}.order_id)"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_segment_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="orderitem",
            name="item_product_order_cov",
        ),
        migrations.AddField(
            model_name="orderitem",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="ordered_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.RunPython(copy_from_orders, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="orderitem",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="orderitem",
            name="ordered_at",
            field=models.DateTimeField(editable=False),
        ),
        migrations.AddIndex(
            model_name="orderitem",
            index=models.Index(
                fields=["product", "ordered_at"],
                include=("contact", "order", "quantity", "unit_price"),
                name="item_product_time_cov",
            ),
        ),
    ]
