"""REST API of segments: CRUD, preview, explain, the field catalog, the templates library, the JSON Schema.

Thin views: parse the request, call one service or selector, render. Another workspace's segment
answers 404. Bodies are JSON objects whose unknown keys are errors (never ignored). Errors inside a
definition are located from the definition's own root, as in the definition contract
(`{"errors": [{"path": "conditions[1].value", ...}]}`), errors of the other fields by their name
(`name`, `refresh_minutes`), a missing or non-object definition as `definition`.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import ApiError
from config.api_paging import int_param, keyset_page, next_url, page_size
from contacts.models import Contact
from contacts.serializers import ApiErrorsOut

from . import selectors, services, templates_library
from .definition import DefinitionError
from .explain import explain_contact
from .guards import PreviewTimeout
from .membership import workspace_catalog
from .models import Segment
from .schema import definition_json_schema
from .serializers import (
    SegmentExplainOut,
    SegmentFieldCatalogOut,
    SegmentIn,
    SegmentInUseOut,
    SegmentOut,
    SegmentPatchIn,
    SegmentPreviewContactOut,
    SegmentPreviewIn,
    SegmentPreviewOut,
    SegmentsPageOut,
    SegmentTemplateOut,
)

SEGMENT_FIELDS = ("name", "description", "definition", "refresh_minutes")

ERRORS_DOC = (
    'Every problem is reported at once: `{"errors": [{"path", "message"}]}`. Errors inside the definition '
    "are located from the definition's root as in the definition format (`conditions[1].value`); other "
    "fields by name (`name`, `refresh_minutes`); unknown keys are errors. Nothing is saved when any error "
    "is found."
)
BAD_REQUEST = OpenApiResponse(ApiErrorsOut, description=ERRORS_DOC)
NOT_FOUND = OpenApiResponse(ApiErrorsOut, description="No such segment in this workspace.")
SEGMENT_ID = OpenApiParameter("segment_id", int, OpenApiParameter.PATH, description="The segment's id.")
UP_SELL = {
    "match": "all",
    "conditions": [
        {
            "type": "orders",
            "filters": [{"field": "product.producer", "op": "eq", "value": "Acme"}],
            "window": {"last": 6, "unit": "months"},
            "measure": "sum",
            "op": "gt",
            "value": 300,
        }
    ],
}


# --- helpers --------------------------------------------------------------------------------------------


def _body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of the request; unknown keys are errors."""
    data = request.data
    if not isinstance(data, dict):
        raise ApiError([{"path": "", "message": "expected a JSON object"}])
    unknown = [key for key in data if key not in allowed]
    if unknown:
        expected = ", ".join(allowed)
        raise ApiError([{"path": str(key), "message": f"unknown field; expected {expected}"} for key in unknown])
    return data


