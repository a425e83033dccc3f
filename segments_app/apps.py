from django.apps import AppConfig


class SegmentsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments_app"
