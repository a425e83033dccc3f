"""Routes of the segments API (segments_app.api), mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from segments_app import api

urlpatterns = [
    path("segments/", api.SegmentListApi.as_view(), name="segment-list-api"),
    path("segments/preview/", api.SegmentPreviewApi.as_view(), name="segment-preview"),
    path("segments/templates/", api.SegmentTemplatesApi.as_view(), name="segment-templates"),
    path("segments/fields/", api.SegmentFieldsApi.as_view(), name="segment-fields"),
    path("segments/definition-schema/", api.SegmentDefinitionSchemaApi.as_view(), name="segment-definition-schema"),
    path("segments/<int:segment_id>/", api.SegmentDetailApi.as_view(), name="segment-detail-api"),
    # path: external ids may contain slashes ("shop/123").
    path(
        "segments/<int:segment_id>/explain/<path:external_id>/",
        api.SegmentExplainApi.as_view(),
        name="segment-explain",
    ),
]
