from django.contrib.auth import views as auth_views
from django.urls import path

from contacts.web_views import switch_workspace_view

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspace/switch/", switch_workspace_view, name="switch-workspace"),
]
