"""Shapes of the contacts and ingest API, for output and for the OpenAPI description.

Ingest input is validated by `contacts.ingest` in plain Python (1,000 records per call must be fast);
the `*In` serializers below only describe that input for drf-spectacular and the docs page.
"""

from __future__ import annotations

from rest_framework import serializers

from contacts.models import Contact, ContactStats, Event

# --- errors -----------------------------------------------------------------------------------------------------


class ApiErrorOut(serializers.Serializer):
    path = serializers.CharField(help_text='Where the problem is, from the body root, e.g. "contacts[3].email".')
    message = serializers.CharField()


class ApiErrorsOut(serializers.Serializer):
    errors = ApiErrorOut(many=True)


# --- ingest input (documentation) --------------------------------------------------------------------------------


class ContactIn(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, help_text="Your id of the contact; the upsert key.")
    email = serializers.EmailField(max_length=254, required=False, allow_null=True, allow_blank=True)
    first_name = serializers.CharField(max_length=150, required=False, allow_null=True, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    country = serializers.CharField(
        max_length=2, required=False, allow_null=True, allow_blank=True, help_text="ISO 3166-1 alpha-2, any case."
    )
    city = serializers.CharField(max_length=150, required=False, allow_null=True, allow_blank=True)
    gender = serializers.CharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    created_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601; no offset means UTC, a bare date midnight UTC."
    )
    email_status = serializers.ChoiceField(choices=Contact.EmailStatus.choices, required=False, allow_null=True)
    traffic_source = serializers.ChoiceField(choices=Contact.TrafficSource.choices, required=False, allow_null=True)
    utm_campaign = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_null=True,
        help_text="Tag names; when given they replace the contact's tags.",
    )
    attributes = serializers.DictField(
        required=False, help_text="Custom attributes, merged into the stored ones; a null value removes the key."
    )


class BulkContactsIn(serializers.Serializer):
    contacts = ContactIn(many=True, help_text="At most 1,000 contacts.")


class ProductIn(serializers.Serializer):
    sku = serializers.CharField(max_length=100, help_text="The upsert key.")
    name = serializers.CharField(max_length=255, required=False, allow_null=True)
    producer = serializers.CharField(max_length=150, required=False, allow_null=True)
    category = serializers.CharField(max_length=150, required=False, allow_null=True)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)


class BulkProductsIn(serializers.Serializer):
    products = ProductIn(many=True, help_text="At most 1,000 products.")


class OrderItemIn(serializers.Serializer):
    sku = serializers.CharField(max_length=100, help_text="Unknown SKUs are created as bare products.")
    quantity = serializers.IntegerField(min_value=1, required=False, default=1)
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)


class OrderIn(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, help_text="The upsert key; the stored order is replaced.")
    contact = serializers.CharField(
        max_length=255, help_text="The contact's external_id; unknown contacts are created bare."
    )
    ordered_at = serializers.DateTimeField()
    source = serializers.CharField(max_length=50, required=False, allow_null=True)
    currency = serializers.CharField(
        max_length=3, required=False, allow_null=True, help_text="ISO 4217; default the workspace's currency."
    )
    items = OrderItemIn(many=True, required=False, help_text="Replace the order's items.")
    total = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Default: the sum of quantity * unit_price.",
    )


class BulkOrdersIn(serializers.Serializer):
    orders = OrderIn(many=True, help_text="At most 1,000 orders.")


class EventIn(serializers.Serializer):
    contact = serializers.CharField(max_length=255, help_text="The external_id of a known contact.")
    type = serializers.CharField(max_length=100, help_text="email_open, cart_add, ... or a custom type.")
    occurred_at = serializers.DateTimeField()
    device = serializers.ChoiceField(choices=Event.Device.choices, required=False, allow_null=True)
    url = serializers.CharField(max_length=2000, required=False, allow_null=True)
    campaign = serializers.CharField(max_length=255, required=False, allow_null=True)
    properties = serializers.DictField(required=False)
    event_id = serializers.CharField(
        max_length=255, required=False, allow_null=True, help_text="When given, a repeat is stored once."
    )


class BulkEventsIn(serializers.Serializer):
    events = EventIn(many=True, help_text="At most 1,000 events.")


class IngestErrorOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="Index of the refused record in the request's list.")
    path = serializers.CharField(help_text='e.g. "orders[0].items[1].sku"')
    message = serializers.CharField()


