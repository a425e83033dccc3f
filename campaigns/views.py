"""Campaign pages: list, create/edit (segments with live sizes, overlap and an audience preview), send, report.

Thin like the API: the form is parsed by the API's own input serializer and saved by the same services,
so the page refuses exactly what the API refuses, with the same messages. One view serves a page and,
for an htmx request, its fragment (the audience preview, the delivery progress).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns import reports, selectors, services
from campaigns.errors import CampaignInvalid, CampaignLocked
from campaigns.models import Campaign, Channel
from campaigns.serializers import CampaignIn, PreviewIn
from config.api_errors import flatten_errors
from contacts.web_access import workspace_view

TEXT_FIELDS = ("name", "channel", "subject", "body", "body_text", "from_email", "webhook_url")
IN_PROGRESS = {Campaign.Status.QUEUED, Campaign.Status.SENDING}


def _campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    campaign = selectors.get_campaign(workspace=request.workspace, campaign_id=campaign_id)
    if campaign is None:
        raise Http404("No such campaign in this workspace.")
    return campaign


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()]


def form_data(post) -> dict[str, Any]:  # noqa: ANN001 - a QueryDict
    """The form's fields as API input: targets ordered by their priority boxes, variants where filled in."""
    data: dict[str, Any] = {name: post.get(name, "") for name in TEXT_FIELDS}
    data["channel"] = data["channel"] or Channel.EMAIL
    ticked = list(dict.fromkeys(_ids(post.getlist("segments"))))
    priority = {sid: post.get(f"priority_{sid}", "") for sid in ticked}
    # By the priority boxes; a box left empty goes last, in the order ticked.
    order = sorted(
        enumerate(ticked), key=lambda item: (int(p) if (p := priority[item[1]]).isdigit() else 10**6, item[0])
    )
    targets = [sid for _, sid in order]
    data["segments"] = targets
    data["exclude_segments"] = _ids(post.getlist("exclude_segments"))
    variants = []
    for position, sid in enumerate(targets, start=1):
        variant: dict[str, Any] = {"segment": sid, "priority": position}
        for name in ("subject", "body"):
            variant[name] = post.get(f"variant_{name}_{sid}", "")
        variants.append(variant)
    data["variants"] = variants
    data["holdout_percent"] = post.get("holdout_percent") or "0"
    data["conversion_window_days"] = post.get("conversion_window_days") or "7"
    data["scheduled_at"] = post.get("scheduled_at") or None
    if data["channel"] != Channel.WEBHOOK:
        data["webhook_url"] = ""
    return data


def _parse(serializer_class, data: dict[str, Any]) -> tuple[dict | None, list[dict[str, str]]]:  # noqa: ANN001
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data, []
    return None, flatten_errors(serializer.errors)


def _form_context(request: HttpRequest, campaign: Campaign | None, values: dict[str, Any], errors: list) -> dict:
    segments = list(selectors.workspace_segments(workspace=request.workspace))
    health = reports.segment_health(workspace=request.workspace, segment_ids=[s.pk for s in segments])
    variants = {v["segment"]: v for v in values.get("variants", [])}
    targets = values.get("segments", [])
    rows = []
    for segment in segments:
        position = targets.index(segment.pk) + 1 if segment.pk in targets else ""
        rows.append(
            {
                "segment": segment,
                "target": segment.pk in targets,
                "priority": position,
                "excluded": segment.pk in values.get("exclude_segments", []),
                "variant": variants.get(segment.pk, {}),
                "warnings": health.get(segment.pk, []),
            }
        )
    rows.sort(key=lambda row: (not row["target"], row["priority"] or 0, row["segment"].name.lower()))
    by_path: dict[str, list[str]] = {}
    for error in errors:
        by_path.setdefault(error["path"].split("[")[0].split(".")[0], []).append(error["message"])
    return {
        "campaign": campaign,
        "values": values,
        "rows": rows,
        "errors": errors,
        "field_errors": by_path,
        "channels": Channel.choices,
    }


def _initial(campaign: Campaign) -> dict[str, Any]:
    targets = sorted(campaign.targets.all(), key=lambda t: (t.priority, t.segment_id))
    scheduled = campaign.scheduled_at.strftime("%Y-%m-%dT%H:%M") if campaign.scheduled_at else ""
    return {
        **{name: getattr(campaign, name) for name in TEXT_FIELDS},
        "segments": [t.segment_id for t in targets],
        "exclude_segments": [e.segment_id for e in campaign.exclusions.all()],
        "variants": [{"segment": t.segment_id, "subject": t.subject, "body": t.body} for t in targets],
        "holdout_percent": campaign.holdout_percent,
        "conversion_window_days": campaign.conversion_window_days,
        "scheduled_at": scheduled,
    }


