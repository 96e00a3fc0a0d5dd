"""HTTP entrypoint of the obligations service: due tasks per case and worklists (docs/API.md)."""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.consuming import FAILED_LISTED
from services.obligations.bootstrap import ObligationsService, bootstrap
from services.obligations.projection import HORIZON
from services.obligations.replies import CaseObligations, Counts, Status, Worklist
from services.obligations.settings import ObligationsSettings
from shared import openapi
from shared.app import service_app
from shared.audit import audited
from shared.auth import ADMIN, CASEWORKER, ROLES, Principal, forbidden, requires
from shared.dates import RANGE, QueryDate, within_range
from shared.events import CASE_ID_PATTERN, Code
from shared.problems import FieldError, Problem
from shared.projection import CaseErasedError, CaseNotDerivedError

OPEN = {"upcoming", "due", "overdue"}
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN)]
AsOf = Annotated[QueryDate | None, Query(
    description=f"The date to answer for (default: today), {RANGE}; later events are ignored")]
DueDate = Annotated[QueryDate | None, Query(description=RANGE)]
Caseworker = Annotated[Code | None, Query(description="as in `case.assigned`")]
Rule = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="a rule id, e.g. `LAS-74c`")]
Trial = Annotated[str | None, Query(pattern=r"^T\d{1,3}$", description=(
    "a trial, e.g. `T11`: the obligations it waives, suspends or changes (their `exemption.trial`)"))]


