"""Campaigns and automations API (mounted under /api/v1/ by config.urls)."""

from django.urls import path

from campaigns import api

urlpatterns = [
    path("campaigns/", api.CampaignListApi.as_view(), name="api-campaigns"),
    path("campaigns/preview/", api.CampaignPreviewApi.as_view(), name="api-campaign-preview"),
    path("campaigns/<int:campaign_id>/", api.CampaignDetailApi.as_view(), name="api-campaign"),
    path("campaigns/<int:campaign_id>/send/", api.CampaignSendApi.as_view(), name="api-campaign-send"),
    path(
        "campaigns/<int:campaign_id>/recipients/", api.CampaignRecipientsApi.as_view(), name="api-campaign-recipients"
    ),
    path("campaigns/<int:campaign_id>/report/", api.CampaignReportApi.as_view(), name="api-campaign-report"),
    path("automations/", api.AutomationListApi.as_view(), name="api-automations"),
    path("automations/<int:automation_id>/", api.AutomationDetailApi.as_view(), name="api-automation"),
    path("automations/<int:automation_id>/sends/", api.AutomationSendsApi.as_view(), name="api-automation-sends"),
]
