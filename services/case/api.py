"""HTTP entrypoint of the case service: events in (docs/API.md), case histories out."""

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse

from services.case import problems
from services.case.bootstrap import CaseService, bootstrap
from services.case.erasure import erase
from services.case.history import history
from services.case.replies import CaseHistory, Stored
from services.case.settings import CaseSettings
from shared import openapi, tracing
from shared.app import service_app
from shared.audit import audited
from shared.auth import ADMIN, CASEWORKER, INTEGRATION, Principal, forbidden, requires
from shared.events import CASE_ID_PATTERN, JSON_TYPE, event_json_schemas, media_type, parse_batch, parse_event
from shared.hardening import parse_json
from shared.problems import FieldError, Problem

SINGLE_TYPES = ("application/cloudevents+json", "application/json")
BATCH_TYPE = "application/cloudevents-batch+json"
CLOUDEVENTS_TYPES = "application/cloudevents"  # a structured-mode event format (HTTP binding 3.1.1)
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN)]


def create_app(service_factory: Callable[[], CaseService] | None = None, settings: CaseSettings | None = None) -> FastAPI:
    """The app over the service `service_factory` makes (default: from `settings`, which default
    to the environment's)."""
    settings = settings or CaseSettings()
    app = service_app(
        "Frisag case service",
        "Jobcenter systems post citizen-case events (CloudEvents 1.0); each is validated, "
        "stored in the case's event-sourced history and published to the stream.",
        service_factory or (lambda: bootstrap(settings)),
        settings,
        event_json_schemas(openapi.SCHEMAS + "{model}"),
    )
    problems.install(app)  # the domain's refusals, as problem+json

    # Documented as one media type: a generated client (openapi-python-client) cannot make an
    # operation of several. The CloudEvents media types and binary mode are in the description.
    event = {"$ref": openapi.SCHEMAS + "CloudEvent"}
    body = {"required": True, "content": {JSON_TYPE: {"schema": {
        "anyOf": [event, {"type": "array", "items": event, "minItems": 1}]}}}}

    # the link tells API clients (and schemathesis' stateful runs) where a stored event's case is read
    stored_links = {"links": {"GetCase": {"operationId": "get_case",
                                          "parameters": {"case_id": "$response.body#/subject"}}}}

    # one event answers with one `Stored`, a batch with one for each of its events
    stored = Stored | list[Stored]

    @app.post("/events", status_code=201, openapi_extra={"requestBody": body},
              responses={200: {"description": "Duplicate: stored before", "model": stored, **stored_links},
                         201: {"description": "Stored", "model": stored, **stored_links},
                         **openapi.problems(400, 409, 410, 415)})
    async def post_events(request: Request, caller: Principal = Depends(requires(INTEGRATION))) -> JSONResponse:
        """One CloudEvent (`application/cloudevents+json` or `application/json`, or in HTTP binary
        mode: `ce-` headers, the data as the body) or a batch (`application/cloudevents-batch+json`,
        or an array as `application/json`), all-or-nothing. 201 when anything was stored, 200 when
        every event was a duplicate of one stored before."""
        content_type = request.headers.get("content-type")
        essence = media_type(content_type or "")
        if "ce-specversion" in request.headers and not (essence or "").startswith(CLOUDEVENTS_TYPES):
            # HTTP binary mode: the event's attributes in ce- headers, its data the body
            if content_type is not None and essence != JSON_TYPE:
                raise Problem(415, "unsupported-media-type", "Unsupported media type", errors=[FieldError(
                    "datacontenttype", f"binary mode takes the event's data as {JSON_TYPE} (a charset only utf-8)")])
            events, batch = [parse_event(_binary_event(request, parse_json(await request.body())))], False
        elif essence in (*SINGLE_TYPES, BATCH_TYPE):
            document = parse_json(await request.body())
            batch = essence == BATCH_TYPE or (essence == JSON_TYPE and isinstance(document, list))
            if batch and isinstance(document, list) and len(document) > settings.max_batch_events:
                raise Problem(413, "batch-too-large", "Batch too large", errors=[FieldError(
                    "", f"a batch holds at most {settings.max_batch_events} events; this one {len(document)}")])
            events = parse_batch(document) if batch else [parse_event(document)]
        else:
            raise Problem(415, "unsupported-media-type", "Unsupported media type", errors=[FieldError(
                "Content-Type", f"send {', '.join((*SINGLE_TYPES, BATCH_TYPE))} (a charset only utf-8), or one "
                "event in binary mode (ce- headers)")])
        service: CaseService = request.app.state.service
        tracing.link_carried(events)
        traceparent = tracing.current_traceparent()
        if traceparent:  # the relay's send span will be a child of this request's
            events = [e if e.traceparent else replace(e, traceparent=traceparent) for e in events]
        # the ingest checks the caller acts for each event's case, against the case as stored
        outcomes = await asyncio.wrap_future(service.ingest.submit(events, caller.acts_for))
        status = 200 if all(o.duplicate for o in outcomes) else 201
        body: Any = [o.as_json() for o in outcomes] if batch else outcomes[0].as_json()
        return JSONResponse(body, status_code=status)

    @app.get("/cases/{case_id}", dependencies=[Depends(audited("read case history"))],
             responses={200: {"model": CaseHistory}, **openapi.problems(404, 410)})
    def get_case(case_id: CaseId, request: Request,
                 caller: Principal = Depends(requires(INTEGRATION, CASEWORKER))) -> dict[str, Any]:
        """The case's history: every stored event in order, CPR number masked. For the
        municipality responsible for the case now."""
        cases = request.app.state.service.cases
        municipality = cases.municipality(case_id)
        if municipality is None:
            raise Problem(404, "case-not-found", "No such case", errors=[FieldError("case_id", "no events stored")])
        if not caller.acts_for(municipality):
            raise forbidden("the case belongs to a municipality this token does not act for")
        return {"case_id": case_id, "events": history(cases, case_id)}

    @app.post("/cases/{case_id}/erasure", dependencies=[Depends(audited("erase case")), Depends(requires(ADMIN))],
              responses=openapi.problems(404))
    def erase_case(case_id: CaseId, request: Request) -> dict[str, Any]:
        """Erase the case's personal data now (crypto-shredding: its data key is destroyed, so
        its stored events cannot be read) and tell the stream's consumers to drop it. Cases are
        also erased automatically `RETENTION_AFTER_CLOSE_DAYS` after they close. Erasing again
        answers with the same erasure."""
        erasure = erase(request.app.state.service.cases, case_id, "request", date.today())
        if erasure is None:
            raise Problem(404, "case-not-found", "No such case", errors=[FieldError("case_id", "no events stored")])
        return erasure

    return app


