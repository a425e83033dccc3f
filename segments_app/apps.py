from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SegmentsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments_app"

    def ready(self) -> None:
        from segments_app.casefold import register_on_sqlite

        connection_created.connect(register_on_sqlite, dispatch_uid="segments_app.casefold")
