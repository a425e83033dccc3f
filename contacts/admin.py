"""The operators' view of the data: every model, with columns, search and filters that stay fast on big tables."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from config.admin_paging import LargeTablePaginator
from contacts.api_keys import revoke_api_key
from contacts.models import (
    ApiKey,
    Contact,
    ContactStats,
    ContactTag,
    Event,
    EventType,
    Order,
    OrderItem,
    ProcessedMessage,
    Product,
    Tag,
    Workspace,
    WorkspaceMember,
)
from contacts.services import edited_by_hand, erase_contact


class LargeTableAdmin(admin.ModelAdmin):
    """For tables that grow to millions of rows: no exact counts, estimated pagination."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 50


class WorkspaceMemberInline(admin.TabularInline):
    model = WorkspaceMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "currency", "active_days", "churn_days", "loyalty_silver_threshold", "created_at"]
    search_fields = ["name"]
    inlines = [WorkspaceMemberInline]
    fieldsets = [
        (None, {"fields": ["name", "currency", "created_at"]}),
        (
            "Computed figures",
            {
                "fields": [
                    "new_customer_days",
                    "active_days",
                    "churn_days",
                    "engagement_window_days",
                    "loyalty_silver_threshold",
                    "loyalty_gold_threshold",
                ],
                "description": "Thresholds that tune lifecycle stage, engagement score and loyalty tier "
                "(see docs/computed-figures.md).",
            },
        ),
        ("Custom attributes", {"fields": ["attribute_types"]}),
    ]


@admin.register(WorkspaceMember)
class WorkspaceMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are stored hashed: the raw key is shown once, in a message, right after it is created."""

    list_display = ["prefix", "name", "workspace", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "workspace__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["workspace", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is not None:
            return [*self.readonly_fields, "workspace"]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        raw_key = obj.set_new_key()
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            f"The new API key is {raw_key} — copy it now: it is stored hashed and will not be shown again.",
        )

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {len(keys)} key(s).")


class ContactTagInline(admin.TabularInline):
    model = ContactTag
    extra = 0
    raw_id_fields = ["tag"]


class ContactStatsInline(admin.StackedInline):
    model = ContactStats
    can_delete = False
    exclude = ["workspace"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # Figures are derived from orders and events; editing them by hand would be overwritten.
        return [f.name for f in ContactStats._meta.fields if f.name not in ("workspace",)]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(LargeTableAdmin):
    list_display = ["external_id", "email", "first_name", "last_name", "country", "email_status", "created_at"]
    list_filter = ["workspace", "email_status", "traffic_source"]
    search_fields = ["=external_id", "email", "last_name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]
    inlines = [ContactTagInline, ContactStatsInline]

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the tags inline first
        contact = form.instance
        edited_by_hand(workspace_id=contact.workspace_id, contact_ids=[contact.pk], kinds=("contact", "tags"))

    # Deleting here is an erasure like DELETE /api/v1/contacts/{external_id}/: the contact leaves its
    # segments with an "exited" change the ESPs see (contacts.services.erase_contact), then goes.
    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        erase_contact(workspace=obj.workspace, external_id=obj.external_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        for contact in queryset.select_related("workspace").order_by("pk"):
            erase_contact(workspace=contact.workspace, external_id=contact.external_id)


@admin.register(ContactStats)
class ContactStatsAdmin(LargeTableAdmin):
    list_display = [
        "contact",
        "orders_count",
        "total_spent",
        "lifecycle_stage",
        "loyalty_tier",
        "rfm_segment",
        "engagement_score",
        "preferred_device",
        "last_seen_at",
    ]
    list_filter = ["workspace", "lifecycle_stage", "loyalty_tier", "rfm_segment", "preferred_device"]
    search_fields = ["=contact__external_id", "contact__email"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact", "workspace"]

    # Derived from orders and events, and read instead of them by segment conditions: never edited by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ContactStats | None = None) -> bool:
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace"]
    list_filter = ["workspace"]
    search_fields = ["name"]


@admin.register(ContactTag)
class ContactTagAdmin(LargeTableAdmin):
    list_display = ["contact", "tag"]
    list_filter = ["tag__workspace"]
    search_fields = ["=contact__external_id", "tag__name"]
    list_select_related = ["contact", "tag"]
    raw_id_fields = ["contact", "tag"]


@admin.register(Product)
class ProductAdmin(LargeTableAdmin):
    list_display = ["sku", "name", "producer", "category", "price", "workspace"]
    list_filter = ["workspace", "category"]
    search_fields = ["=sku", "name", "producer"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    raw_id_fields = ["product"]


def not_in_the_future(moment):
    """Nothing is stored dated after the moment it is entered: segment conditions such as "ordered in the
    last 30 days" are answered from the latest order's time (see docs/segment-definition.md)."""
    if moment is not None and moment > timezone.now():
        raise forms.ValidationError("may not lie in the future")
    return moment


