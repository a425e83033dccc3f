"""Segments in the admin: definitions, recompute status and errors, stored membership and its history."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.admin_paging import LargeTablePaginator
from segments_app.models import Segment, SegmentChange, SegmentMember, SegmentSnapshot


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = [
        "name", "workspace", "size", "status", "computed_at", "refresh_minutes", "error_count", "history"
    ]
    list_filter = ["status", "workspace"]
    search_fields = ["name", "description"]
    readonly_fields = ["size", "computed_at", "status", "computing_since", "last_error", "error_count", "created_at"]
    raw_id_fields = ["created_by"]

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
    list_display = ["id", "segment", "contact", "change", "at"]
    list_filter = ["change", "segment__workspace", "segment"]
    search_fields = ["=contact__external_id"]
    list_select_related = ["segment", "contact"]
