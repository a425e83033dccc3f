"""REST API of contacts and ingest: thin views, parse -> one service or selector -> respond."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.filters import ContactFilter
from contacts.ingest import IngestResult, ingest_contacts, ingest_events, ingest_orders, ingest_products
from contacts.ingest.request import IngestJSONParser, parse_bulk_body
from contacts.models import Contact
from contacts.selectors import contact_detail, contact_list
from contacts.serializers import (
    ApiErrorsOut,
    BulkContactsIn,
    BulkEventsIn,
    BulkOrdersIn,
    BulkProductsIn,
    ContactDetailOut,
    ContactOut,
    IngestResultOut,
)
from contacts.services import erase_contact


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the project's API key auth in the schema (Bearer, or HTTP Basic user for Segment senders)."""

    target_class = "contacts.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201 - drf-spectacular's signature
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`; the Segment API also takes the key as HTTP Basic user.",
        }


BULK_DESCRIPTION = (
    "At most 1,000 records. Idempotent: sending the same records again changes nothing and duplicates nothing. "
    "Each record is validated on its own: the good records are stored (in one transaction) and each bad one is "
    "reported with its index and the path of the bad value. The answer is 200 when at least one record was "
    "stored (or the list was empty), and 400 with the same shape when every record was refused. "
    "A whole-request problem (malformed JSON, a body that is not an object, a missing or unknown top-level key, "
    'more than 1,000 records) is a 400 with `{"errors": [...]}` and stores nothing; a body over the size limit '
    "is a 413. `Content-Encoding: gzip` is accepted."
)


def _bulk_responses() -> dict:
    return {
        200: IngestResultOut,
        400: OpenApiResponse(
            IngestResultOut, description='Every record refused, or `{"errors": [...]}` for a whole-request problem.'
        ),
        413: OpenApiResponse(ApiErrorsOut, description="Body over the size limit."),
    }


class BulkIngestApi(APIView):
    """POST {"<key>": [record, ...]}: one ingest service over the records."""

    parser_classes = [IngestJSONParser]
    key: str = ""
    service: Callable[..., IngestResult]

    def post(self, request: Request) -> Response:
        records = parse_bulk_body(request.data, key=self.key)
        result = type(self).service(workspace=request.workspace, records=records)
        refused_all = result.errors and not result.stored
        return Response(result.as_response(), status=status.HTTP_400_BAD_REQUEST if refused_all else status.HTTP_200_OK)


@extend_schema(
    tags=["ingest"],
    summary="Upsert contacts by external_id",
    description=BULK_DESCRIPTION
    + " Only the fields a record names change. `tags` replace the contact's tags; `attributes` are merged "
    "(a null value removes the key). Empty strings are stored as missing values.",
    request=BulkContactsIn,
    responses=_bulk_responses(),
    examples=[
        OpenApiExample(
            "Two contacts",
            request_only=True,
            value={
                "contacts": [
                    {"external_id": "u1", "email": "ann@example.com", "country": "PL", "tags": ["vip"]},
                    {"external_id": "u2", "attributes": {"plan": "pro", "old_key": None}},
                ]
            },
        )
    ],
)
class ContactBulkApi(BulkIngestApi):
    key = "contacts"
    service = staticmethod(ingest_contacts)


@extend_schema(
    tags=["ingest"],
    summary="Upsert products by sku",
    description=BULK_DESCRIPTION + " Only the fields a record names change.",
    request=BulkProductsIn,
    responses=_bulk_responses(),
)
class ProductBulkApi(BulkIngestApi):
    key = "products"
    service = staticmethod(ingest_products)


@extend_schema(
    tags=["ingest"],
    summary="Upsert orders by external_id",
    description=BULK_DESCRIPTION
    + " An order record replaces the stored order, items included. Unknown contacts and SKUs are created bare. "
    "`total` defaults to the sum of quantity * unit_price, `currency` to the workspace's.",
    request=BulkOrdersIn,
    responses=_bulk_responses(),
)
class OrderBulkApi(BulkIngestApi):
    key = "orders"
    service = staticmethod(ingest_orders)


@extend_schema(
    tags=["ingest"],
    summary="Store events",
    description=BULK_DESCRIPTION
    + " The contact must exist (an unknown one is an error of that record). With `event_id`, a repeat is stored "
    "once and counted as updated.",
    request=BulkEventsIn,
    responses=_bulk_responses(),
)
class EventBulkApi(BulkIngestApi):
    key = "events"
    service = staticmethod(ingest_events)


class ContactCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or int(raw) < 1:
            raise ValidationError({"page_size": [f"must be a whole number from 1 to {self.max_page_size}"]})
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request: Request):  # noqa: ANN201 - DRF's Cursor namedtuple
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({"cursor": ["invalid cursor"]}) from exc


@extend_schema(
    tags=["contacts"],
    summary="List contacts",
    description="Cursor paginated in id order (`?cursor=` from `next`, `?page_size=` up to 1,000). "
    "A bad filter value is a 400 naming the parameter.",
    responses={200: ContactOut(many=True), 400: ApiErrorsOut},
)
class ContactListApi(generics.ListAPIView):
    serializer_class = ContactOut
    filterset_class = ContactFilter
    pagination_class = ContactCursorPagination

    def get_queryset(self):  # noqa: ANN201
        if getattr(self, "swagger_fake_view", False):  # schema generation has no workspace
            return Contact.objects.none()
        return contact_list(workspace=self.request.workspace)


EXTERNAL_ID = OpenApiParameter("external_id", str, OpenApiParameter.PATH, description="The contact's external_id.")


class ContactDetailApi(APIView):
    @extend_schema(
        tags=["contacts"],
        summary="One contact",
        description="All contact fields, tags and attributes; every computed figure at the top level and again "
        "under `computed`; and the segments the contact is in now (stored membership).",
        parameters=[EXTERNAL_ID],
        responses={200: ContactDetailOut, 404: ApiErrorsOut},
    )
    def get(self, request: Request, external_id: str) -> Response:
        contact = contact_detail(workspace=request.workspace, external_id=external_id)
        if contact is None:
            raise Http404
        return Response(ContactDetailOut(contact).data)

    @extend_schema(
        tags=["contacts"],
        summary="Erase a contact",
        description="The right to be forgotten: deletes the contact with its orders and items, events, tags, "
        "computed figures, segment memberships and change-log rows.",
        parameters=[EXTERNAL_ID],
        responses={204: None, 404: ApiErrorsOut},
    )
    def delete(self, request: Request, external_id: str) -> Response:
        if not erase_contact(workspace=request.workspace, external_id=external_id):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)
