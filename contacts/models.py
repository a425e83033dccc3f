"""The data a marketer segments on: workspaces, contacts, products, orders, events.

Every row belongs to one workspace; natural keys (`external_id`, `sku`,
`event_id`) are unique per workspace so that ingest is an idempotent upsert.
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Workspace(models.Model):
    """A tenant. Its settings tune how the computed contact figures are derived."""

    name = models.CharField(max_length=100, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    # Lifecycle: "new" while the first order is at most this many days old, "active"
    # while the last order is at most active_days old, "inactive" up to churn_days,
    # "churned" after that.
    new_customer_days = models.PositiveIntegerField(default=30)
    active_days = models.PositiveIntegerField(default=90)
    churn_days = models.PositiveIntegerField(default=365)
    # Engagement score counts opens, clicks and visits within this many days.
    engagement_window_days = models.PositiveIntegerField(default=30)
    # Loyalty tiers by total spent (workspace currency): bronze below silver.
    loyalty_silver_threshold = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("500"))
    loyalty_gold_threshold = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("1000"))
    # Declared custom attribute types: {"plan": "choice", "score": "number", ...}.
    attribute_types = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Bookkeeping of the scheduled refresh of clock-dependent figures and RFM
    # (contacts.tasks), so a failing refresh is visible rather than silent.
    stats_refreshed_at = models.DateTimeField(null=True, blank=True)
    stats_refresh_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return self.name


class WorkspaceMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="uniq_workspace_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.EDITOR}


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A Bearer key for one workspace. Only its SHA-256 is stored; the key is shown once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.workspace})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def set_new_key(self) -> str:
        """Give this key a fresh secret; returns the raw key (never stored)."""
        raw = "ds_" + secrets.token_urlsafe(32)
        self.prefix = raw[:10]
        self.key_hash = hash_api_key(raw)
        return raw


class Contact(models.Model):
    class EmailStatus(models.TextChoices):
        SUBSCRIBED = "subscribed"
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        NEVER_SUBSCRIBED = "never_subscribed"

    class TrafficSource(models.TextChoices):
        DIRECT = "direct"
        ORGANIC = "organic"
        PAID_SEARCH = "paid_search"
        PAID_SOCIAL = "paid_social"
        EMAIL = "email"
        REFERRAL = "referral"
        AFFILIATE = "affiliate"
        OTHER = "other"

    # No index of its own on the foreign keys below: composite indexes lead with them (see Meta).
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    external_id = models.CharField(max_length=255)
    email = models.CharField(max_length=254, null=True, blank=True)
    first_name = models.CharField(max_length=150, null=True, blank=True)
    last_name = models.CharField(max_length=150, null=True, blank=True)
    phone = models.CharField(max_length=50, null=True, blank=True)
    country = models.CharField(max_length=2, null=True, blank=True)
    city = models.CharField(max_length=150, null=True, blank=True)
    gender = models.CharField(max_length=50, null=True, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    email_status = models.CharField(max_length=20, choices=EmailStatus.choices, null=True, blank=True)
    traffic_source = models.CharField(max_length=20, choices=TrafficSource.choices, null=True, blank=True)
    utm_campaign = models.CharField(max_length=255, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField("Tag", through="ContactTag", related_name="contacts", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "external_id"], name="uniq_contact_external_id")]
        indexes = [
            models.Index(fields=["workspace", "email"]),
            # Carrying the id, the fields segments filter on most join the figures from the index alone
            # ("opened lately and subscribed": the subscribed contacts' ids, not a scan of every contact).
            models.Index(fields=["workspace", "country"], include=["id"], name="contact_ws_country_cov"),
            models.Index(fields=["workspace", "email_status"], include=["id"], name="contact_ws_status_cov"),
            models.Index(fields=["workspace", "created_at"], include=["id"], name="contact_ws_created_cov"),
            # Segment queries are "contacts of the workspace whose id is in ...": the workspace's ids as an
            # index-only scan (a few dozen MB) instead of a scan of the whole contact table.
            models.Index(fields=["workspace", "id"], name="contact_ws_id_idx"),
        ]

    def __str__(self) -> str:
        return self.email or self.external_id


class Tag(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_tag_name")]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    # The contact's workspace: every row of a contact's data carries it (docs/benchmarks.md, "10 million").
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Found through uniq_contact_tag (contact, tag) and the (tag, contact) index: no single-column indexes.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_tags", db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags", db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="uniq_contact_tag")]
        indexes = [models.Index(fields=["tag", "contact"])]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.tag_id}"

    def save(self, *args, **kwargs) -> None:
        """Save with the contact's workspace (admin inlines and `contact.tags.add` give only the contact)."""
        if self.workspace_id is None:
            self.workspace_id = Contact.objects.filter(pk=self.contact_id).values_list("workspace_id", flat=True)[0]
        super().save(*args, **kwargs)


