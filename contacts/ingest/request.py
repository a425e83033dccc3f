"""Whole-request checks of an ingest body: JSON that parses safely, an object with exactly the one list.

A problem here refuses the whole request (400, or 413 for a body over the limit) before anything is written.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from config.api_errors import ApiError
from contacts.ingest.common import max_records

GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def decode_body(raw: bytes, content_encoding: str) -> bytes:
    """Undo `Content-Encoding: gzip` (RudderStack, Segment's libraries), refusing anything over the size limit."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in GZIP_ENCODINGS and encoding != "deflate":
        raise ApiError([{"path": "", "message": f"unsupported Content-Encoding {content_encoding!r}"}], 415)
    limit = settings.API_MAX_BODY_BYTES
    # wbits 16+: gzip framing; negative: raw deflate is not what HTTP's "deflate" means (that is zlib framing).
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding in GZIP_ENCODINGS else zlib.MAX_WBITS)
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ParseError(f"body is not valid {encoding} data") from exc
    if len(body) > limit:
        raise ApiError([{"path": "", "message": f"decompressed body is over the limit of {limit} bytes"}], 413)
    if not decompressor.eof:
        raise ParseError(f"body is truncated {encoding} data")
    return body


def loads(raw: bytes) -> Any:
    """json.loads that answers 400 for anything it cannot read, including absurd nesting (RecursionError)."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"malformed JSON: {exc}") from exc


class IngestJSONParser(parsers.JSONParser):
    """JSON bodies, optionally gzip-compressed; malformed input is always a 400, never a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        request = (parser_context or {}).get("request")
        content_encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        raw = stream.read() if stream is not None else b""
        return loads(decode_body(raw, content_encoding))


class AnyTypeJSONParser(IngestJSONParser):
    """For the Segment API: some senders label JSON as text/plain or leave the type out."""

    media_type = "*/*"


def parse_bulk_body(data: Any, *, key: str) -> list:
    """The records of a bulk body `{"<key>": [...]}`; raises ApiError (400) for a whole-request problem.

    >>> parse_bulk_body({"events": [{"contact": "u1", "type": "app_open", "occurred_at": "2024-05-01"}]}, key="events")
    [{'contact': 'u1', 'type': 'app_open', 'occurred_at': '2024-05-01'}]
    """
    if not isinstance(data, dict):
        raise ApiError([{"path": "", "message": f'the body must be a JSON object like {{"{key}": [...]}}'}])
    errors = [{"path": str(name), "message": "unknown field"} for name in data if name != key]
    if key not in data:
        errors.append({"path": key, "message": "this field is required"})
    elif not isinstance(data[key], list):
        errors.append({"path": key, "message": "must be a list"})
    elif len(data[key]) > max_records():
        errors.append({"path": key, "message": f"at most {max_records()} records per call (got {len(data[key])})"})
    if errors:
        raise ApiError(errors)
    return data[key]
