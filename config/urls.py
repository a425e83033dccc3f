from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("contacts.urls")),
    path("api/v1/", include("segments_app.urls")),
    path("api/v1/", include("segments_app.membership_urls")),
    path("api/v1/", include("campaigns.urls")),
    path("v1/", include("contacts.segment_urls")),
    path("", include("contacts.web_urls")),
    path("", include("segments_app.web_urls")),
    path("", include("campaigns.web_urls")),
]
