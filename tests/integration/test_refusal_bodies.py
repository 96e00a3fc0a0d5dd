"""Every refusal of the case service's domain and ingest, over HTTP, byte for byte as clients
get it: status, content type, and the problem+json body with its members in order. The bodies
are written out by hand (the same bytes the service answered before the domain raised
exceptions of its own: services/case/problems.py maps them)."""

import json

import pytest

from services.case.api import create_app
from services.case.bootstrap import bootstrap
from services.case.settings import CaseSettings
from shared.auth import ADMIN, INTEGRATION
from tests.events import benefit_ended, benefit_started, event, opened
from tests.infra import bearer

BASE = "https://frisag.dk/problems/"
SINGLE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def problem(status, slug, title, instance, field, reason, **extra):
    return {"type": BASE + slug, "title": title, "status": status, "detail": f"{field}: {reason}",
            "instance": instance, "errors": [{"field": field, "reason": reason}], **extra}


def assert_answer(answer, expected):
    assert answer.status_code == expected["status"], answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    # what Starlette's JSONResponse writes: compact, UTF-8, members in order
    assert answer.content == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture
def case(tmp_path, serve):
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    with serve(create_app(lambda: bootstrap(settings))) as client:
        yield client


def test_history_conflicts(case):
    assert_answer(case.post("/events", json=benefit_started("r1"), headers=SINGLE), problem(
        409, "case-conflict", "Event conflicts with the case's history", "/events", "type",
        "the case has not been opened: its first event must be case.opened"))
    assert case.post("/events", json=[opened("r2"), benefit_started("r2", date="2019-02-01")],
                     headers=BATCH).status_code == 201
    assert_answer(case.post("/events", json=opened("r2"), headers=SINGLE), problem(
        409, "case-conflict", "Event conflicts with the case's history", "/events", "type", "the case is already open"))
    assert_answer(case.post("/events", json=[benefit_ended("r2", date="2019-03-01"), benefit_ended("r2")],
                            headers=BATCH), problem(
        409, "case-conflict", "Event conflicts with the case's history", "/events", "[1].data.benefit",
        "ledighedsydelse is not running: it never started or already ended"))
    assert_answer(case.post("/events", json=benefit_ended("r2", date="2019-01-31"), headers=SINGLE), problem(
        422, "invalid-event", "Invalid event", "/events", "data.date",
        "ledighedsydelse cannot end before it started on 2019-02-01"))


def test_a_used_event_id(case):
    first = opened("k1", id_="same")
    assert case.post("/events", json=first, headers=SINGLE).status_code == 201
    reason = ("source jobcenter/851/momentum already used id same for a different event: (source, id) names one "
              "event; send this one under an id of its own")
    for other in ({**first, "data": {**first["data"], "date": "2019-01-02"}}, opened("k2", id_="same")):
        assert_answer(case.post("/events", json=other, headers=SINGLE),
                      problem(409, "event-id-used", "Event id already used", "/events", "id", reason))


def test_not_permitted_and_an_unknown_rule(case):
    assert case.post("/events", json=opened("p1", municipality="851"), headers=SINGLE).status_code == 201
    assert_answer(case.post("/events", json=[event("plan.updated", "p1", date="2019-02-01"),
                                             event("offer.started", "p1", offer="psykologbehandling", date="2019-03-01")],
                            headers=BATCH), problem(
        422, "not-permitted", "Not permitted for this case", "/events", "[1].data.offer",
        "psychologist treatment is not an offer the law knows (LAB; trials that permit it: T1, T4, T5, T7)",
        rule="LAB-tilbudstyper"))
    assert_answer(case.post("/events", json=event("cadence.agreed", "p1", rule="NO-SUCH-RULE", interval_days=90,
                                                  date="2019-02-01"), headers=SINGLE), problem(
        422, "invalid-event", "Invalid event", "/events", "data.rule", "is not a rule in the catalog"))


def test_an_erased_case(case, issuer):
    assert case.post("/events", json=opened("e1"), headers=SINGLE).status_code == 201
    admin = bearer(issuer.token(ADMIN))
    assert case.post("/cases/e1/erasure", headers=admin).status_code == 200
    reason = "case e1 was erased: its data is gone"
    assert_answer(case.post("/events", json=event("plan.updated", "e1", date="2019-02-01"), headers=SINGLE),
                  problem(410, "case-erased", "The case was erased", "/events", "subject", reason))
    assert_answer(case.get("/cases/e1"), problem(410, "case-erased", "The case was erased", "/cases/e1", "subject", reason))


def test_a_case_of_a_municipality_the_caller_does_not_act_for(case, issuer):
    assert case.post("/events", json=opened("m1", municipality="851"), headers=SINGLE).status_code == 201
    aarhus = bearer(issuer.token(INTEGRATION, municipalities=["751"]))
    assert_answer(case.post("/events", json=[opened("m2", municipality="751"),
                                             event("plan.updated", "m1", date="2019-02-01")],
                            headers={**BATCH, **aarhus}), problem(
        403, "forbidden", "Forbidden", "/events", "[1].subject",
        "the case belongs to a municipality this token does not act for"))
    assert_answer(case.post("/events", json=opened("m3", municipality="851"), headers={**SINGLE, **aarhus}), problem(
        403, "forbidden", "Forbidden", "/events", "subject",
        "case m3 belongs to municipality 851, which this token does not act for"))
