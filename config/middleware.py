"""API middleware: 413 before reading a body larger than the API allows; forgiving, JSON-only API paths."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.API_MAX_BODY_BYTES
        if length > limit:
            return JsonResponse(
                {"errors": [{"path": "", "message": f"request body is {length} bytes; the limit is {limit} bytes"}]},
                status=413,
            )
        return self.get_response(request)


API_PREFIX = "/api/"


class ApiPathMiddleware:
    """API paths for machines: the trailing slash is optional, and an unknown path is a JSON 404.

    The contract spells every API path with a trailing slash. Django's APPEND_SLASH would answer a
    POST to `/api/v1/contacts/bulk` with a 500 in DEBUG (it cannot redirect a body) and a 301 otherwise
    (which clients replay as a GET); here the request is served as if the slash were there. A path that
    names nothing (e.g. `/api/v1/segments/abc/`) answers the API's error shape, not an HTML page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        slashed = request.path_info + "/"
        if not request.path_info.endswith("/") and not _resolves(request.path_info) and _resolves(slashed):
            request.path_info = slashed
            request.path += "/"
        response = self.get_response(request)
        if response.status_code == 404 and not response.get("Content-Type", "").startswith("application/json"):
            return JsonResponse(
                {"errors": [{"path": "", "message": f"no such API path: {request.path}"}]}, status=404
            )
        return response


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
