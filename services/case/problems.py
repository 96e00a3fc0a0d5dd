"""The one place where the case service's refusals and failures become RFC 9457 problems: the
domain and the application raise exceptions in their own words (`shared.refusals`,
`services.case.domain`, `services.case.ingest`), the HTTP entrypoint answers with these."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.case.cases import ConcurrentWrites
from services.case.domain import CaseConflict, CaseErased, EventIdUsed
from services.case.ingest import InBatch, NotActingFor, StoreUnavailable
from shared.problems import FieldError, Problem, problem_response
from shared.refusals import InvalidEvent, NotPermitted, Refusal

# status, problem type (after PROBLEM_BASE), title
REFUSALS: dict[type[Refusal], tuple[int, str, str]] = {
    NotActingFor: (403, "forbidden", "Forbidden"),
    CaseConflict: (409, "case-conflict", "Event conflicts with the case's history"),
    EventIdUsed: (409, "event-id-used", "Event id already used"),
    CaseErased: (410, "case-erased", "The case was erased"),
    InvalidEvent: (422, "invalid-event", "Invalid event"),
    NotPermitted: (422, "not-permitted", "Not permitted for this case"),
}


def problem_for(exc: Refusal | ConcurrentWrites | StoreUnavailable) -> Problem:
    if isinstance(exc, ConcurrentWrites):
        return Problem(409, "concurrent-writes", "The case keeps changing; try again", "too many concurrent writers")
    if isinstance(exc, StoreUnavailable):
        return Problem(503, "store-unavailable", "The case store is unavailable", exc.detail)
    # in a batch: the event's own problem, its field located in the batch ("[2].data.date")
    refusal = exc.refusal if isinstance(exc, InBatch) else exc
    status, slug, title = REFUSALS[type(refusal)]
    extra = {"rule": refusal.rule} if isinstance(refusal, NotPermitted) else {}  # which rule refused
    return Problem(status, slug, title, errors=[FieldError(exc.field, exc.reason)], extra=extra)


def install(app: FastAPI) -> None:
    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(problem_for(exc), request)

    for exception in (Refusal, ConcurrentWrites, StoreUnavailable):
        app.add_exception_handler(exception, answer)
