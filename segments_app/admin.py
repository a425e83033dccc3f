"""Segments in the admin: definitions, recompute status and errors, stored membership and its history."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Max
from django.urls import reverse
from django.utils.html import format_html

from config.admin_paging import LargeTablePaginator
from segments_app.membership import schedule_recompute
from segments_app.models import (
    RealtimeQueueEntry,
    RealtimeState,
    Segment,
    SegmentChange,
    SegmentMember,
    SegmentSnapshot,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)
from segments_app.webhooks import new_secret


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = [
        "name", "workspace", "size", "status", "computed_at", "refresh_minutes", "error_count", "history"
    ]
    list_filter = ["status", "workspace"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "size", "computed_at", "status", "computing_since", "last_error", "error_count", "next_attempt_at", "created_at"
    ]
    raw_id_fields = ["created_by"]
    actions = ["recompute_now"]

    @admin.action(description="Recompute the stored membership (in the background)")
    def recompute_now(self, request, queryset) -> None:
        for segment_id in queryset.values_list("pk", flat=True):
            schedule_recompute(segment_id=segment_id, trigger=SegmentSnapshot.Trigger.MANUAL)
        self.message_user(request, f"{queryset.count()} segment(s) queued for recompute.")

    @admin.display(description="History")
    def history(self, obj: Segment) -> str:
        url = reverse("admin:segments_app_segmentsnapshot_changelist") + f"?segment__id__exact={obj.pk}"
        return format_html('<a href="{}">snapshots</a>', url)


class LargeTableAdmin(admin.ModelAdmin):
    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False  # membership and history are written by recomputes only

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SegmentMember)
class SegmentMemberAdmin(LargeTableAdmin):
    list_display = ["segment", "contact", "since"]
    list_filter = ["segment__workspace", "segment"]
    search_fields = ["=contact__external_id", "contact__email"]
    list_select_related = ["segment", "contact"]


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(LargeTableAdmin):
    list_display = ["segment", "computed_at", "trigger", "size", "entered", "exited", "duration_ms"]
    list_filter = ["trigger", "segment__workspace", "segment"]
    list_select_related = ["segment"]


@admin.register(SegmentChange)
class SegmentChangeAdmin(LargeTableAdmin):
    list_display = ["id", "segment", "contact", "external_id", "change", "at"]
    list_filter = ["change", "segment__workspace", "segment"]
    search_fields = ["=contact__external_id", "=external_id"]
    list_select_related = ["segment", "contact"]


# --- webhooks (segments_app.webhooks) ---------------------------------------------------------------


class WebhookCursorInline(admin.TabularInline):
    model = WebhookCursor
    extra = 0
    can_delete = False
    fields = ["segment", "last_change_id", "failures", "next_attempt_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # cursors move with confirmed deliveries only


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "workspace", "active", "segment_list", "created_at", "deliveries"]
    list_filter = ["active", "workspace"]
    search_fields = ["url", "description"]
    filter_horizontal = ["segments"]
    readonly_fields = ["start_after_change_id", "created_at"]
    inlines = [WebhookCursorInline]

    @admin.display(description="Segments")
    def segment_list(self, obj: WebhookEndpoint) -> str:
        names = [segment.name for segment in obj.segments.all()]
        return ", ".join(names) if names else "all segments"

    @admin.display(description="Deliveries")
    def deliveries(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:segments_app_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">log</a>', url)

    def save_model(self, request, obj: WebhookEndpoint, form, change: bool) -> None:
        if not change:
            # Like the API: a new endpoint receives the changes recorded from now on.
            obj.start_after_change_id = SegmentChange.objects.aggregate(last=Max("pk"))["last"] or 0
            if not obj.secret:
                obj.secret = new_secret()
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LargeTableAdmin):
    list_display = [
        "id", "endpoint", "segment", "status", "change_count", "first_change_id", "last_change_id", "attempts",
        "response_code", "last_attempt_at", "delivered_at",
    ]
    list_filter = ["status", "endpoint__workspace", "endpoint"]
    list_select_related = ["endpoint", "segment"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in {"GET", "HEAD"}  # the detail page is for reading the error


@admin.register(WebhookCursor)
class WebhookCursorAdmin(LargeTableAdmin):
    list_display = ["endpoint", "segment", "last_change_id", "failures", "next_attempt_at"]
    list_filter = ["endpoint__workspace", "endpoint"]
    list_select_related = ["endpoint", "segment"]


# --- real-time queue (segments_app.realtime): what is waiting, for operators --------------------------


@admin.register(RealtimeQueueEntry)
class RealtimeQueueEntryAdmin(LargeTableAdmin):
    list_display = ["id", "workspace", "contact_id", "kinds", "queued_at"]
    list_filter = ["workspace"]
    search_fields = ["=contact_id"]


@admin.register(RealtimeState)
class RealtimeStateAdmin(LargeTableAdmin):
    list_display = ["workspace", "task_pending", "enqueued_at"]
