"""Who may see and change what: sign-in, roles (viewers never edit), workspaces never leak."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import WorkspaceMember
from segments_app.models import Segment
from tests.factories import make_contact

ALL_CONTACTS = {"match": "all", "conditions": []}


@pytest.fixture
def segment(workspace) -> Segment:
    return Segment.objects.create(workspace=workspace, name="Everyone", definition=ALL_CONTACTS)


PAGES = ["/", "/segments/", "/contacts/", "/segments/new/", "/contacts/import/"]


@pytest.mark.parametrize("url", PAGES)
def test_pages_ask_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_viewer_sees_segments_without_edit_controls(viewer, segment):
    page = viewer.get(f"/segments/{segment.pk}/").content.decode()
    assert "Everyone" in page
    assert "Refresh now" not in page and "Edit</a>" not in page and "Delete" not in page
    listing = viewer.get("/").content.decode()
    assert "New segment" not in listing


def test_viewer_is_refused_every_edit_endpoint(viewer, segment, workspace):
    contact = make_contact(workspace)
    assert viewer.get(f"/contacts/{contact.pk}/").status_code == 200  # reading is fine
    refused = [
        viewer.get("/segments/new/"),
        viewer.get("/segments/new/builder/"),
        viewer.post("/segments/new/builder/", {"name": "x", "match": "all"}),
        viewer.get(f"/segments/{segment.pk}/edit/"),
        viewer.post(f"/segments/{segment.pk}/edit/", {"name": "x", "match": "all"}),
        viewer.post("/segments/builder/action/", {"match": "all", "action": "add||tag"}),
        viewer.post("/segments/builder/preview/", {"match": "all"}),
        viewer.post("/segments/builder/sample/", {"match": "all"}),
        viewer.post(f"/segments/{segment.pk}/refresh/"),
        viewer.post(f"/segments/{segment.pk}/delete/"),
        viewer.get("/contacts/import/"),
    ]
    assert [response.status_code for response in refused] == [403] * len(refused)
    assert Segment.objects.filter(pk=segment.pk, name="Everyone").exists()


def test_another_workspaces_segments_and_contacts_are_not_found(editor, other_workspace):
    foreign = Segment.objects.create(workspace=other_workspace, name="Theirs", definition=ALL_CONTACTS)
    stranger = make_contact(other_workspace)
    assert editor.get(f"/segments/{foreign.pk}/").status_code == 404
    assert editor.get(f"/segments/{foreign.pk}/members.csv").status_code == 404
    assert editor.post(f"/segments/{foreign.pk}/refresh/").status_code == 404
    assert editor.get(f"/contacts/{stranger.pk}/").status_code == 404
    assert "Theirs" not in editor.get("/").content.decode()
    # Nor can a builder post claim to edit it (its id decides what a segment condition may refer to).
    assert editor.post("/segments/builder/preview/", {"match": "all", "segment_id": foreign.pk}).status_code == 404


def test_the_switcher_changes_the_workspace_of_every_page(editor, workspace, other_workspace):
    WorkspaceMember.objects.create(workspace=other_workspace, user=editor.user, role="viewer")
    Segment.objects.create(workspace=workspace, name="Ours", definition=ALL_CONTACTS)
    Segment.objects.create(workspace=other_workspace, name="Theirs", definition=ALL_CONTACTS)
    page = editor.get("/").content.decode()
    assert "Ours" in page and "Theirs" not in page and 'id="workspace-switcher"' in page

    response = editor.post(reverse("switch-workspace"), {"workspace": other_workspace.pk, "next": "/contacts/"})
    assert response.status_code == 302 and response["Location"] == "/contacts/"
    page = editor.get("/").content.decode()
    assert "Theirs" in page and "Ours" not in page
    # The role follows the workspace: a viewer there.
    assert editor.get("/segments/new/").status_code == 403


def test_a_user_outside_every_workspace_is_refused(client, django_user_model, db):
    user = django_user_model.objects.create_user(username="nobody")
    client.force_login(user)
    assert client.get("/").status_code == 403
