"""REST API of campaigns and automations: thin views, parse -> one service or selector -> respond.

A campaign, automation or segment of another workspace answers 404 (or a located 400 when named in a
body). Lists are `{"results": [...], "next": <url or null>, "next_cursor": <string or null>}`, newest
first for campaigns and automations, in id order for recipients; pass `next_cursor` back as `?cursor=`.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import automations, reports, selectors, services
from campaigns.models import Automation, Campaign, DeliveryStatus
from campaigns.serializers import (
    AutomationCreatedOut,
    AutomationIn,
    AutomationOut,
    AutomationPatch,
    AutomationSendOut,
    AutomationSendsPageOut,
    AutomationsPageOut,
    CampaignCreatedOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignsPageOut,
    PreviewIn,
    PreviewOut,
    RecipientOut,
    RecipientsPageOut,
    ReportOut,
    SendOut,
)
from config.api_errors import ApiError
from config.api_paging import int_param, keyset_page, next_url, page_size
from contacts.serializers import ApiErrorsOut

CAMPAIGN_ID = OpenApiParameter("campaign_id", int, OpenApiParameter.PATH, description="The campaign's id.")
AUTOMATION_ID = OpenApiParameter("automation_id", int, OpenApiParameter.PATH, description="The automation's id.")
CURSOR = OpenApiParameter("cursor", str, description="`next_cursor` of the previous page; omit for the first page.")
PAGE_SIZE = OpenApiParameter("page_size", int, description="Rows per page, 1 to 1,000 (default 100).")
NOT_FOUND = OpenApiResponse(ApiErrorsOut, description="No such campaign in this workspace.")
BAD_INPUT = OpenApiResponse(
    ApiErrorsOut,
    description="Located errors, nothing written: unknown fields, segments of another workspace, holdout outside "
    "0..100, unparsable or past dates, template errors or unknown merge fields.",
)
LOCKED = OpenApiResponse(ApiErrorsOut, description="The campaign is being sent or was sent: it cannot change.")


def _parse(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _campaign(request: Request, campaign_id: int) -> Campaign:
    campaign = selectors.get_campaign(workspace=request.workspace, campaign_id=campaign_id)
    if campaign is None:
        raise Http404
    return campaign


def _page(request: Request, queryset, *, descending: bool) -> tuple[list, dict]:
    rows, more = keyset_page(
        queryset, key="pk", after=int_param(request, "cursor"), descending=descending, size=page_size(request)
    )
    next_cursor = str(rows[-1].pk) if more else None
    return rows, {"next": next_url(request, "cursor", next_cursor), "next_cursor": next_cursor}


CREATE_EXAMPLE = OpenApiExample(
    "Email to two segments, one excluded, 10% holdout",
    request_only=True,
    value={
        "name": "Spring sale",
        "subject": "{{ first_name|default:'Hello' }}, 20% off this week",
        "body": "<p>Hi {{ first_name }},</p><p>Everything is 20% off until Sunday.</p>",
        "segments": [12, 7],
        "exclude_segments": [9],
        "variants": [{"segment": 7, "subject": "Welcome back, {{ first_name }}: 20% off"}],
        "holdout_percent": 10,
        "scheduled_at": "2030-04-01T09:00:00Z",
    },
)


class CampaignListApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="List campaigns",
        operation_id="campaigns_list",
        description="Newest first, cursor paginated.",
        parameters=[CURSOR, PAGE_SIZE],
        responses={200: CampaignsPageOut, 400: ApiErrorsOut},
    )
    def get(self, request: Request) -> Response:
        rows, links = _page(request, selectors.campaign_list(workspace=request.workspace), descending=True)
        return Response({"results": CampaignOut(rows, many=True).data, **links})

    @extend_schema(
        tags=["campaigns"],
        summary="Create a campaign",
        description="A draft, or `scheduled` when `scheduled_at` is given (then it must be complete: target "
        "segments, and subject and body for email or `webhook_url` for the webhook channel). Target priority: the "
        "order of `segments` (first wins) unless a variant sets `priority` (1 wins over 2). The webhook secret is "
        "shown in this answer only.",
        request=CampaignIn,
        responses={201: CampaignCreatedOut, 400: BAD_INPUT},
        examples=[CREATE_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        data = _parse(CampaignIn, request)
        try:
            campaign = services.create_campaign(workspace=request.workspace, data=data)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        campaign = selectors.get_campaign(workspace=request.workspace, campaign_id=campaign.pk)
        return Response(CampaignCreatedOut(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="One campaign",
        description="Settings, state (`draft`, `scheduled`, `queued`, `sending`, `sent`, `failed`), the audience "
        "counts taken when it was frozen (who was left out and why) and delivery progress by status.",
        parameters=[CAMPAIGN_ID],
        responses={200: CampaignOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(CampaignOut(_campaign(request, campaign_id)).data)

    @extend_schema(
        tags=["campaigns"],
        summary="Change a campaign",
        description="Only the given fields change. `segments` replaces the targets (variants of segments that stay "
        "are kept); `scheduled_at` schedules (or, null, unschedules). A campaign being sent or sent answers 409.",
        parameters=[CAMPAIGN_ID],
        request=CampaignPatch,
        responses={200: CampaignOut, 400: BAD_INPUT, 404: NOT_FOUND, 409: LOCKED},
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign(request, campaign_id)
        data = _parse(CampaignPatch, request)
        try:
            services.update_campaign(campaign=campaign, data=data)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        except services.CampaignLocked as exc:
            raise ApiError([{"path": "", "message": str(exc)}], status_code=status.HTTP_409_CONFLICT) from exc
        return Response(CampaignOut(_campaign(request, campaign_id)).data)


class CampaignSendApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="Send now",
        description="Recomputes the target and exclusion segments, freezes the audience as recipients (variant, "
        "control flag) and delivers it in batches with retries, in the background when a Celery broker is "
        "configured (202 while in progress, 200 once sent). Idempotent: a second call sends nothing again and "
        "answers the campaign's state with `started: false`. 400 when the campaign is not complete.",
        parameters=[CAMPAIGN_ID],
        request=None,
        responses={200: SendOut, 202: SendOut, 400: ApiErrorsOut, 404: NOT_FOUND},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign(request, campaign_id)
        try:
            started = services.request_send(campaign=campaign)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        campaign = _campaign(request, campaign_id)
        done = campaign.status in {Campaign.Status.SENT, Campaign.Status.FAILED}
        return Response(
            {"started": started, "campaign": CampaignOut(campaign).data},
            status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED,
        )


class CampaignRecipientsApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="Recipients",
        description="The frozen audience in id order, each with its variant (target segment), control flag and "
        "delivery status; contacts left out (exclusions, unsubscribed, bounced, complained, no email) are not "
        "recipients (see the campaign's `audience` counts). Filters: `status`, `segment`, `control`.",
        parameters=[
            CAMPAIGN_ID,
            CURSOR,
            PAGE_SIZE,
            OpenApiParameter("status", str, enum=[s.value for s in DeliveryStatus if s != DeliveryStatus.SKIPPED]),
            OpenApiParameter("segment", int, description="Recipients whose variant is this target segment."),
            OpenApiParameter("control", bool, description="true: the holdout only; false: the treated only."),
        ],
        responses={200: RecipientsPageOut, 400: ApiErrorsOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign(request, campaign_id)
        rows = selectors.campaign_recipients(campaign=campaign)
        params = request.query_params
        if "status" in params:
            if params["status"] not in DeliveryStatus.values:
                raise ValidationError({"status": [f"one of {', '.join(DeliveryStatus.values)}"]})
            rows = rows.filter(status=params["status"])
        if "segment" in params:
            rows = rows.filter(segment_id=int_param(request, "segment"))
        if "control" in params:
            if params["control"] not in {"true", "false"}:
                raise ValidationError({"control": ["true or false"]})
            rows = rows.filter(is_control=params["control"] == "true")
        page, links = _page(request, rows, descending=False)
        return Response({"results": RecipientOut(page, many=True).data, **links})


class CampaignReportApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="Report",
        description="Per campaign and per target segment: recipients, sent, delivered, opens, clicks, "
        "unsubscribes, bounces, complaints (from events whose `campaign` is the campaign's `tracking_key`), rates, "
        "and conversions (orders within `conversion_window_days` of the send) of the treated group against the "
        "holdout, with the lift and its 95% confidence interval (normal approximation of a difference of two "
        "proportions); segment health warnings per target segment.",
        parameters=[CAMPAIGN_ID],
        responses={200: ReportOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(ReportOut(reports.campaign_report(campaign=_campaign(request, campaign_id))).data)


class CampaignPreviewApi(APIView):
    @extend_schema(
        tags=["campaigns"],
        summary="Preview an audience",
        description="What an audience would be now, from the segments' stored membership, without saving: "
        "contacts targeted, left out per reason, recipients, control, and the overlap of the target segments.",
        request=PreviewIn,
        responses={200: PreviewOut, 400: BAD_INPUT},
    )
    def post(self, request: Request) -> Response:
        data = _parse(PreviewIn, request)
        try:
            preview = selectors.audience_preview(workspace=request.workspace, data=data)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        return Response(preview)


# --- automations ------------------------------------------------------------------------------------


def _automation(request: Request, automation_id: int) -> Automation:
    automation = selectors.automation_list(workspace=request.workspace).filter(pk=automation_id).first()
    if automation is None:
        raise Http404
    return automation


class AutomationListApi(APIView):
    @extend_schema(
        tags=["automations"],
        summary="List automations",
        operation_id="automations_list",
        parameters=[CURSOR, PAGE_SIZE],
        responses={200: AutomationsPageOut, 400: ApiErrorsOut},
    )
    def get(self, request: Request) -> Response:
        rows, links = _page(request, selectors.automation_list(workspace=request.workspace), descending=True)
        return Response({"results": AutomationOut(rows, many=True).data, **links})

    @extend_schema(
        tags=["automations"],
        summary="Create an automation",
        description="When a contact enters (or exits) `segment`, send `campaign`'s message (its channel and "
        "content, the variant for this segment if it has one) or POST the contact to `webhook_url`; at most once "
        "per contact, or again after `cooldown_hours`. Acts on changes from now on, driven by the segment's "
        "change log.",
        request=AutomationIn,
        responses={201: AutomationCreatedOut, 400: BAD_INPUT},
    )
    def post(self, request: Request) -> Response:
        data = _parse(AutomationIn, request)
        try:
            automation = automations.create_automation(workspace=request.workspace, data=data)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        return Response(AutomationCreatedOut(automation).data, status=status.HTTP_201_CREATED)


class AutomationDetailApi(APIView):
    @extend_schema(
        tags=["automations"],
        summary="One automation",
        parameters=[AUTOMATION_ID],
        responses={200: AutomationOut, 404: ApiErrorsOut},
    )
    def get(self, request: Request, automation_id: int) -> Response:
        return Response(AutomationOut(_automation(request, automation_id)).data)

    @extend_schema(
        tags=["automations"],
        summary="Change an automation",
        parameters=[AUTOMATION_ID],
        request=AutomationPatch,
        description="Only the given fields change; another segment starts after its current changes.",
        responses={200: AutomationOut, 400: BAD_INPUT, 404: ApiErrorsOut},
    )
    def patch(self, request: Request, automation_id: int) -> Response:
        automation = _automation(request, automation_id)
        data = _parse(AutomationPatch, request)
        try:
            automation = automations.update_automation(automation=automation, data=data)
        except services.CampaignInvalid as exc:
            raise ApiError(exc.errors) from exc
        return Response(AutomationOut(automation).data)


class AutomationSendsApi(APIView):
    @extend_schema(
        tags=["automations"],
        summary="Sends of an automation",
        description="One per segment change acted on, newest first; `skipped` ones say why in `last_error`.",
        parameters=[AUTOMATION_ID, CURSOR, PAGE_SIZE],
        responses={200: AutomationSendsPageOut, 404: ApiErrorsOut},
    )
    def get(self, request: Request, automation_id: int) -> Response:
        automation = _automation(request, automation_id)
        rows = selectors.automation_sends(automation=automation)
        page, links = _page(request, rows, descending=True)
        return Response({"results": AutomationSendOut(page, many=True).data, **links})
