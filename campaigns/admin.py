"""Campaigns in the admin: settings, state, audience counts and errors; recipients and sends read-only."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import Automation, AutomationSend, Campaign, CampaignExclusion, CampaignRecipient, CampaignTarget
from campaigns.services import request_send
from config.admin_paging import LargeTablePaginator


class CampaignTargetInline(admin.TabularInline):
    model = CampaignTarget
    extra = 0
    raw_id_fields = ["segment"]


class CampaignExclusionInline(admin.TabularInline):
    model = CampaignExclusion
    extra = 0
    raw_id_fields = ["segment"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "channel", "status", "scheduled_at", "started_at", "finished_at", "last_error"]
    list_filter = ["status", "channel", "workspace"]
    search_fields = ["name", "subject"]
    readonly_fields = [
        "status",
        "queued_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "audience",
        "last_error",
        "last_error_at",
        "created_at",
        "updated_at",
    ]
    raw_id_fields = ["created_by"]
    inlines = [CampaignTargetInline, CampaignExclusionInline]
    actions = ["send_now"]

    @admin.action(description="Send now (recompute, freeze the audience, deliver)")
    def send_now(self, request, queryset) -> None:
        started = sum(request_send(campaign=campaign) for campaign in queryset)
        self.message_user(request, f"{started} campaign(s) started; the others were already sent or sending.")


class ReadOnlyRowsAdmin(admin.ModelAdmin):
    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False  # written by the send and the automations only

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CampaignRecipient)
class CampaignRecipientAdmin(ReadOnlyRowsAdmin):
    list_display = ["campaign", "contact", "segment", "is_control", "status", "sent_at", "attempts", "last_error"]
    list_filter = ["status", "is_control"]
    raw_id_fields = ["campaign", "contact", "segment"]
    search_fields = ["contact__external_id", "contact__email"]


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace",
        "segment",
        "trigger",
        "action",
        "frequency",
        "active",
        "last_run_at",
        "last_error",
    ]
    list_filter = ["active", "trigger", "action", "workspace"]
    raw_id_fields = ["segment", "campaign"]
    readonly_fields = ["last_change_id", "last_run_at", "last_error", "last_error_at", "created_at"]


@admin.register(AutomationSend)
class AutomationSendAdmin(ReadOnlyRowsAdmin):
    list_display = ["automation", "contact", "change_id", "triggered_at", "status", "sent_at", "attempts", "last_error"]
    list_filter = ["status"]
    raw_id_fields = ["automation", "contact"]


@admin.register(CampaignTarget)
class CampaignTargetAdmin(admin.ModelAdmin):
    list_display = ["campaign", "segment", "priority", "subject"]
    raw_id_fields = ["campaign", "segment"]


@admin.register(CampaignExclusion)
class CampaignExclusionAdmin(admin.ModelAdmin):
    list_display = ["campaign", "segment"]
    raw_id_fields = ["campaign", "segment"]
