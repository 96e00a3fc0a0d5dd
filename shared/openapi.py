"""Each service's OpenAPI document as a generated client needs it: the bearer token (JWT) that
the operations checking one ask for, and the problem+json (RFC 9457, `shared.problems`) every
refusal and failure is, with the statuses each operation can answer, in place of FastAPI's own
422 body, which no service sends. Replies are described by pydantic models (`responses=` on a
route, each service's `replies.py`) that document and do not check: a route returning a free
`dict` keeps it as its response model, serialized by pydantic-core (a `response_model=None`
would send a 500-item worklist through `jsonable_encoder`, 8x slower)."""

from typing import Any

from fastapi import FastAPI

from shared.problems import PROBLEM_JSON

SCHEMAS = "#/components/schemas/"
# what a problem of each status means here; a route's own are in its title and `errors`
MEANINGS = {
    400: "Malformed JSON: not UTF-8, a key given twice, `NaN`, or nested too deeply",
    401: "No bearer token, or an invalid one (`WWW-Authenticate: Bearer`)",
    403: "The token lacks the role, or does not act for the municipality",
    404: "Not found",
    409: "In conflict with what is stored",
    410: "The case was erased",
    413: "Request body, or batch, too large",
    415: "Unsupported media type",
    422: "Invalid request: `errors` names each wrong field (dotted, e.g. `data.date`, `[2].data.date` in a batch, "
         "a query parameter's name) and the reason",
    503: "Not answered in time (`Retry-After`), or a part the service needs is unavailable",
}
PROBLEM = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. Some types carry extension members: `not-permitted` the `rule` "
                   "that refused, `case-not-derived` the `case_id` and when it `failed_at`.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "https://frisag.dk/problems/ and the problem's name"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what is wrong; the `errors` joined where there are any"},
        "instance": {"type": "string", "description": "the request's path"},
        "errors": {"type": "array", "items": {"$ref": SCHEMAS + "FieldError"}},
    },
    "additionalProperties": True,
}
FIELD_ERROR = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "reason"],
    "properties": {"field": {"type": "string", "description": "empty for the request as a whole"},
                   "reason": {"type": "string"}},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses` for the problems only it answers (every route's are added by `describe`)."""
    return {status: _problem(status) for status in statuses}


def _problem(status: int) -> dict[str, Any]:
    return {"description": MEANINGS[status], "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMAS + "Problem"}}}}


def describe(app: FastAPI, schemas: dict[str, Any] | None = None) -> None:
    """Make `app.openapi()` FastAPI's document with the problems every operation can answer and
    `schemas` among its components: 401 and 403 where a token is checked, 413 where a body is
    read, 422 and 503 everywhere (a query parameter the operation does not declare; the time limit)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, as FastAPI's own
            document = FastAPI.openapi(app)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for unsent in ("HTTPValidationError", "ValidationError"):
                components.pop(unsent, None)
            components.update({"Problem": PROBLEM, "FieldError": FIELD_ERROR, **(schemas or {})})
            for operations in document["paths"].values():
                for operation in operations.values():
                    _add_problems(operation)
                    _reply_models_only(operation)
        return app.openapi_schema

    app.openapi = openapi


def _add_problems(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    statuses = [422, 503]  # shared.query refuses a query parameter the operation does not declare
    if "security" in operation:
        statuses += [401, 403]
    if "requestBody" in operation:
        statuses.append(413)
    for status in statuses:
        response = responses.setdefault(str(status), {"description": MEANINGS[status]})
        if status == 422:  # FastAPI's own, "Validation Error", is a body no service sends
            response["description"] = MEANINGS[422]
        response["content"] = _problem(status)["content"]  # a route's own description stays (`/readyz`)
    operation["responses"] = dict(sorted(responses.items()))


def _reply_models_only(operation: dict[str, Any]) -> None:
    """A reply's documented model (`$ref`) stands alone: FastAPI merges it into the free object
    its route's annotation (`dict[str, Any]`) describes."""
    for response in operation["responses"].values():
        for media in response.get("content", {}).values():
            if "$ref" in media.get("schema", {}):
                media["schema"] = {"$ref": media["schema"]["$ref"]}