PERCENT_ENCODED = re.compile(r"(?:[ -$&-~]|%[0-9A-Fa-f]{2})*")  # printable ASCII, each % an escape


def _binary_event(request: Request, data: Any) -> dict[str, Any]:
    """The event a binary-mode request carries as a document of the JSON format: each `ce-` header
    an attribute, percent-decoded (HTTP binding 3.1.3.2), the Content-Type its `datacontenttype`."""
    document: dict[str, Any] = {}
    for name, value in request.headers.items():
        if not name.startswith("ce-"):
            continue
        attribute = name.removeprefix("ce-")
        if attribute == "data":  # not an attribute: dropping it unread would hide a mistake
            raise _invalid_header(attribute, "in binary mode the data is the body, not a header")
        if attribute in document:  # which value was meant? refuse rather than guess
            raise _invalid_header(attribute, f"the header {name} is given twice")
        if not PERCENT_ENCODED.fullmatch(value):  # raw bytes would be read as latin-1, a stray % kept as sent
            raise _invalid_header(attribute, f"the header {name} must be printable ASCII, anything else "
                                             "percent-encoded as UTF-8 (%XX)")
        try:
            document[attribute] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise _invalid_header(attribute, f"the header {name} is not UTF-8 once percent-decoded") from None
    if "content-type" in request.headers:
        document["datacontenttype"] = request.headers["content-type"]
    return {**document, "data": data}


def _invalid_header(attribute: str, reason: str) -> Problem:
    return Problem(422, "invalid-event", "Invalid event", errors=[FieldError(attribute, reason)])


app = create_app()