def _api_errors(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Service errors (paths from the request root) as the API shows them: definition errors from its root."""
    shown = []
    for error in errors:
        path = error["path"]
        if path.startswith("definition."):
            path = path.removeprefix("definition.")
        shown.append({"path": path, "message": error["message"]})
    return shown


def _segment(request: Request, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise Http404
    return segment


def _segment_json(request: Request, segments: list[Segment]) -> list[dict]:
    summaries = selectors.segment_summaries(workspace=request.workspace, segments=segments)
    return SegmentOut(segments, many=True, context={"summaries": summaries}).data


def _in_use_response(exc: services.SegmentInUse) -> Response:
    used_by = {"segments": [], "campaigns": [], **exc.used_by}
    return Response(
        {"errors": [{"path": "", "message": str(exc)}], "used_by": used_by}, status=status.HTTP_409_CONFLICT
    )


# --- segments ---------------------------------------------------------------------------------------------


class SegmentListApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="List segments",
        operation_id="segments_list",
        description="The workspace's segments in id order, cursor paginated (`?cursor=<next_cursor>`, "
        "`?page_size=` up to 1,000; default 100).",
        parameters=[
            OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
            OpenApiParameter("page_size", int, description="Segments per page, 1 to 1,000 (default 100)."),
        ],
        responses={200: SegmentsPageOut, 400: ApiErrorsOut},
    )
    def get(self, request: Request) -> Response:
        rows, more = keyset_page(
            selectors.workspace_segments(workspace=request.workspace), key="pk",
            after=int_param(request, "cursor"), descending=False, size=page_size(request),
        )  # fmt: skip
        next_cursor = str(rows[-1].pk) if more else None
        return Response(
            {
                "results": _segment_json(request, rows),
                "next": next_url(request, "cursor", next_cursor),
                "next_cursor": next_cursor,
            }
        )

    @extend_schema(
        tags=["segments"],
        summary="Create a segment",
        operation_id="segments_create",
        description="Validates the definition (" + ERRORS_DOC + ") and schedules the first computation of "
        "the stored membership (`status` new, then fresh). Names may repeat; `id` tells segments apart.",
        request=SegmentIn,
        responses={201: SegmentOut, 400: BAD_REQUEST},
        examples=[
            OpenApiExample(
                "Up-selling",
                value={"name": "Acme fans", "description": "", "definition": UP_SELL, "refresh_minutes": 60},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = _body(request, SEGMENT_FIELDS)
        try:
            segment = services.create_segment(
                workspace=request.workspace,
                name=data.get("name"),
                description=data.get("description", ""),
                definition=data.get("definition"),
                refresh_minutes=data.get("refresh_minutes", services.REFRESH_MINUTES_DEFAULT),
            )
        except services.SegmentInvalid as exc:
            raise ApiError(_api_errors(exc.errors)) from exc
        return Response(_segment_json(request, [segment])[0], status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="One segment",
        operation_id="segments_retrieve",
        parameters=[SEGMENT_ID],
        responses={200: SegmentOut, 404: NOT_FOUND},
    )
    def get(self, request: Request, segment_id: int) -> Response:
        return Response(_segment_json(request, [_segment(request, segment_id)])[0])

    @extend_schema(
        tags=["segments"],
        summary="Change a segment",
        operation_id="segments_partial_update",
        description="Any of `name`, `description`, `definition`, `refresh_minutes`, checked exactly as on create. "
        "A changed definition schedules a recompute (trigger `definition_change`). " + ERRORS_DOC,
        parameters=[SEGMENT_ID],
        request=SegmentPatchIn,
        responses={200: SegmentOut, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    def patch(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        data = _body(request, SEGMENT_FIELDS)
        try:
            segment = services.update_segment(segment=segment, **data)
        except services.SegmentInvalid as exc:
            raise ApiError(_api_errors(exc.errors)) from exc
        return Response(_segment_json(request, [segment])[0])

    @extend_schema(
        tags=["segments"],
        summary="Delete a segment",
        operation_id="segments_destroy",
        description="Deletes the segment with its stored membership and history. Refused with 409 while other "
        "segments refer to it or campaigns target or exclude it; the answer lists them under `used_by`.",
        parameters=[SEGMENT_ID],
        responses={
            204: None,
            404: NOT_FOUND,
            409: OpenApiResponse(SegmentInUseOut, description="The segment is in use."),
        },
        examples=[
            OpenApiExample(
                "In use",
                value={
                    "errors": [{"path": "", "message": "segment 'VIP' is used by 1 segment, 2 campaigns; ..."}],
                    "used_by": {
                        "segments": [{"id": 12, "name": "VIP in Poland"}],
                        "campaigns": [{"id": 3, "name": "Spring"}],
                    },
                },
                response_only=True,
                status_codes=["409"],
            )
        ],
    )
    def delete(self, request: Request, segment_id: int) -> Response:
        segment = _segment(request, segment_id)
        try:
            services.delete_segment(segment=segment)
        except services.SegmentInUse as exc:
            return _in_use_response(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentPreviewApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Preview a definition",
        operation_id="segments_preview",
        description="Evaluates the definition now and saves nothing: how many contacts match, up to 10 of them "
        "and the definition in plain English. Runs under a statement timeout (SEGMENT_PREVIEW_TIMEOUT_MS, "
        "default 10 s); a definition that takes longer answers 400 asking to narrow it. " + ERRORS_DOC,
        request=SegmentPreviewIn,
        responses={200: SegmentPreviewOut, 400: BAD_REQUEST},
        examples=[OpenApiExample("Up-selling", value={"definition": UP_SELL}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = _body(request, ("definition", "segment_id"))
        segment_id = data.get("segment_id")
        if segment_id is not None and (not isinstance(segment_id, int) or isinstance(segment_id, bool)):
            raise ApiError([{"path": "segment_id", "message": "segment_id must be the id of a segment"}])
        try:
            result = services.preview_segment(
                workspace=request.workspace, definition=data.get("definition"), segment_id=segment_id
            )
        except services.SegmentInvalid as exc:
            raise ApiError(_api_errors(exc.errors)) from exc
        except PreviewTimeout as exc:
            raise ApiError([{"path": "definition", "message": str(exc)}]) from exc
        return Response(
            {
                "count": result.count,
                "sample": SegmentPreviewContactOut(result.sample, many=True).data,
                "summary": result.summary,
            }
        )


class SegmentExplainApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Explain membership for one contact",
        operation_id="segments_explain",
        description="Condition by condition, in the definition's order: whether it holds for the contact now, "
        "the value it looked at (`observed`) and a sentence such as "
        '"spent 412.50 EUR on Acme products in the last 6 months > 300: yes". Groups carry their own '
        "`holds`; `member` is the whole definition evaluated now (what a recompute would decide), which "
        "may differ from the stored membership until the next recompute. Unknown contact: 404.",
        parameters=[
            SEGMENT_ID,
            OpenApiParameter("external_id", str, OpenApiParameter.PATH, description="The contact's external_id."),
        ],
        responses={200: SegmentExplainOut, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    def get(self, request: Request, segment_id: int, external_id: str) -> Response:
        segment = _segment(request, segment_id)
        contact = Contact.objects.filter(workspace=request.workspace, external_id=external_id).first()
        if contact is None:
            raise Http404
        try:
            explanation = explain_contact(workspace=request.workspace, segment=segment, contact=contact)
        except DefinitionError as exc:
            raise ApiError(exc.errors) from exc
        return Response(explanation)


class SegmentTemplatesApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Templates library",
        operation_id="segments_templates",
        description="Ready-made definitions to start a segment from, grouped by `category`. Definitions that "
        "depend on a shop's data use placeholders from the demo data (producer Acme, SKU-1 to SKU-3, category "
        "Accessories), as their descriptions say.",
        responses={200: SegmentTemplateOut(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(templates_library.templates())


class SegmentFieldsApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="Field catalog",
        operation_id="segments_fields",
        description="Every field a definition can test in this workspace (contact details, computed figures, "
        "custom attributes with their inferred or declared types), the filters of orders and event "
        "conditions, the event types and the other condition types, each with its operators, choices and "
        "value widget.",
        responses={200: SegmentFieldCatalogOut},
    )
    def get(self, request: Request) -> Response:
        return Response(workspace_catalog(request.workspace).as_json())


class SegmentDefinitionSchemaApi(APIView):
    @extend_schema(
        tags=["segments"],
        summary="JSON Schema of a definition",
        operation_id="segments_definition_schema",
        description="A standalone JSON Schema (draft 2020-12) of the definition format for this workspace: its "
        "custom attributes and event types included. The OpenAPI component `SegmentDefinition` is the same "
        "schema for any workspace.",
        responses={200: OpenApiResponse(description="A JSON Schema document.")},
    )
    def get(self, request: Request) -> Response:
        return Response(definition_json_schema(workspace_catalog(request.workspace)))
