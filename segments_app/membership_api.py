"""REST API for keeping an ESP in sync: stored members, snapshots, the change feed, refresh, webhooks.

Thin views: parse the query, call one selector or service, render. A segment or endpoint of another
workspace answers 404. Paginated answers are `{"results": [...], "next": <url or null>,
"next_cursor": <string or null>}`; pass `next_cursor` back as `?cursor=` (members, snapshots,
deliveries) or `?after=` (changes).
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import ApiError
from config.api_paging import HTTP_URL, int_param, keyset_page, next_url, page_size
from contacts.serializers import ApiErrorsOut
from segments_app import membership, webhooks
from segments_app.definition import DefinitionError
from segments_app.models import Segment, SegmentChange, SegmentSnapshot, WebhookDelivery, WebhookEndpoint

# --- output shapes (also the OpenAPI description) ---------------------------------------------------


class MemberOut(serializers.Serializer):
    external_id = serializers.CharField(source="contact.external_id")
    email = serializers.CharField(source="contact.email", allow_null=True)
    since = serializers.DateTimeField(help_text="When the contact entered the segment (this time).")


class SnapshotOut(serializers.ModelSerializer):
    class Meta:
        model = SegmentSnapshot
        fields = ["id", "computed_at", "trigger", "size", "entered", "exited", "duration_ms"]


class RefreshOut(serializers.ModelSerializer):
    class Meta:
        model = SegmentSnapshot
        fields = ["size", "entered", "exited", "computed_at", "duration_ms", "trigger", "id"]


class ChangeOut(serializers.Serializer):
    cursor = serializers.SerializerMethodField(help_text="The change's position in the feed; pass it as ?after=.")
    contact = serializers.CharField(
        source="contact_external_id",
        help_text="The contact's external_id (also for a contact erased since: it then leaves with an exit).",
    )
    change = serializers.ChoiceField(choices=SegmentChange.Kind.choices)
    at = serializers.DateTimeField()

    def get_cursor(self, obj: SegmentChange) -> str:
        return str(obj.pk)


class MembersPageOut(serializers.Serializer):
    results = MemberOut(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class SnapshotsPageOut(serializers.Serializer):
    results = SnapshotOut(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class ChangesPageOut(serializers.Serializer):
    results = ChangeOut(many=True)
    next = serializers.URLField(allow_null=True, help_text="The URL to poll next.")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as ?after= next time: the last change returned, or your `after` when none."
    )
    has_more = serializers.BooleanField(help_text="More changes are waiting right now (poll again at once).")


class WebhookEndpointOut(serializers.ModelSerializer):
    segments = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "segments", "active", "description", "created_at"]


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    class Meta(WebhookEndpointOut.Meta):
        fields = [*WebhookEndpointOut.Meta.fields, "secret"]


class WebhookEndpointIn(serializers.Serializer):
    url = serializers.URLField(max_length=2000, validators=[HTTP_URL], help_text="http(s) URL that receives the POSTs.")
    secret = serializers.CharField(
        max_length=200, min_length=16, required=False,
        help_text="Key of the HMAC-SHA256 signature; generated (and shown once) when omitted.",
    )
    segments = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=1000,
        help_text="Segment ids whose changes are sent; empty or omitted: every segment of the workspace.",
    )
    active = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookEndpointPatch(WebhookEndpointIn):
    url = serializers.URLField(max_length=2000, required=False, validators=[HTTP_URL])
    active = serializers.BooleanField(required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)


class WebhookDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "segment", "status", "first_change_id", "last_change_id", "change_count", "attempts",
            "response_code", "error", "created_at", "last_attempt_at", "delivered_at",
        ]


class DeliveriesPageOut(serializers.Serializer):
    results = WebhookDeliveryOut(many=True)
    next = serializers.URLField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


# --- parsing helpers --------------------------------------------------------------------------------


def _segment(request: Request, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise Http404
    return segment


SEGMENT_ID = OpenApiParameter("segment_id", int, OpenApiParameter.PATH, description="The segment's id.")
CURSOR = OpenApiParameter("cursor", str, description="`next_cursor` of the previous page; omit for the first page.")
PAGE_SIZE = OpenApiParameter("page_size", int, description="Rows per page, 1 to 1,000 (default 100).")
NOT_FOUND = OpenApiResponse(ApiErrorsOut, description="No such segment in this workspace.")


# --- segment membership -----------------------------------------------------------------------------


class SegmentMembersApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Stored members",
        description="The segment's members as of its last computation (see `computed_at` of the segment), in a "
        "stable order, cursor paginated.",
        parameters=[SEGMENT_ID, CURSOR, PAGE_SIZE],
        responses={200: MembersPageOut, 400: ApiErrorsOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        size = page_size(request)
        rows, more = keyset_page(
            membership.stored_members(segment=segment), key="contact_id", after=int_param(request, "cursor"),
            descending=False, size=size,
        )
        next_cursor = str(rows[-1].contact_id) if more else None
        return Response(
            {
                "results": MemberOut(rows, many=True).data,
                "next": next_url(request, "cursor", next_cursor),
                "next_cursor": next_cursor,
            }
        )


class SegmentSnapshotsApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Size history",
        description="One snapshot per recomputation, newest first: size, entered, exited, duration and trigger "
        "(`schedule`, `real_time`, `manual`, `definition_change`, `campaign`).",
        parameters=[SEGMENT_ID, CURSOR, PAGE_SIZE],
        responses={200: SnapshotsPageOut, 400: ApiErrorsOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        rows, more = keyset_page(
            SegmentSnapshot.objects.filter(segment=segment), key="pk", after=int_param(request, "cursor"),
            descending=True, size=page_size(request),
        )
        next_cursor = str(rows[-1].pk) if more else None
        return Response(
            {
                "results": SnapshotOut(rows, many=True).data,
                "next": next_url(request, "cursor", next_cursor),
                "next_cursor": next_cursor,
            }
        )


class SegmentChangesApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Change feed",
        description="Who entered and who left, in the order it happened. Poll with `?after=<next_cursor>` to keep "
        "your own list in sync: a change is never returned twice for increasing `after` and never skipped "
        "(a segment's changes are written under its lock, so they become visible in cursor order). "
        "Changes older than SEGMENT_CHANGE_RETENTION_DAYS are pruned.",
        parameters=[
            SEGMENT_ID,
            OpenApiParameter("after", str, description="Return changes after this cursor; omit for the oldest kept."),
            PAGE_SIZE,
        ],
        responses={200: ChangesPageOut, 400: ApiErrorsOut, 404: NOT_FOUND},
        examples=[
            OpenApiExample(
                "Two changes",
                value={
                    "results": [
                        {"cursor": "1041", "contact": "c-17", "change": "entered", "at": "2026-01-05T09:59:58Z"},
                        {"cursor": "1042", "contact": "c-3", "change": "exited", "at": "2026-01-05T09:59:58Z"},
                    ],
                    "next": "https://example.com/api/v1/segments/7/changes/?after=1042",
                    "next_cursor": "1042",
                    "has_more": False,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        after = int_param(request, "after")
        rows, more = keyset_page(
            membership.change_feed(segment=segment), key="pk", after=after, descending=False,
            size=page_size(request),
        )
        next_cursor = str(rows[-1].pk) if rows else (str(after) if after is not None else None)
        return Response(
            {
                "results": ChangeOut(rows, many=True).data,
                "next": next_url(request, "after", next_cursor),
                "next_cursor": next_cursor,
                "has_more": more,
            }
        )


class SegmentRefreshApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Recompute now",
        description="Recomputes the stored membership now (trigger `manual`) and answers the snapshot it made. "
        "A definition that no longer compiles (e.g. a referenced segment was deleted) answers 400 and is "
        "recorded on the segment (`status` failed, `last_error`).",
        parameters=[SEGMENT_ID],
        request=None,
        responses={200: RefreshOut, 400: ApiErrorsOut, 404: NOT_FOUND, 503: ApiErrorsOut},
    )
    def post(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        try:
            snapshot = membership.run_recompute(segment_id=segment.pk, trigger=membership.Trigger.MANUAL)
        except DefinitionError as exc:  # recorded on the segment by run_recompute
            raise ApiError(
                [{"path": _definition_path(e.get("path", "")), "message": e["message"]} for e in exc.errors]
            ) from exc
        except membership.RecomputeTimeout as exc:
            unavailable = status.HTTP_503_SERVICE_UNAVAILABLE
            raise ApiError([{"path": "", "message": str(exc)}], status_code=unavailable) from exc
        if snapshot is None:  # deleted meanwhile
            raise Http404
        return Response(RefreshOut(snapshot).data, status=status.HTTP_200_OK)


def _definition_path(path: str) -> str:
    return f"definition.{path}" if path else "definition"


# --- webhooks ---------------------------------------------------------------------------------------


def _workspace_segments(request: Request, ids: list[int] | None) -> list[Segment] | None:
    if ids is None:
        return None
    found = {s.pk: s for s in Segment.objects.filter(workspace=request.workspace, pk__in=ids)}
    errors = [
        {"path": f"segments[{index}]", "message": f"no segment {segment_id} in this workspace"}
        for index, segment_id in enumerate(ids)
        if segment_id not in found
    ]
    if errors:
        raise ApiError(errors)
    return [found[segment_id] for segment_id in dict.fromkeys(ids)]


def _endpoint(request: Request, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(workspace=request.workspace, pk=endpoint_id).first()
    if endpoint is None:
        raise Http404
    return endpoint


WEBHOOK_DESCRIPTION = (
    "Entries and exits of the chosen segments are POSTed to `url` in batches: `{\"delivery_id\", \"segment\": "
    "{\"id\", \"name\"}, \"sent_at\", \"changes\": [{\"cursor\", \"contact\", \"email\", \"change\", \"at\"}]}`. "
    "Headers: `X-Segments-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the secret>`, "
    "`X-Segments-Timestamp: <unix seconds>` (also `sent_at` in the signed body), `X-Segments-Delivery: <id>` "
    "(the same for a retried batch: deduplicate on it). Answer 2xx to confirm; anything else is retried with "
    "growing delays and nothing after it is sent until it is confirmed. Changes recorded after the endpoint "
    "was registered are sent."
)
ENDPOINT_ID = OpenApiParameter("endpoint_id", int, OpenApiParameter.PATH, description="The endpoint's id.")


class WebhookListApi(APIView):
    @extend_schema(
        tags=["webhooks"], summary="List webhook endpoints", description=WEBHOOK_DESCRIPTION,
        responses={200: WebhookEndpointOut(many=True)},
    )
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.filter(workspace=request.workspace).prefetch_related("segments")
        return Response({"results": WebhookEndpointOut(endpoints.order_by("pk"), many=True).data})

    @extend_schema(
        tags=["webhooks"], summary="Register a webhook endpoint", description=WEBHOOK_DESCRIPTION,
        request=WebhookEndpointIn, responses={201: WebhookEndpointCreatedOut, 400: ApiErrorsOut},
    )
    def post(self, request: Request) -> Response:
        data = _valid(WebhookEndpointIn, request.data)
        endpoint = webhooks.create_endpoint(
            workspace=request.workspace,
            url=data["url"],
            secret=data.get("secret", ""),
            segments=_workspace_segments(request, data.get("segments")) or [],
            active=data["active"],
            description=data["description"],
        )
        return Response(WebhookEndpointCreatedOut(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(
        tags=["webhooks"], summary="One webhook endpoint", parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointOut, 404: ApiErrorsOut},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(WebhookEndpointOut(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        tags=["webhooks"], summary="Change a webhook endpoint", parameters=[ENDPOINT_ID],
        description="Any of `url`, `secret`, `segments`, `active`, `description`.",
        request=WebhookEndpointPatch, responses={200: WebhookEndpointOut, 400: ApiErrorsOut, 404: ApiErrorsOut},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        data = _valid(WebhookEndpointPatch, request.data, partial=True)
        segments = _workspace_segments(request, data.pop("segments", None))
        endpoint = webhooks.update_endpoint(endpoint=endpoint, segments=segments, **data)
        return Response(WebhookEndpointOut(endpoint).data)

    @extend_schema(
        tags=["webhooks"], summary="Remove a webhook endpoint", parameters=[ENDPOINT_ID],
        responses={204: None, 404: ApiErrorsOut},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        _endpoint(request, endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesApi(APIView):
    @extend_schema(
        tags=["webhooks"], summary="Delivery log of an endpoint",
        description="Newest first: each batch with its change range, status, attempts, last response code and error.",
        parameters=[ENDPOINT_ID, CURSOR, PAGE_SIZE],
        responses={200: DeliveriesPageOut, 400: ApiErrorsOut, 404: ApiErrorsOut},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        rows, more = keyset_page(
            WebhookDelivery.objects.filter(endpoint=endpoint), key="pk", after=int_param(request, "cursor"),
            descending=True, size=page_size(request),
        )
        next_cursor = str(rows[-1].pk) if more else None
        return Response(
            {
                "results": WebhookDeliveryOut(rows, many=True).data,
                "next": next_url(request, "cursor", next_cursor),
                "next_cursor": next_cursor,
            }
        )


def _valid(serializer_class: type[serializers.Serializer], data: object, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise ApiError([{"path": "", "message": "expected a JSON object"}])
    unknown = sorted(set(data) - set(serializer_class().fields))
    if unknown:
        raise ApiError([{"path": key, "message": "unknown field"} for key in unknown])
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