class ContactStats(models.Model):
    """Figures computed from a contact's orders and events, stored so segments can index them.

    Kept current by `contacts.stats` in the ingest transaction; workspace-wide
    figures (RFM quintiles) and time-dependent ones are refreshed in bulk.
    """

    class Lifecycle(models.TextChoices):
        PROSPECT = "prospect"
        NEW = "new"
        ACTIVE = "active"
        RETURNING = "returning"
        INACTIVE = "inactive"
        CHURNED = "churned"

    class Device(models.TextChoices):
        MOBILE_ONLY = "mobile_only"
        DESKTOP_ONLY = "desktop_only"
        CROSS_PLATFORM = "cross_platform"
        UNKNOWN = "unknown"

    class LoyaltyTier(models.TextChoices):
        NONE = "none"
        BRONZE = "bronze"
        SILVER = "silver"
        GOLD = "gold"

    class RfmSegment(models.TextChoices):
        CHAMPIONS = "champions"
        LOYAL = "loyal"
        POTENTIAL_LOYALIST = "potential_loyalist"
        NEW_CUSTOMERS = "new_customers"
        PROMISING = "promising"
        NEED_ATTENTION = "need_attention"
        AT_RISK = "at_risk"
        CANT_LOSE = "cant_lose"
        HIBERNATING = "hibernating"
        LOST = "lost"

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    # No index of its own: every index below leads with workspace, and each index is paid on every ingest.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    avg_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    # The latest order strictly before last_order_at: with it the lifecycle stage
    # ("returning" after a long gap) is derived from this row alone, so the hourly
    # clock refresh never has to read the orders table.
    previous_order_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_email_open_at = models.DateTimeField(null=True, blank=True)
    last_email_click_at = models.DateTimeField(null=True, blank=True)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    lifecycle_stage = models.CharField(max_length=12, choices=Lifecycle.choices, default=Lifecycle.PROSPECT)
    rfm_recency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_frequency = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_monetary = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=20, choices=RfmSegment.choices, null=True, blank=True)
    preferred_device = models.CharField(max_length=15, choices=Device.choices, default=Device.UNKNOWN)
    top_category = models.CharField(max_length=150, null=True, blank=True)
    top_producer = models.CharField(max_length=150, null=True, blank=True)
    cart_open_since = models.DateTimeField(null=True, blank=True)
    loyalty_tier = models.CharField(max_length=10, choices=LoyaltyTier.choices, default=LoyaltyTier.NONE)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "contact stats"
        # Indexes for the figures segments filter on selectively (recent times, high amounts, a category).
        # None on preferred_device or loyalty_tier: with four values each the planner scans anyway, and
        # every index costs each ingest refresh (contacts.stats) one more B-tree insertion per row.
        indexes = [
            # Each carries the contact id (the primary key), so a segment condition on a figure is an
            # index-only scan that never reads the wide stats rows (INCLUDE is PostgreSQL only).
            models.Index(fields=["workspace", "total_spent"], include=["contact"], name="stats_spent_cov"),
            models.Index(fields=["workspace", "orders_count"], include=["contact"], name="stats_orders_cov"),
            models.Index(fields=["workspace", "last_order_at"], include=["contact"], name="stats_last_order_cov"),
            models.Index(fields=["workspace", "last_seen_at"], include=["contact"], name="stats_last_seen_cov"),
            models.Index(fields=["workspace", "lifecycle_stage"], include=["contact"], name="stats_lifecycle_cov"),
            models.Index(fields=["workspace", "cart_open_since"], include=["contact"], name="stats_cart_cov"),
            models.Index(fields=["workspace", "rfm_segment"], include=["contact"], name="stats_rfm_segment_cov"),
            models.Index(fields=["workspace", "avg_order_value"], include=["contact"], name="stats_aov_cov"),
            models.Index(fields=["workspace", "first_order_at"], include=["contact"], name="stats_first_order_cov"),
            models.Index(fields=["workspace", "last_email_open_at"], include=["contact"], name="stats_last_open_cov"),
            models.Index(fields=["workspace", "last_email_click_at"], include=["contact"], name="stats_last_click_cov"),
            models.Index(fields=["workspace", "engagement_score"], include=["contact"], name="stats_engagement_cov"),
            models.Index(fields=["workspace", "top_category"], include=["contact"], name="stats_top_category_cov"),
            models.Index(fields=["workspace", "top_producer"], include=["contact"], name="stats_top_producer_cov"),
        ]

    def __str__(self) -> str:
        return f"stats of contact {self.contact_id}"


