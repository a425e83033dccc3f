"""Routes of the ESP-sync API (segments_app.membership_api), mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from segments_app import membership_api

urlpatterns = [
    path("segments/<int:segment_id>/members/", membership_api.SegmentMembersApi.as_view(), name="segment-members"),
    path(
        "segments/<int:segment_id>/snapshots/", membership_api.SegmentSnapshotsApi.as_view(), name="segment-snapshots"
    ),
    path("segments/<int:segment_id>/changes/", membership_api.SegmentChangesApi.as_view(), name="segment-changes"),
    path("segments/<int:segment_id>/refresh/", membership_api.SegmentRefreshApi.as_view(), name="segment-refresh"),
    path("webhooks/", membership_api.WebhookListApi.as_view(), name="webhook-list"),
    path("webhooks/<int:endpoint_id>/", membership_api.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/",
        membership_api.WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
]
