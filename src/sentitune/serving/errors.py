"""One error model for every failure: ``{"error": {"code", "type", "message", "request_id"}}``.

400 bad input, 401 key, 413 body size, 429 rate, 503 not ready or overloaded, 500 bug; tracebacks
go to the server log only.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sentitune.serving.schemas import INPUT_TAGS, ErrorResponse

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 429, 500, 503)
}
HTTP_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


def new_request_id() -> str:
    # 32 hex digits, as uuid4().hex gave, at a quarter of its cost (it ran once per request)
    return secrets.token_hex(16)


def request_id(request: Request) -> str:
    """The request's id: the client's X-Request-ID (cut to 64 characters) or a new one."""
    rid = getattr(request.state, "request_id", None) or request.headers.get("x-request-id", "")[:64] or new_request_id()
    request.state.request_id = rid
    return rid


def error_body(request_id: str, status: int, kind: str, message: str) -> dict:
    return {"error": {"code": status, "type": kind, "message": message, "request_id": request_id}}


def error_response(request_id: str, status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    body = error_body(request_id, status, kind, message)
    return JSONResponse(body, status_code=status, headers={**(headers or {}), "X-Request-ID": request_id})


def overloaded_answer(rid: str, message: str, close: bool = False,
                      retry_after: str = "1") -> tuple[list[tuple[bytes, bytes]], bytes]:
    """ASGI headers and body of a 503 sent below the app (no Response object: this is the cheap path)."""
    body = json.dumps(error_body(rid, 503, "overloaded", message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
               (b"retry-after", retry_after.encode()), (b"x-request-id", rid.encode("latin-1"))]
    return headers + ([(b"connection", b"close")] if close else []), body


def too_large_message(max_bytes: int) -> str:
    return f"request body is over the limit of {max_bytes} bytes"


def validation_message(err: dict) -> str:
    """One line for pydantic's first error; the limits the schema declares read as the server's own."""
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body" and p not in INPUT_TAGS) or "body"
    kind, ctx, value = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    if kind == "string_unicode":  # a lone surrogate from a JSON "\ud800" escape
        return f"{where} is not valid UTF-8 (a lone surrogate)"
    if kind == "string_too_short":
        return f"{where} is empty"
    if kind == "string_too_long" and isinstance(value, str):
        return f"{where} has {len(value)} characters; the limit is {ctx.get('max_length')}"
    if kind == "too_short" and isinstance(value, list) and not value:
        return f"{where} is empty"
    if kind == "too_long" and "list[list[str]]" in err.get("loc", ()) and len(value or ()) == 2:
        return f"{where} is a text pair; sentiment classifies single texts, send [text]"
    if kind == "too_long" and isinstance(value, list):
        return f"{where} has {len(value)} items; the limit is {ctx.get('max_length')}"
    return f"{where}: {err.get('msg', 'invalid')}"


async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request_id(request), exc.status, exc.kind, exc.message, exc.headers)


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(request_id(request), 400, "invalid_input", validation_message(exc.errors()[0]))


def allowed_methods(request: Request, allow: str) -> str:
    """``allow`` plus every method the API documents at this path: Starlette's 405 names only the
    first matching route's methods, wrong where two routes share a path (GET / and POST /)."""
    methods = {m.strip() for m in allow.split(",") if m.strip()}
    methods |= {m.upper() for m in request.app.openapi().get("paths", {}).get(request.url.path, {})}
    return ", ".join(sorted(methods))


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = HTTP_KINDS.get(exc.status_code, "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request, headers.get("Allow", ""))
    return error_response(request_id(request), exc.status_code, kind, str(exc.detail), headers)


def internal_error(request: Request) -> JSONResponse:
    """A bug: the traceback is logged by the caller; the client gets a request id to quote."""
    return error_response(
        request_id(request), 500, "internal_error", "internal server error; quote the request id when reporting it"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