class Product(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=100)
    name = models.CharField(max_length=255, null=True, blank=True)
    producer = models.CharField(max_length=150, null=True, blank=True)
    category = models.CharField(max_length=150, null=True, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "sku"], name="uniq_product_sku")]
        indexes = [
            models.Index(fields=["workspace", "producer"]),
            models.Index(fields=["workspace", "category"]),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name or ''}".strip()


class Order(models.Model):
    # Found through the (workspace, ...) and (contact, ordered_at) indexes: no single-column indexes.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="orders", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="orders", db_index=False)
    external_id = models.CharField(max_length=255)
    ordered_at = models.DateTimeField()
    source = models.CharField(max_length=50, null=True, blank=True)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "external_id"], name="uniq_order_external_id")]
        indexes = [
            models.Index(fields=["contact", "ordered_at"]),
            models.Index(fields=["workspace", "ordered_at"]),
        ]

    def __str__(self) -> str:
        return self.external_id

    def save(self, *args, **kwargs) -> None:
        """Save, and carry a changed contact or time over to the items' copies (see OrderItem)."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if adding or (update_fields is not None and not {"contact", "contact_id", "ordered_at"} & set(update_fields)):
            return
        # One UPDATE that matches no row unless the admin (or a test) moved the order or changed its time.
        self.items.exclude(contact_id=self.contact_id, ordered_at=self.ordered_at).update(
            contact_id=self.contact_id, ordered_at=self.ordered_at
        )


class OrderItem(models.Model):
    """One line of an order.

    `contact` and `ordered_at` are copies of the order's `contact_id` and `ordered_at`. They exist for
    segment conditions on items ("bought Acme products for over 300 EUR in the last 6 months"): with
    them the matching items in the window are one range of the (product, ordered_at) index that also
    carries the contact, instead of a join with millions of orders (see docs/benchmarks.md, "Segment
    preview"). Code keeps them equal to the order's: ingest writes them with the items (and replaces
    an upserted order's items), `save()` here and `Order.save()` copy them, and an item is deleted with
    its order. So `contact` has no database constraint of its own and no index: the order's foreign key
    already guarantees the contact exists, and nothing looks items up by contact.
    """

    # The order's workspace: every row of a contact's data carries it (docs/benchmarks.md, "10 million").
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # Found through item_product_time_cov, which leads with the product.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items", db_index=False)
    contact = models.ForeignKey(
        Contact, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+", editable=False
    )
    ordered_at = models.DateTimeField(editable=False)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        # Covering: the items of a product filter (producer, category, SKU) in a time window, with their
        # contact and amounts, from the index alone (segment conditions on items).
        indexes = [
            models.Index(
                fields=["product", "ordered_at"],
                include=["contact", "order", "quantity", "unit_price"],
                name="item_product_time_cov",
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x product {self.product_id}"

    def save(self, *args, **kwargs) -> None:
        """Save with the copies taken from the order (admin forms and test factories set only the order)."""
        order = self.order
        self.workspace_id = order.workspace_id
        self.contact_id = order.contact_id
        self.ordered_at = order.ordered_at
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "workspace", "contact", "ordered_at"}
        super().save(*args, **kwargs)

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price


class Event(models.Model):
    """A behavioural event: email open/click, page view, cart add, app open, custom types."""

    class Device(models.TextChoices):
        MOBILE = "mobile"
        DESKTOP = "desktop"
        TABLET = "tablet"
        OTHER = "other"

    # Found through event_ws_type_time_cov and the (contact, ...) indexes: no single-column indexes, each of
    # which every ingested event would pay for.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="events", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    device = models.CharField(max_length=10, choices=Device.choices, null=True, blank=True)
    url = models.CharField(max_length=2000, null=True, blank=True)
    campaign = models.CharField(max_length=255, null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    event_id = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "event_id"], condition=Q(event_id__isnull=False), name="uniq_event_id"
            )
        ]
        indexes = [
            models.Index(fields=["contact", "type", "occurred_at"]),
            # Covering: "contacts with such events in the window" is an index-only scan.
            models.Index(
                fields=["workspace", "type", "occurred_at"], include=["contact"], name="event_ws_type_time_cov"
            ),
            models.Index(fields=["contact", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class EventType(models.Model):
    """Every event type a workspace has received, so the catalog can offer custom types."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="event_types")
    name = models.CharField(max_length=100)
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_event_type")]

    def __str__(self) -> str:
        return self.name


class ProcessedMessage(models.Model):
    """A Segment `messageId` a workspace has already applied, so a repeat of that message is a no-op.

    Event ids alone cover only track events: without this a retried older identify or Order Completed would
    overwrite newer data. Recorded in the transaction that writes the message (contacts.ingest.segment).
    """

    # No index of its own: the unique constraint leads with workspace.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    message_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "message_id"], name="uniq_processed_message_id")]

    def __str__(self) -> str:
        return self.message_id