def _save(request: HttpRequest, campaign: Campaign | None) -> tuple[Campaign | None, dict, list]:
    values = form_data(request.POST)
    data, errors = _parse(CampaignIn, values)
    if errors:
        return None, values, errors
    try:
        if campaign is None:
            saved = services.create_campaign(workspace=request.workspace, data=data, user=request.user)
        else:
            saved = services.update_campaign(campaign=campaign, data=data)
    except CampaignInvalid as exc:
        return None, values, exc.errors
    except CampaignLocked as exc:
        return None, values, [{"path": "", "message": str(exc)}]
    return saved, values, []


@workspace_view()
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = list(selectors.campaign_list(workspace=request.workspace)[:200])
    return render(request, "campaigns/list.html", {"campaigns": campaigns})


@workspace_view(edit=True)
def campaign_new(request: HttpRequest) -> HttpResponse:
    values: dict[str, Any] = {"channel": Channel.EMAIL, "holdout_percent": 10, "conversion_window_days": 7}
    errors: list = []
    if request.method == "POST":
        saved, values, errors = _save(request, None)
        if saved is not None:
            messages.success(request, f"Campaign “{saved.name}” saved.")
            return redirect("campaign-detail", campaign_id=saved.pk)
    context = _form_context(request, None, values, errors)
    return render(request, "campaigns/form.html", context, status=400 if errors else 200)


@workspace_view(edit=True)
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    if not campaign.editable:
        messages.error(request, f"This campaign is {campaign.status}: it can no longer be changed.")
        return redirect("campaign-detail", campaign_id=campaign.pk)
    values, errors = _initial(campaign), []
    if request.method == "POST":
        saved, values, errors = _save(request, campaign)
        if saved is not None:
            messages.success(request, "Changes saved.")
            return redirect("campaign-detail", campaign_id=saved.pk)
    context = _form_context(request, campaign, values, errors)
    return render(request, "campaigns/form.html", context, status=400 if errors else 200)


@workspace_view()
def audience_preview(request: HttpRequest) -> HttpResponse:
    """The form's live panel: who the chosen segments reach after exclusions, suppression and holdout."""
    query = request.POST if request.method == "POST" else request.GET
    values = form_data(query)
    # Editing a saved campaign: its own holdout draw; a new one only has the expected control size.
    campaign_id = int(query["campaign"]) if query.get("campaign", "").isdigit() else 0
    if campaign_id and selectors.get_campaign(workspace=request.workspace, campaign_id=campaign_id) is None:
        campaign_id = 0
    context: dict[str, Any] = {"targets": values["segments"], "exact_holdout": bool(campaign_id)}
    if values["segments"]:
        data, errors = _parse(
            PreviewIn, {k: values[k] for k in ("segments", "exclude_segments", "channel", "holdout_percent")}
        )
        if not errors:
            try:
                context["preview"] = selectors.audience_preview(
                    workspace=request.workspace, data=data, campaign_id=campaign_id
                )
            except CampaignInvalid as exc:
                errors = exc.errors
        context["errors"] = errors
        names = dict(selectors.workspace_segments(workspace=request.workspace).values_list("pk", "name"))
        context["names"] = names
        if "preview" in context:
            context["overlap"] = [
                {**pair, "a_name": names.get(pair["a"]), "b_name": names.get(pair["b"])}
                for pair in context["preview"]["overlap"]
            ]
            context["per_segment"] = [
                {
                    "name": names.get(sid),
                    **context["preview"]["by_segment"].get(str(sid), {"recipients": 0, "control": 0}),
                }
                for sid in values["segments"]
            ]
    return render(request, "campaigns/_audience.html", context)


@workspace_view()
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    context = {
        "campaign": campaign,
        "progress": selectors.delivery_progress(campaign=campaign) if campaign.started_at else None,
        "in_progress": campaign.status in IN_PROGRESS,
        "targets": sorted(campaign.targets.select_related("segment"), key=lambda t: (t.priority, t.segment_id)),
        "exclusions": campaign.exclusions.select_related("segment"),
        "ready_errors": services.readiness_errors(campaign) if campaign.status in services.SENDABLE else [],
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "progress":
        return render(request, "campaigns/_progress.html", context)
    return render(request, "campaigns/detail.html", context)


@require_POST
@workspace_view(edit=True)
def campaign_send(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    try:
        started = services.request_send(campaign=campaign)
    except CampaignInvalid as exc:
        for error in exc.errors:
            messages.error(request, f"{error['path']}: {error['message']}")
        return redirect("campaign-detail", campaign_id=campaign.pk)
    if started:
        messages.success(request, "Sending: the segments are recomputed and the audience is frozen.")
    else:
        messages.info(request, "This campaign was already sent; nothing was sent again.")
    return redirect("campaign-detail", campaign_id=campaign.pk)


@workspace_view()
def campaign_report(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    return render(
        request, "campaigns/report.html", {"campaign": campaign, "report": reports.campaign_report(campaign=campaign)}
    )