class IngestResultOut(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Records that matched a stored row, changed or not.")
    errors = IngestErrorOut(many=True)


# --- contacts output ----------------------------------------------------------------------------------------------


class ContactOut(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "external_id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "country",
            "city",
            "gender",
            "birth_date",
            "created_at",
            "updated_at",
            "email_status",
            "traffic_source",
            "utm_campaign",
            "tags",
            "attributes",
        ]

    def get_tags(self, contact: Contact) -> list[str]:
        # Reads the prefetched tags when the selector prefetched them.
        return sorted(tag.name for tag in contact.tags.all())


COMPUTED_FIELDS = [
    "orders_count",
    "total_spent",
    "avg_order_value",
    "first_order_at",
    "last_order_at",
    "last_seen_at",
    "last_email_open_at",
    "last_email_click_at",
    "engagement_score",
    "lifecycle_stage",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_segment",
    "preferred_device",
    "top_category",
    "top_producer",
    "cart_open_since",
    "loyalty_tier",
]


class ComputedOut(serializers.ModelSerializer):
    total_spent = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    avg_order_value = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False, allow_null=True)

    class Meta:
        model = ContactStats
        fields = COMPUTED_FIELDS


class SegmentRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def _figure(field_class: type[serializers.Field], name: str, **kwargs) -> serializers.Field:
    return field_class(source=f"stats.{name}", read_only=True, **kwargs)


def _money(name: str, **kwargs) -> serializers.Field:
    return _figure(serializers.DecimalField, name, max_digits=14, decimal_places=2, coerce_to_string=False, **kwargs)


class ContactDetailOut(ContactOut):
    """The contact, every computed figure at the top level and again under `computed`, and its segments now."""

    orders_count = _figure(serializers.IntegerField, "orders_count")
    total_spent = _money("total_spent")
    avg_order_value = _money("avg_order_value", allow_null=True)
    first_order_at = _figure(serializers.DateTimeField, "first_order_at", allow_null=True)
    last_order_at = _figure(serializers.DateTimeField, "last_order_at", allow_null=True)
    last_seen_at = _figure(serializers.DateTimeField, "last_seen_at", allow_null=True)
    last_email_open_at = _figure(serializers.DateTimeField, "last_email_open_at", allow_null=True)
    last_email_click_at = _figure(serializers.DateTimeField, "last_email_click_at", allow_null=True)
    engagement_score = _figure(serializers.IntegerField, "engagement_score")
    lifecycle_stage = _figure(serializers.ChoiceField, "lifecycle_stage", choices=ContactStats.Lifecycle.choices)
    rfm_recency = _figure(serializers.IntegerField, "rfm_recency", allow_null=True)
    rfm_frequency = _figure(serializers.IntegerField, "rfm_frequency", allow_null=True)
    rfm_monetary = _figure(serializers.IntegerField, "rfm_monetary", allow_null=True)
    rfm_segment = _figure(
        serializers.ChoiceField, "rfm_segment", choices=ContactStats.RfmSegment.choices, allow_null=True
    )
    preferred_device = _figure(serializers.ChoiceField, "preferred_device", choices=ContactStats.Device.choices)
    top_category = _figure(serializers.CharField, "top_category", allow_null=True)
    top_producer = _figure(serializers.CharField, "top_producer", allow_null=True)
    cart_open_since = _figure(serializers.DateTimeField, "cart_open_since", allow_null=True)
    loyalty_tier = _figure(serializers.ChoiceField, "loyalty_tier", choices=ContactStats.LoyaltyTier.choices)
    computed = ComputedOut(source="stats", read_only=True)
    segments = SegmentRefOut(many=True, source="current_segments", read_only=True)

    class Meta(ContactOut.Meta):
        fields = [*ContactOut.Meta.fields, *COMPUTED_FIELDS, "computed", "segments"]


# --- Segment tracking API (documentation) --------------------------------------------------------------------


class SegmentMessageIn(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=["identify", "track", "page", "screen", "alias", "group"],
        required=False,
        help_text="Required in a batch; implied by the path of a single-message call.",
    )
    userId = serializers.CharField(required=False, help_text="The contact's external_id.")  # noqa: N815
    anonymousId = serializers.CharField(  # noqa: N815
        required=False, help_text="Messages with only an anonymousId are acknowledged and not stored."
    )
    messageId = serializers.CharField(required=False, help_text="Becomes the event_id: a repeat is a no-op.")  # noqa: N815
    timestamp = serializers.DateTimeField(required=False)
    event = serializers.CharField(required=False, help_text="track: the event name.")
    name = serializers.CharField(required=False, help_text="page / screen: the page or screen name.")
    traits = serializers.DictField(required=False, help_text="identify: contact fields and custom attributes.")
    properties = serializers.DictField(required=False)
    context = serializers.DictField(required=False)
    writeKey = serializers.CharField(required=False, help_text="The API key, if not sent as HTTP Basic user.")  # noqa: N815


class SegmentBatchIn(serializers.Serializer):
    batch = SegmentMessageIn(many=True, help_text="At most 1,000 messages.")
    writeKey = serializers.CharField(required=False, help_text="The API key, if not sent as HTTP Basic user.")  # noqa: N815
    sentAt = serializers.DateTimeField(required=False)  # noqa: N815
    context = serializers.DictField(required=False, help_text="Merged under each message's own context.")


class SegmentSuccessOut(serializers.Serializer):
    success = serializers.BooleanField()
    errors = ApiErrorOut(
        many=True, required=False, help_text="Present when some messages were refused; the others were stored."
    )
