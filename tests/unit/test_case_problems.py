"""Each refusal the case service's domain and ingest raise, as the problem+json clients get:
the bodies are written out by hand from the API's problems (../API.md), not from the mapping."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from services.case import problems
from services.case.cases import ConcurrentWrites
from services.case.domain import CaseConflict, CaseErased, EventIdUsed
from services.case.ingest import InBatch, NotActingFor, StoreUnavailable
from shared import problems as shared_problems
from shared.refusals import InvalidEvent, NotPermitted

BASE = "https://frisag.dk/problems/"


def body(status, slug, title, field, reason, **extra):
    return {"type": BASE + slug, "title": title, "status": status, "detail": f"{field}: {reason}",
            "instance": "/events", "errors": [{"field": field, "reason": reason}], **extra}


CASES = [
    (CaseConflict("type", "the case is already open"),
     body(409, "case-conflict", "Event conflicts with the case's history", "type", "the case is already open")),
    (CaseConflict("data.benefit", "dagpenge already runs since 2019-01-01"),
     body(409, "case-conflict", "Event conflicts with the case's history", "data.benefit",
          "dagpenge already runs since 2019-01-01")),
    (EventIdUsed("jobcenter/851/momentum", "e-1"),
     body(409, "event-id-used", "Event id already used", "id",
          "source jobcenter/851/momentum already used id e-1 for a different event: (source, id) names one event; "
          "send this one under an id of its own")),
    (CaseErased("c-1"), body(410, "case-erased", "The case was erased", "subject", "case c-1 was erased: its data is gone")),
    (InvalidEvent("data.date", "ledighedsydelse cannot end before it started on 2019-03-01"),
     body(422, "invalid-event", "Invalid event", "data.date", "ledighedsydelse cannot end before it started on 2019-03-01")),
    (NotPermitted("IGU-alder", "data.offer", "the citizen is 17"),
     body(422, "not-permitted", "Not permitted for this case", "data.offer", "the citizen is 17", rule="IGU-alder")),
    (NotActingFor("subject", "the case belongs to a municipality this token does not act for"),
     body(403, "forbidden", "Forbidden", "subject", "the case belongs to a municipality this token does not act for")),
    # in a batch the field is located in it; the rest is the event's refusal
    (InBatch(2, NotPermitted("IGU-alder", "data.offer", "the citizen is 17")),
     body(422, "not-permitted", "Not permitted for this case", "[2].data.offer", "the citizen is 17", rule="IGU-alder")),
    (InBatch(0, CaseErased("c-1")),
     body(410, "case-erased", "The case was erased", "[0].subject", "case c-1 was erased: its data is gone")),
    (InBatch(1, InvalidEvent("", "no field")), body(422, "invalid-event", "Invalid event", "[1]", "no field")),
    (ConcurrentWrites(), {"type": BASE + "concurrent-writes", "title": "The case keeps changing; try again",
                          "status": 409, "detail": "too many concurrent writers", "instance": "/events"}),
    (StoreUnavailable("connection refused"), {"type": BASE + "store-unavailable", "title": "The case store is unavailable",
                                              "status": 503, "detail": "connection refused", "instance": "/events"}),
]


@pytest.fixture(scope="module")
def app() -> FastAPI:
    """An app that raises the refusal it is asked for, with the case service's handlers."""
    app = FastAPI()
    shared_problems.install(app)
    problems.install(app)

    @app.post("/events")
    def refuse(index: int):
        raise CASES[index][0]

    return app


def post(app: FastAPI, index: int) -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://case") as client:
            return await client.post("/events", params={"index": index})

    return asyncio.run(request())


@pytest.mark.parametrize("index", range(len(CASES)), ids=[type(exc).__name__ for exc, _ in CASES])
def test_each_refusal_is_answered_with_its_problem(app, index):
    expected = CASES[index][1]
    response = post(app, index)
    assert response.status_code == expected["status"]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == expected
    assert list(response.json()) == list(expected)  # the members in the order clients got them