def create_app(service_factory: Callable[[], ObligationsService] | None = None, settings: ObligationsSettings | None = None) -> FastAPI:
    """The app over the service `service_factory` makes (default: from `settings`, which default
    to the environment's)."""
    settings = settings or ObligationsSettings()
    app = service_app(
        "Frisag obligations service",
        "The tasks the law requires of a jobcenter for each case, on a date, with every "
        "trial exemption applied and the reasons.",
        service_factory or (lambda: bootstrap(settings)),
        settings,
    )

    @app.get("/cases/{case_id}/obligations", dependencies=[Depends(audited("read case obligations"))],
             responses={200: {"model": CaseObligations}, **openapi.problems(404, 409, 410)})
    def case_obligations(case_id: CaseId, request: Request, as_of: AsOf = None,
                         caller: Principal = Depends(requires(CASEWORKER))) -> dict[str, Any]:
        """The case's obligations as of a date, folded from its events up to that date, and the
        trials that apply to it (`trials`: `trial`, `title`, `from`, `to`, the last day or null
        while it lasts, as known on that date). For the municipality responsible for the case on
        that date."""
        when = as_of or date.today()
        try:
            found = request.app.state.service.projection.for_case(case_id, when)
        except CaseErasedError:
            raise Problem(410, "case-erased", "The case was erased",
                          errors=[FieldError("case_id", "the case service erased it: its data is gone")]) from None
        except CaseNotDerivedError as failed:
            if not caller.acts_for(failed.municipality):
                raise forbidden(f"on {when} the case is not the responsibility of a municipality this token "
                                "acts for") from None
            raise not_derived(failed) from None
        if found is None:
            raise Problem(404, "case-not-found", "No such case", errors=[FieldError("case_id", "no events received")])
        municipality, obligations, trials = found
        if not caller.acts_for(municipality):
            raise forbidden(f"on {when} the case is not the responsibility of a municipality this token acts for")
        return {"case_id": case_id, "as_of": when.isoformat(), "obligations": obligations, "trials": trials}

    # links to a listed case's obligations and to the next page (API clients, schemathesis' stateful runs)
    @app.get("/obligations", dependencies=[Depends(audited("read worklist"))],
             responses={200: {"model": Worklist, "links": {
        "CaseObligations": {"operationId": "case_obligations",
                            "parameters": {"case_id": "$response.body#/items/0/case_id"}},
        "NextPage": {"operationId": "worklist",
                     "parameters": {"cursor": "$response.body#/next_cursor"}}}}})
    def worklist(
        request: Request,
        caller: Annotated[Principal, Depends(requires(CASEWORKER))],
        municipality: Annotated[str | None, Query(pattern=r"^\d{3}$", description="default: the token's one municipality")] = None,
        caseworker: Caseworker = None,
        status: Annotated[list[Status] | None, Query(description="any of these (repeat it); default: all")] = None,
        rule: Rule = None,
        trial: Trial = None,
        due_before: DueDate = None,
        due_after: DueDate = None,
        as_of: AsOf = None,
        sort: Annotated[Literal["due", "-due"] | None, Query(
            description="by due date, earliest (`due`) or latest (`-due`) first; default: nearest the as-of date "
                        "first, i.e. `due` for open tasks and `-due` when only done, waived or suspended ones are asked for")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """A worklist: obligations of the cases a municipality (or caseworker) is responsible
        for on `as_of`, exactly those their case pages as of that date list, with the same
        statuses; `limit` at a time (pass `next_cursor` back as `cursor`), `total` in all."""
        municipality = _own_municipality(caller, municipality)
        when = as_of or date.today()
        projection = request.app.state.service.projection
        _within_horizon(projection.stored_until(municipality, when), when, due_before)
        descending = sort == "-due" if sort else bool(status) and not set(status) & OPEN
        items, total = projection.worklist(
            as_of=when, municipality=municipality, caseworker=caseworker, statuses=status or (), rule=rule, trial=trial,
            due_before=due_before, due_after=due_after, descending=descending, limit=limit, after=_cursor(cursor))
        # cases of the municipality the fold failed for have no obligations here: say which
        missing = projection.failed(FAILED_LISTED, municipality=municipality)
        return {"as_of": when.isoformat(), "total": total, "items": items,
                "next_cursor": items[-1]["cursor"] if len(items) == limit else None,
                "cases_not_derived": [f["case_id"] for f in missing]}

    @app.get("/obligations/counts", dependencies=[Depends(audited("read worklist counts"))],
             responses={200: {"model": Counts}})
    def worklist_counts(
        request: Request,
        caller: Annotated[Principal, Depends(requires(CASEWORKER))],
        municipality: Annotated[str | None, Query(pattern=r"^\d{3}$", description="default: the token's one municipality")] = None,
        caseworker: Caseworker = None,
        rule: Rule = None,
        trial: Trial = None,
        due_before: DueDate = None,
        due_after: DueDate = None,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        """How many obligations `GET /obligations` lists for the same filters, per status, and
        per caseworker and status (`caseworker` null: cases assigned to no one); every status is
        named, with 0 where there are none."""
        municipality = _own_municipality(caller, municipality)
        when = as_of or date.today()
        projection = request.app.state.service.projection
        _within_horizon(projection.stored_until(municipality, when), when, due_before)
        tally = projection.tally(as_of=when, municipality=municipality, caseworker=caseworker, rule=rule, trial=trial,
                                 due_before=due_before, due_after=due_after)
        statuses = get_args(Status)
        return {"as_of": when.isoformat(),
                "statuses": {s: sum(counts.get(s, 0) for counts in tally.values()) for s in statuses},
                "caseworkers": [{"caseworker": who, "statuses": {s: tally[who].get(s, 0) for s in statuses}}
                                for who in sorted(tally, key=lambda who: (who is None, who or ""))]}

    @app.get("/obligations/changes", dependencies=[Depends(audited("read obligation changes"))],
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "Server-Sent Events: `id` a tick, `data` `{case_id, municipality}`"}})
    async def changes(
        request: Request,
        caller: Annotated[Principal, Depends(requires(CASEWORKER))],
        municipality: Annotated[str | None, Query(pattern=r"^\d{3}$", description="default: the token's one municipality")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description=(
            "the `id` of the last event received: the stream goes on after it (default: from now)"))] = None,
    ) -> StreamingResponse:
        """Server-Sent Events naming the cases of a municipality whose obligations were derived
        again (new events, a catalog change), so a worklist knows when to refresh: `data`
        `{"case_id", "municipality"}`, `id` the projection's clock, which a reconnecting client
        sends back as `Last-Event-ID` (an EventSource does) to miss nothing. Cases the
        municipality was ever responsible for; a case changed several times while no one
        listened comes once. A comment every few seconds keeps the connection open; the stream
        ends after a while (`retry` tells the client when to reconnect)."""
        municipality = _own_municipality(caller, municipality)
        after = _last_event_id(last_event_id)
        projection = request.app.state.service.projection
        tick, found = await run_in_threadpool(projection.changes, municipality, after)
        return StreamingResponse(_change_stream(projection, municipality, tick, found, settings),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/catalog/reload", status_code=202, responses=openapi.problems(422),
              dependencies=[Depends(audited("reload catalog")), Depends(requires(ADMIN))])
    async def reload_catalog(request: Request) -> dict[str, int]:
        """Read the rule and trial catalogs again; every case the change touches is
        re-evaluated in the background (`GET /status` shows how many are left)."""
        try:
            marked = await run_in_threadpool(request.app.state.service.reload_catalog)
        except ValueError as exc:
            raise Problem(422, "invalid-catalog", "The catalog does not validate", str(exc)) from None
        return {"cases_to_reevaluate": marked}

    @app.get("/status")
    def status(request: Request, caller: Principal = Depends(requires(*ROLES))) -> dict[str, Any]:
        """Cases, stale cases, failed cases (listed for an admin) and obligations."""
        return request.app.state.service.status(ADMIN in caller.roles)

    return app


