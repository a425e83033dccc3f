"""Campaign pages (mounted at the site root by config.urls)."""

from django.urls import path

from campaigns import views

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/preview/", views.audience_preview, name="campaign-preview"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:campaign_id>/send/", views.campaign_send, name="campaign-send"),
    path("campaigns/<int:campaign_id>/report/", views.campaign_report, name="campaign-report"),
]
