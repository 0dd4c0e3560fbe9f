"""OpenAI's error envelope, `{"error": {"message", "type", "param", "code"}}`, for every failure.

Routes raise `APIError`; the handlers installed by `install_handlers` turn it (and anything
unexpected) into the envelope with the right status. No traceback ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("mlxchat.server")

_TYPES = {
    401: "authentication_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


class APIError(Exception):
    """A failure to report to the client as OpenAI's error envelope.

    Args:
        status: The HTTP status code.
        message: One line saying what is wrong and how to fix it.
        param: The request field at fault, if any.
        code: A short machine-readable code (e.g. `context_length_exceeded`).
        headers: Extra response headers (e.g. `Retry-After`).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The error as OpenAI's JSON body."""
        kind = _TYPES.get(self.status, "invalid_request_error")
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        return JSONResponse(self.envelope(), status_code=self.status, headers=self.headers)


ANTHROPIC_PATH = "/v1/messages"
"""Where errors take Anthropic's envelope instead of OpenAI's."""

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def anthropic_envelope(error: APIError) -> dict[str, Any]:
    """The error as Anthropic's JSON body, `{"type": "error", "error": {"type", "message"}}`."""
    kind = _ANTHROPIC_TYPES.get(error.status, "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def _respond(request: Request, error: APIError) -> JSONResponse:
    if request.url.path.startswith(ANTHROPIC_PATH):
        body = anthropic_envelope(error)
        return JSONResponse(body, status_code=error.status, headers=error.headers)
    return error.response()


def internal_error() -> APIError:
    """What a client sees for a server bug (the details go to the server log only)."""
    return APIError(
        500, "internal server error; the server log has the details", code="internal_error"
    )


def install_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, answer with the envelope."""

    async def on_api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, APIError)
        return _respond(request, error)

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        message = str(error.detail) if error.detail else "request failed"
        code = "not_found" if error.status_code == 404 else None
        headers = dict(error.headers or {})  # e.g. a 405's Allow
        return _respond(request, APIError(error.status_code, message, code=code, headers=headers))

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("error while serving %s %s", request.method, request.url.path)
        return _respond(request, internal_error())

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
