"""The Segment tracking API, mounted at /v1/. Segment's libraries post to <host>/v1/batch (no slash);
the slashed spelling is accepted too and left out of the schema."""

from django.urls import path

from contacts import segment_api

ROUTES = [
    ("batch", segment_api.SegmentBatchApi, "segment-batch"),
    ("identify", segment_api.SegmentIdentifyApi, "segment-identify"),
    ("track", segment_api.SegmentTrackApi, "segment-track"),
    ("page", segment_api.SegmentPageApi, "segment-page"),
    ("screen", segment_api.SegmentScreenApi, "segment-screen"),
    ("alias", segment_api.SegmentAliasApi, "segment-alias"),
    ("group", segment_api.SegmentGroupApi, "segment-group"),
]

urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in ROUTES] + [
    path(f"{route}/", view.as_view(schema=None)) for route, view, _ in ROUTES
]
