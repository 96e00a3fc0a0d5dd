"""What every answer and every request body goes through: a body size limit (413, counted as
the body arrives, so a missing or false Content-Length does not get past it) and security
headers on every answer."""

from collections.abc import Callable
from typing import Any

from shared.problems import Problem

# Swagger UI loads its scripts and styles from a CDN; everything else is JSON, CSV, Markdown or
# the evaluation form's HTML with inline styles
_API_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
                "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
                "https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'")
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
            (b"strict-transport-security", b"max-age=31536000")]


def too_large(limit: int) -> Problem:
    return Problem(413, "body-too-large", "Request body too large", f"send at most {limit} bytes")


class Hardening:
    """ASGI middleware: refuses bodies over `max_body_bytes`, adds the security headers."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body_bytes:
            receive = _refusing(too_large(self.max_body_bytes))
        else:
            receive = _counting(receive, self.max_body_bytes)
        docs = scope["path"] in ("/docs", "/redoc")
        policy = (b"content-security-policy", (_DOCS_POLICY if docs else _API_POLICY).encode())

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS, policy]
            await send(message)

        await self.app(scope, receive, with_headers)


def _refusing(problem: Problem) -> Callable:
    async def receive() -> dict:
        raise problem  # the app's problem handler answers it

    return receive


def _counting(receive: Callable, limit: int) -> Callable:
    received = 0

    async def counted() -> dict:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large(limit)
        return message

    return counted
