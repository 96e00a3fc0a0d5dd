"""RFC 9457 problem details: every refusal names the field and the reason."""

from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://frisag.dk/problems/"


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path in the posted document, e.g. "data.date" or "[2].data.date"
    reason: str


@dataclass
class Problem(Exception):
    status: int
    slug: str  # the problem type, appended to PROBLEM_BASE
    title: str
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # extension members, e.g. the rule that refused
    headers: dict = field(default_factory=dict)  # e.g. WWW-Authenticate on a 401

    def body(self, instance: str | None = None) -> dict:
        body: dict = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or "; ".join(f"{e.field}: {e.reason}" for e in self.errors),
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        return {**body, **self.extra}

    def prefixed(self, prefix: str) -> "Problem":
        """The same problem with each field located inside a larger document (a batch)."""
        errors = [FieldError(f"{prefix}.{e.field}" if e.field else prefix, e.reason) for e in self.errors]
        return Problem(self.status, self.slug, self.title, self.detail and f"{prefix}: {self.detail}", errors,
                       self.extra, self.headers)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request else None
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=problem.headers or None)


def install(app: FastAPI) -> None:
    """Make every error a service answers problem+json, and never a stack trace."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
                  for e in exc.errors()]
        return problem_response(Problem(422, "invalid-request", "Invalid request", errors=errors), request)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(Problem(exc.status_code, "http-error", str(exc.detail)), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(Problem(500, "internal-error", "Internal error"), request)
