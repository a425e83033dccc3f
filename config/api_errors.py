"""One error shape for the whole API: {"errors": [{"path": ..., "message": ...}]}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into located errors.

    >>> flatten_errors({"contacts": {0: {"email": ["Enter a valid email."]}}})
    [{'path': 'contacts[0].email', 'message': 'Enter a valid email.'}]
    """
    if isinstance(detail, dict):
        errors: list[dict[str, str]] = []
        for key, value in detail.items():
            if key == "non_field_errors":
                child = path
            elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            errors.extend(flatten_errors(value, child))
        return errors
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"path": path, "message": str(item)} for item in detail]
        errors = []
        for index, item in enumerate(detail):
            if item:
                errors.extend(flatten_errors(item, f"{path}[{index}]"))
        return errors
    return [{"path": path, "message": str(detail)}]


class ApiError(exceptions.APIException):
    """Raise with a list of located errors and a status code."""

    def __init__(self, errors: list[dict[str, str]], status_code: int = status.HTTP_400_BAD_REQUEST) -> None:
        super().__init__(detail="error")
        self.errors = errors
        self.status_code = status_code


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response({"errors": [{"path": "", "message": "request body too large"}]}, status=413)
    if isinstance(exc, ApiError):
        return Response({"errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        # Bad input like any other: the contract's 400, saying what to send.
        request = context.get("request")
        sent = getattr(request, "content_type", "") or "no Content-Type"
        message = f"send JSON with Content-Type: application/json (got {sent})"
        return Response({"errors": [{"path": "", "message": message}]}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
    elif response.status_code == 404:
        request = context.get("request")
        where = request.path if request is not None else "it"
        response.data = {"errors": [{"path": "", "message": f"not found: {where} names nothing in this workspace"}]}
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {"errors": [{"path": "", "message": str(detail)}]}
    return response
