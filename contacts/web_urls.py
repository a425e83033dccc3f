from django.contrib.auth import views as auth_views
from django.urls import path

from contacts import web_views
from contacts.web_views import switch_workspace_view

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspace/switch/", switch_workspace_view, name="switch-workspace"),
    path("contacts/", web_views.contact_list, name="contact-list"),
    path("contacts/<int:contact_id>/", web_views.contact_detail, name="contact-detail"),
    path("contacts/<int:contact_id>/explain/", web_views.contact_explain, name="contact-explain"),
    path("contacts/import/", web_views.import_upload, name="contact-import"),
    path("contacts/import/<str:token>/", web_views.import_map, name="contact-import-map"),
]
