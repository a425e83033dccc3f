"""The Segment HTTP tracking API (`/v1/batch`, `/v1/identify`, `/v1/track`, ...), so Segment's and
RudderStack's own libraries can send data unchanged. How messages map to our data: contacts.segment_tracking.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import ApiError
from contacts.auth import ApiKeyAuthentication, ApiKeyPrincipal, find_active_key
from contacts.ingest.common import max_records
from contacts.ingest.request import AnyTypeJSONParser
from contacts.ingest.segment import SegmentResult, ingest_segment_messages
from contacts.models import ApiKey
from contacts.segment_tracking import __doc__ as MAPPING_DOC  # noqa: N812
from contacts.serializers import ApiErrorsOut, SegmentBatchIn, SegmentMessageIn, SegmentSuccessOut


class WriteKeyInBodyAuthentication(authentication.BaseAuthentication):
    """Segment libraries may send the write key as `writeKey` in the body instead of HTTP Basic."""

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        data = request.data
        raw_key = data.get("writeKey") if isinstance(data, dict) else None
        if not raw_key or not isinstance(raw_key, str):
            return None
        api_key = find_active_key(raw_key)
        if api_key is None:
            raise AuthenticationFailed("invalid or revoked write key")
        request.workspace = api_key.workspace
        return ApiKeyPrincipal(api_key), api_key


class WriteKeyInBodyScheme(OpenApiAuthenticationExtension):
    target_class = "contacts.segment_api.WriteKeyInBodyAuthentication"
    name = "segmentWriteKey"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201 - drf-spectacular's signature
        return {"type": "http", "scheme": "basic", "description": "The API key as user name, empty password."}


def segment_answer(result: SegmentResult) -> Response:
    """Like Segment: {"success": true}. Refused messages are listed; a call whose every message was refused is a 400."""
    if result.errors and not result.stored:
        return Response({"errors": result.errors}, status=status.HTTP_400_BAD_REQUEST)
    body: dict[str, Any] = {"success": True}
    if result.errors:
        body["errors"] = result.errors
    return Response(body)


def _body_object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise ApiError([{"path": "", "message": "the body must be a JSON object"}])
    return data


def _context(body: dict) -> dict | None:
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise ApiError([{"path": "context", "message": "must be an object"}])
    return context


RESPONSES = {
    200: SegmentSuccessOut,
    400: OpenApiResponse(ApiErrorsOut, description="Malformed body, or every message refused (nothing stored)."),
    401: ApiErrorsOut,
    413: OpenApiResponse(ApiErrorsOut, description="Body (after gzip decompression) over the size limit."),
}


class SegmentApiView(APIView):
    authentication_classes = [ApiKeyAuthentication, WriteKeyInBodyAuthentication]
    parser_classes = [AnyTypeJSONParser]


@extend_schema(
    tags=["segment"],
    summary="Segment batch",
    description="Messages of any type in one call (what Segment's libraries send). Auth: HTTP Basic with the API "
    "key as user name, or `writeKey` in the body; `Content-Encoding: gzip` accepted.\n\n" + (MAPPING_DOC or ""),
    request=SegmentBatchIn,
    responses=RESPONSES,
)
class SegmentBatchApi(SegmentApiView):
    def post(self, request: Request) -> Response:
        body = _body_object(request.data)
        messages = body.get("batch")
        if not isinstance(messages, list):
            message = "this field is required" if messages is None else "must be a list"
            raise ApiError([{"path": "batch", "message": message}])
        if len(messages) > max_records():
            raise ApiError([{"path": "batch", "message": f"at most {max_records()} messages per call"}])
        result = ingest_segment_messages(
            workspace=request.workspace, messages=messages, root="batch", batch_context=_context(body)
        )
        return segment_answer(result)


class SegmentMessageApi(SegmentApiView):
    """One message; its type is the last part of the path."""

    message_type = ""

    def post(self, request: Request) -> Response:
        body = _body_object(request.data)
        result = ingest_segment_messages(
            workspace=request.workspace, messages=[body], root="", forced_type=self.message_type
        )
        return segment_answer(result)


def _single(message_type: str, what_it_does: str) -> type[SegmentMessageApi]:
    view = extend_schema(
        tags=["segment"],
        summary=f"Segment {message_type}",
        description=f"{what_it_does} Auth: HTTP Basic with the API key as user name, or `writeKey` in the body.",
        request=SegmentMessageIn,
        responses=RESPONSES,
    )(type(f"Segment{message_type.title()}Api", (SegmentMessageApi,), {"message_type": message_type}))
    return view


SegmentIdentifyApi = _single(
    "identify", "Upserts the contact `userId` (its external_id); traits fill contact fields and custom attributes."
)
SegmentTrackApi = _single(
    "track",
    "Stores an event (spec events map to the project's types, e.g. `Product Added` -> `cart_add`); "
    "`Order Completed` stores an order with its items. `messageId` makes a repeat a no-op.",
)
SegmentPageApi = _single("page", "Stores a `page_view` event.")
SegmentScreenApi = _single("screen", "Stores a `page_view` event (an app screen is the app's page).")
SegmentAliasApi = _single("alias", "Acknowledged, not stored: there is no identity merge.")
SegmentGroupApi = _single("group", "Acknowledged, not stored: there is no account model.")
