"""What every answer and every request body goes through: a body size limit (413, counted as
the body arrives, so a missing or false Content-Length does not get past it), a time limit
(503), security headers on every answer, and a nesting limit for JSON bodies, checked before
they are parsed."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from shared.problems import FieldError, Problem, problem_response

MAX_JSON_DEPTH = 32  # an event nests 2 levels, a batch 3
_STRUCTURE = bytes.maketrans(b"{}", b"[]")  # braces count as brackets
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')

# Swagger UI and ReDoc load their scripts, styles and icon from this service (shared.app), start
# with an inline script, and ReDoc searches in a worker it makes from a blob; its Redocly logo
# (from cdn.redoc.ly) is refused. Everything else is JSON, CSV, Markdown or the evaluation
# form's HTML with inline styles.
_API_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'")
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


class TimeLimit:
    """ASGI middleware: a request whose answer has not begun `seconds` after it came is answered
    503 then. Its handler runs on to its end, its answer dropped: one in a worker thread (a
    plain `def`) cannot be stopped, and one on the event loop may be waiting for the case
    store's writer, whose work cancelling would not undo. What keeps that end near is that every
    input is bounded: dates to `shared.dates`, pages, batches, bodies, nesting."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds
        self.problem = Problem(503, "timeout", "Not answered in time",
                               f"no answer within {seconds:g} seconds; ask again later (an event posted "
                               "may have been stored: posting it again stores it once)", headers={"Retry-After": "5"})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        late: asyncio.Future | None = None  # the 503 being sent, once the time is up

        async def send_in_time(message: dict) -> None:
            if late is not None:
                return  # the caller has had its 503
            if message["type"] == "http.response.start":
                timer.cancel()  # answering: however long the rest takes
            await send(message)

        def time_up() -> None:
            nonlocal late
            late = asyncio.ensure_future(problem_response(self.problem, Request(scope))(scope, receive, send))

        timer = asyncio.get_running_loop().call_later(self.seconds, time_up)
        try:
            await self.app(scope, receive, send_in_time)  # the handler, to its end
        finally:
            timer.cancel()
            if late is not None:
                await late  # all of the 503 out before this request is done with


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



def refuse_deep_json(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when the JSON in `body` nests arrays and objects more than `limit` levels deep: the
    parser recurses once per level and breaks at about 1,000."""
    if too_deep(body, limit):
        raise Problem(400, "json-too-deep", "JSON nested too deeply",
                      f"arrays and objects nest more than {limit} levels deep; an event needs 2",
                      [FieldError("", f"nested more than {limit} levels deep")])


def too_deep(body: bytes, limit: int) -> bool:
    """Whether the brackets outside strings nest more than `limit` deep, found with byte
    operations that run at C speed (the body may be 10 MiB): drop escaped quotes and
    backslashes, keep only brackets and quotes, drop what is inside quotes, then remove the
    innermost `[]` pairs, one level per pass."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # every single event
    if b"\\" in body:  # escapes pair left to right, as the parser reads them
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_STRUCTURE, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # strings holding brackets; an unterminated one runs to the end
        skeleton = b"".join(skeleton.split(b'"')[::2])
    if b"[" * (limit + 1) in skeleton:
        return True
    depth = 0
    while skeleton and depth <= limit:
        reduced = skeleton.replace(b"[]", b"")
        if reduced == skeleton:  # closers, then openers: invalid, refused once the openers are read
            return depth + len(skeleton) - len(skeleton.rstrip(b"[")) > limit
        skeleton, depth = reduced, depth + 1
    return depth > limit


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):  # which value was meant? refuse rather than guess
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {twice!r} is given twice")
    return document


def parse_json(body: bytes) -> Any:
    """A request body as JSON, strictly: UTF-8, no key given twice, no NaN or Infinity, not
    nested deeper than MAX_JSON_DEPTH; a 400 problem otherwise."""
    try:
        text = body.decode()  # UTF-8 only, as RFC 8259 asks between systems: the depth check reads its bytes
        refuse_deep_json(body)
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", str(exc), [FieldError("", "body is not valid JSON")]) from None
