"""Keyset (cursor) pagination shared by the API's list endpoints: `?cursor=` / `?page_size=` and next links."""

from __future__ import annotations

from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.utils.http import urlencode
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

HTTP_URL = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")


def page_size(request: Request) -> int:
    """`?page_size=`: a whole number from 1; larger than 1,000 is served as 1,000."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationError({"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
    return min(int(raw), MAX_PAGE_SIZE)


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: [f"invalid {name}: use the next_cursor of a previous answer"]})
    return int(raw)


def next_url(request: Request, name: str, value: str | None) -> str | None:
    if value is None:
        return None
    params = request.query_params.copy()
    params[name] = value
    return request.build_absolute_uri(request.path) + "?" + urlencode(sorted(params.items()))


def keyset_page(queryset: QuerySet, *, key: str, after: int | None, descending: bool, size: int) -> tuple[list, bool]:
    """Rows after the cursor in key order, and whether more follow."""
    if after is not None:
        queryset = queryset.filter(**{f"{key}__{'lt' if descending else 'gt'}": after})
    rows = list(queryset.order_by(f"-{key}" if descending else key)[: size + 1])
    return rows[:size], len(rows) > size
