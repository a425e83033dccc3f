"""Which workspace a signed-in person is working in, and what their role lets them do."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from contacts.models import WorkspaceMember

SESSION_KEY = "workspace_id"


def memberships_of(user) -> list[WorkspaceMember]:
    return list(WorkspaceMember.objects.filter(user=user).select_related("workspace").order_by("workspace__name"))


def current_membership(request: HttpRequest) -> WorkspaceMember | None:
    """The membership chosen in the session, else the user's first one."""
    if not request.user.is_authenticated:
        return None
    memberships = memberships_of(request.user)
    chosen = request.session.get(SESSION_KEY)
    for membership in memberships:
        if membership.workspace_id == chosen:
            return membership
    return memberships[0] if memberships else None


def workspace_view(*, edit: bool = False) -> Callable:
    """Decorate a view: signed in, member of a workspace; `edit=True` refuses viewers (403).

    The view receives `request.workspace` and `request.membership`.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            membership = current_membership(request)
            if membership is None:
                raise PermissionDenied("You are not a member of any workspace.")
            if edit and not membership.can_edit:
                raise PermissionDenied("Viewers cannot change anything in this workspace.")
            request.membership = membership
            request.workspace = membership.workspace
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def switch_workspace(request: HttpRequest, workspace_id: int) -> bool:
    """Remember the chosen workspace if the user is a member of it."""
    if WorkspaceMember.objects.filter(user=request.user, workspace_id=workspace_id).exists():
        request.session[SESSION_KEY] = workspace_id
        return True
    return False


def workspace_context(request: HttpRequest) -> dict:
    """Template context: the current workspace, the user's role and the switcher's choices."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None) or current_membership(request)
    return {
        "current_membership": membership,
        "current_workspace": membership.workspace if membership else None,
        "can_edit": bool(membership and membership.can_edit),
        "all_memberships": memberships_of(request.user),
    }