def not_derived(failed: CaseNotDerivedError) -> Problem:
    """409: the request is right, and so is the service, but this case's events could not be
    folded; nothing will change until the case is derived again after a fix."""
    recorded = "failed_at" in failed.failure  # else it failed only for the date asked
    return Problem(409, "case-not-derived", "The case's obligations could not be derived",
                   f"folding the case's events failed ({failed.failure['error']})" + (
                       "; operators see it in GET /status and frisag_projection_failed_cases, and the case is "
                       "derived again after a fix" if recorded else ""),
                   extra={"case_id": failed.case_id, "failed_at": failed.failure.get("failed_at")})


def _own_municipality(caller: Principal, municipality: str | None) -> str:
    """The worklist's municipality: one the caller acts for; by default its only one."""
    if municipality is None:
        if len(caller.municipalities) != 1:
            raise Problem(422, "invalid-request", "Invalid request", errors=[
                FieldError("municipality", "required: the token acts for several municipalities, or none")])
        (municipality,) = caller.municipalities
    if not caller.acts_for(municipality):
        raise forbidden(f"this token does not act for municipality {municipality}")
    return municipality


def _last_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,18}", value):
        raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError(
            "Last-Event-ID", "not an event id of this stream: send back an `id` as it came")])
    return int(value)


async def _change_stream(projection, municipality: str, tick: int,
                         found: list[tuple[int, str]], settings: ObligationsSettings) -> AsyncIterator[str]:
    """The events of `found`, then of what changes after `tick`, until the stream's time is up
    (or the client goes). Several cases derived in one transaction share a tick: only the last
    of them carries the `id`, so a client cut off among them gets them all again."""
    started = beat = time.monotonic()
    sent = None  # the last id sent
    yield f"retry: {int(settings.changes_poll_seconds * 1000)}\n\n"
    while True:
        for i, (at, case_id) in enumerate(found):
            data = json.dumps({"case_id": case_id, "municipality": municipality})
            last = i + 1 == len(found) or found[i + 1][0] != at
            yield f"data: {data}\n" + (f"id: {at}\n" if last else "") + "\n"
        if tick != sent:  # after the events (or none: other municipalities' changes), where to resume
            yield f"id: {tick}\n\n"
            sent, beat = tick, time.monotonic()
        now = time.monotonic()
        if now - started >= settings.changes_stream_seconds:  # a client that goes: Starlette cancels us
            return
        if now - beat >= settings.changes_heartbeat_seconds:
            beat = now
            yield ": still here\n\n"
        await asyncio.sleep(settings.changes_poll_seconds)
        tick, found = await run_in_threadpool(projection.changes, municipality, tick)


def _within_horizon(stored_until: date | None, as_of: date, due_before: date | None) -> None:
    """Refuse rather than answer partly: the stored obligations reach only so far ahead."""
    for field, day in (("as_of", as_of), ("due_before", due_before)):
        if day is not None and (stored_until is None or day > stored_until):
            reach = f"up to {stored_until}" if stored_until else "only as far as they were folded (being derived again)"
            raise Problem(422, "beyond-horizon", "Beyond the stored obligations", errors=[FieldError(
                field, f"{day} lies beyond how far ahead obligations are stored for these cases ({reach}; "
                       f"{HORIZON.days} days past today); ask GET /cases/{{case_id}}/obligations for later dates")])


def _cursor(cursor: str | None) -> tuple[date, str, int] | None:
    """`due|case_id|n` of the last item of the previous page, as the worklist gives it."""
    if cursor is None:
        return None
    try:
        due, case_id, n = cursor.split("|")
        if not re.fullmatch(CASE_ID_PATTERN, case_id) or not re.fullmatch(r"\d{1,9}", n):
            raise ValueError
        return within_range(date.fromisoformat(due)), case_id, int(n)
    except ValueError:
        raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError(
            "cursor", "not a cursor from this API: pass back a `next_cursor` as it came")]) from None


app = create_app()