class OrderForm(forms.ModelForm):
    def clean_ordered_at(self):
        return not_in_the_future(self.cleaned_data.get("ordered_at"))


class EventForm(forms.ModelForm):
    def clean_occurred_at(self):
        return not_in_the_future(self.cleaned_data.get("occurred_at"))


class HistoryAdmin(LargeTableAdmin):
    """Orders, items and events edited by hand: their contacts' figures and segments follow, as after ingest.

    `contact_of(obj)` is the contact a row belongs to; a row moved to another contact changes both.
    """

    history_kind = ""

    def contact_of(self, obj) -> tuple[int, int]:
        """(workspace id, contact id) of a row."""
        raise NotImplementedError

    def _edited(self, rows: list) -> None:
        by_workspace: dict[int, set[int]] = {}
        for workspace_id, contact_id in rows:
            by_workspace.setdefault(workspace_id, set()).add(contact_id)
        for workspace_id, contact_ids in by_workspace.items():
            edited_by_hand(workspace_id=workspace_id, contact_ids=contact_ids, kinds=(self.history_kind,))

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        # Kept on the row, not on this admin (one instance serves every request).
        obj._contact_before = self.contact_of(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # inlines (an order's items) first
        rows = [self.contact_of(form.instance)]
        if getattr(form.instance, "_contact_before", None) is not None:
            rows.append(form.instance._contact_before)
        self._edited(rows)

    def delete_model(self, request: HttpRequest, obj) -> None:
        row = self.contact_of(obj)
        super().delete_model(request, obj)
        self._edited([row])

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        rows = [self.contact_of(obj) for obj in queryset]
        super().delete_queryset(request, queryset)
        self._edited(rows)


@admin.register(Order)
class OrderAdmin(HistoryAdmin):
    list_display = ["external_id", "contact", "ordered_at", "source", "total", "currency"]
    list_filter = ["workspace", "source", "currency"]
    search_fields = ["=external_id", "=contact__external_id"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact", "workspace"]
    inlines = [OrderItemInline]
    form = OrderForm
    history_kind = "orders"

    def contact_of(self, obj: Order) -> tuple[int, int]:
        return obj.workspace_id, obj.contact_id


@admin.register(OrderItem)
class OrderItemAdmin(HistoryAdmin):
    list_display = ["order", "product", "quantity", "unit_price"]
    list_filter = ["workspace", "product__category"]
    search_fields = ["=order__external_id", "=product__sku"]
    list_select_related = ["order", "product"]
    raw_id_fields = ["order", "product"]
    history_kind = "orders"

    def contact_of(self, obj: OrderItem) -> tuple[int, int]:
        return obj.order.workspace_id, obj.order.contact_id


@admin.register(Event)
class EventAdmin(HistoryAdmin):
    list_display = ["type", "contact", "occurred_at", "device", "campaign", "url"]
    list_filter = ["workspace", "type", "device"]
    search_fields = ["=contact__external_id", "=event_id", "campaign"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact", "workspace"]
    form = EventForm
    history_kind = "events"

    def contact_of(self, obj: Event) -> tuple[int, int]:
        return obj.workspace_id, obj.contact_id


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "first_seen_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]


@admin.register(ProcessedMessage)
class ProcessedMessageAdmin(LargeTableAdmin):
    """Read-only: the Segment message ids already applied. Deletable (a workspace's deletion cascades to them),
    but deleting one lets a repeat of that message apply again."""

    list_display = ["message_id", "workspace", "received_at"]
    list_filter = ["workspace"]
    search_fields = ["=message_id"]
    list_select_related = ["workspace"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ProcessedMessage | None = None) -> bool:
        return False
