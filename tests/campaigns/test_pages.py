"""Campaign pages: editors create, preview, send and read the report; viewers only read; other workspaces 404."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from campaigns.models import Campaign
from contacts.models import WorkspaceMember
from tests.campaigns.support import email_campaign, make_segment, people
from tests.factories import make_contact


def signed_in(workspace, role: str) -> Client:
    user = get_user_model().objects.create_user(username=f"{role}-{workspace.pk}", password="pw-123456789")
    WorkspaceMember.objects.create(workspace=workspace, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor(workspace) -> Client:
    return signed_in(workspace, "editor")


@pytest.fixture
def viewer(workspace) -> Client:
    return signed_in(workspace, "viewer")


@pytest.fixture
def segments(workspace):
    people(workspace, 6, tags=["vip"])
    people(workspace, 2, tags=["vip", "new"], prefix="n")
    make_contact(workspace, external_id="staff", email="s@x.io", tags=["vip", "staff"])
    return make_segment(workspace, "vip"), make_segment(workspace, "new"), make_segment(workspace, "staff")


def form(vip, new, staff, **extra) -> dict:
    return {
        "name": "Summer",
        "channel": "email",
        "subject": "Hi {{ first_name }}",
        "body": "<p>Sale</p>",
        "segments": [vip.pk, new.pk],
        f"priority_{vip.pk}": "2",
        f"priority_{new.pk}": "1",
        f"variant_subject_{new.pk}": "Welcome!",
        "exclude_segments": [staff.pk],
        "holdout_percent": "0",
        "conversion_window_days": "7",
        **extra,
    }


def test_an_editor_creates_a_campaign_from_the_form(editor, segments):
    vip, new, staff = segments
    page = editor.get("/campaigns/new/")
    assert page.status_code == 200
    assert b"Vip" in page.content and b"Own content for this segment" in page.content

    response = editor.post("/campaigns/new/", form(vip, new, staff))

    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
    targets = list(campaign.targets.order_by("priority").values_list("segment_id", "priority", "subject"))
    assert targets == [(new.pk, 1, "Welcome!"), (vip.pk, 2, "")]
    assert list(campaign.exclusions.values_list("segment_id", flat=True)) == [staff.pk]


def test_the_form_shows_located_errors_and_saves_nothing(editor, segments):
    vip, new, staff = segments
    response = editor.post("/campaigns/new/", form(vip, new, staff, holdout_percent="150", subject="{{ nope }}"))
    assert response.status_code == 400
    assert b"Nothing was saved" in response.content
    assert b"holdout_percent" in response.content
    assert Campaign.objects.count() == 0


def test_the_live_preview_counts_the_audience_and_the_overlap(editor, segments):
    vip, new, staff = segments
    response = editor.post("/campaigns/preview/", form(vip, new, staff), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200
    assert "<strong>8</strong> will receive it" in text  # 9 vip or new, minus the excluded staff member
    assert "Vip ∩ New: 2" in text or "New ∩ Vip: 2" in text
    assert "Tick at least one segment" in editor.post("/campaigns/preview/", {}).content.decode()


def test_send_from_the_detail_page_then_read_the_report(editor, workspace, segments):
    vip, new, staff = segments
    campaign = email_campaign(workspace, [vip])
    assert b"Send now" in editor.get(f"/campaigns/{campaign.pk}/").content

    editor.post(f"/campaigns/{campaign.pk}/send/")
    editor.post(f"/campaigns/{campaign.pk}/send/")

    assert len(mail.outbox) == 9
    detail = editor.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "<strong>9</strong> sent of 9" in detail
    fragment = editor.get(f"/campaigns/{campaign.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="progress")
    assert fragment.content.decode().lstrip().startswith('<div id="progress"')
    report = editor.get(f"/campaigns/{campaign.pk}/report/")
    assert report.status_code == 200 and b"By target segment" in report.content
    assert b"Summer" not in editor.get("/campaigns/").content and b"Spring sale" in editor.get("/campaigns/").content


def test_a_viewer_reads_but_cannot_create_edit_or_send(viewer, workspace, segments):
    vip, new, staff = segments
    campaign = email_campaign(workspace, [vip])
    assert viewer.get("/campaigns/").status_code == 200
    detail = viewer.get(f"/campaigns/{campaign.pk}/")
    assert detail.status_code == 200 and b"Send now" not in detail.content
    assert viewer.get("/campaigns/new/").status_code == 403
    assert viewer.post("/campaigns/new/", form(vip, new, staff)).status_code == 403
    assert viewer.get(f"/campaigns/{campaign.pk}/edit/").status_code == 403
    assert viewer.post(f"/campaigns/{campaign.pk}/send/").status_code == 403
    assert mail.outbox == [] and Campaign.objects.count() == 1


def test_another_workspaces_campaign_is_404(other_workspace, workspace, segments):
    vip, _, _ = segments
    campaign = email_campaign(workspace, [vip])
    outsider = signed_in(other_workspace, "owner")
    for path in ["", "edit/", "report/"]:
        assert outsider.get(f"/campaigns/{campaign.pk}/{path}").status_code == 404
    assert outsider.post(f"/campaigns/{campaign.pk}/send/").status_code == 404
    assert mail.outbox == []


def test_pages_need_a_sign_in(client):
    response = client.get("/campaigns/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_edit_pages_preview_draws_the_campaigns_own_control_group(editor, workspace):
    people(workspace, 80, tags=["all"])
    everyone = make_segment(workspace, "all")
    campaign = email_campaign(workspace, [everyone], holdout_percent=30)
    fields = {"segments": [everyone.pk], "holdout_percent": "30", "campaign": str(campaign.pk)}

    preview = editor.post("/campaigns/preview/", fields).content.decode()
    editor.post(f"/campaigns/{campaign.pk}/send/")

    control = campaign.recipients.filter(is_control=True).count()
    assert f'<th scope="row">− control group (holdout)</th><td class="num">{control}</td>' in preview
    assert "its size may differ" not in preview
