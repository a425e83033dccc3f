"""Pages of the marketer's segment wizard (segments_app.web.views), mounted at the site root."""

from django.urls import path

from segments_app.web import views

urlpatterns = [
    path("", views.segment_list, name="segment-list"),
    path("segments/", views.segment_list),
    path("segments/new/", views.segment_new, name="segment-new"),
    path("segments/new/builder/", views.segment_create, name="segment-create"),
    path("segments/builder/action/", views.builder_action, name="segment-builder-action"),
    path("segments/builder/preview/", views.builder_preview, name="segment-builder-preview"),
    path("segments/builder/sample/", views.builder_sample, name="segment-builder-sample"),
    path("segments/suggest/", views.suggest, name="segment-suggest"),
    path("segments/<int:segment_id>/", views.segment_detail, name="segment-detail"),
    path("segments/<int:segment_id>/edit/", views.segment_edit, name="segment-edit"),
    path("segments/<int:segment_id>/refresh/", views.segment_refresh, name="segment-refresh"),
    path("segments/<int:segment_id>/status/", views.segment_status, name="segment-status"),
    path("segments/<int:segment_id>/delete/", views.segment_delete, name="segment-delete"),
    path("segments/<int:segment_id>/members.csv", views.segment_members_csv, name="segment-members-csv"),
]
