"""Input hardening over HTTP: body and batch size limits, strict JSON, paging limits, a time
limit, security headers, no stack traces, and CORS only for the origins configured."""

import json
import time

import psycopg
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from tests.events import opened
from shared.auth import ADMIN, CASEWORKER
from tests.infra import bearer, is_problem

SINGLE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
def settings(tmp_path) -> CaseSettings:
    return CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path,
                        max_body_bytes=20_000, max_batch_events=10)


def stored(settings: CaseSettings) -> int:
    service = case_bootstrap(settings)
    try:
        return service.cases.last_position()
    finally:
        service.close()


def test_bodies_and_batches_over_the_limits_are_refused_and_change_nothing(settings, serve):
    with serve(case_app(lambda: case_bootstrap(settings), settings)) as case:
        big = opened("c-1") | {"padding": "x" * 30_000}
        problem = is_problem(case.post("/events", content=json.dumps(big), headers=SINGLE), 413)
        assert "20000 bytes" in problem["detail"]

        def chunks():  # no Content-Length: counted as it arrives
            yield json.dumps(opened("c-2"))[:-1].encode()
            yield b', "padding": "' + b"x" * 30_000 + b'"}'

        is_problem(case.post("/events", content=chunks(), headers=SINGLE), 413)
        batch = [opened(f"c-{i}") for i in range(11)]
        for headers in (BATCH, {"content-type": "application/json"}):  # an array as JSON is a batch too
            problem = is_problem(case.post("/events", json=batch, headers=headers), 413)
            assert problem["errors"] == [{"field": "", "reason": "a batch holds at most 10 events; this one 11"}]
        assert case.post("/events", json=batch[:10], headers=BATCH).status_code == 201  # at the limit: fine
        again = case.post("/events", json=batch[:10], headers={"content-type": "application/json"})
        assert (again.status_code, len(again.json())) == (200, 10)  # the same batch as JSON: ten duplicates
    assert stored(settings) == 10


def test_json_is_parsed_strictly(settings, serve):
    with serve(case_app(lambda: case_bootstrap(settings), settings)) as case:
        document = json.dumps(opened("c-1"))
        twice = document[:-1] + ', "subject": "c-2"}'  # a key given twice: which one is meant?
        problem = is_problem(case.post("/events", content=twice, headers=SINGLE), 400)
        assert "subject" in problem["detail"] and "twice" in problem["detail"]
        for bad in ('{"specversion": NaN}', "[1, 2", "\xff", '{"a": Infinity}'):
            is_problem(case.post("/events", content=bad.encode("latin-1"), headers=SINGLE), 400)
    assert stored(settings) == 0


def test_answers_carry_security_headers_and_no_stack_traces(settings, serve):
    with serve(case_app(lambda: case_bootstrap(settings), settings)) as case:
        for answer in (case.get("/healthz"), case.get("/cases/nobody"), case.post("/events", content=b"{",
                                                                                  headers=SINGLE)):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["cache-control"] == "no-store"
            assert "default-src 'none'" in answer.headers["content-security-policy"]
            assert "Traceback" not in answer.text and "File \"" not in answer.text
        assert "access-control-allow-origin" not in case.get("/healthz", headers={"origin": "https://evil.example"}
                                                            ).headers
        docs = case.get("/docs")  # Swagger UI: its scripts are allowed there, from the service itself
        assert docs.status_code == 200
        assert "http" not in docs.headers["content-security-policy"]  # no CDN
        assert "script-src 'self'" in docs.headers["content-security-policy"]
        assert "cdn" not in docs.text and "cdn" not in case.get("/redoc").text
        assert case.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_paging_is_limited(tmp_path, serve):
    settings = ObligationsSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    with serve(obligations_app(lambda: obligations_bootstrap(settings), settings)) as obligations:
        for limit in ("0", "501", "many"):
            problem = is_problem(obligations.get("/obligations", params={"municipality": "851", "limit": limit}), 422)
            assert problem["errors"][0]["field"] == "query.limit"
        problem = is_problem(obligations.get("/obligations", params={"municipality": "851", "cursor": "x|y"}), 422)
        assert problem["errors"][0]["field"] == "cursor"


def test_cors_only_for_the_configured_origins(tmp_path, serve):
    settings = CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path,
                            cors_origins="https://sag.aalborg.dk, https://sag.aarhus.dk")
    with serve(case_app(lambda: case_bootstrap(settings), settings)) as case:
        preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
        allowed = case.options("/events", headers={"origin": "https://sag.aarhus.dk", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://sag.aarhus.dk"
        refused = case.options("/events", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        answer = case.get("/cases/nobody", headers={"origin": "https://sag.aalborg.dk"})
        assert answer.headers["access-control-allow-origin"] == "https://sag.aalborg.dk"


def test_a_request_not_answered_in_time_is_answered_503_and_the_others_go_on(database_url, tmp_path, serve, issuer):
    settings = ObligationsSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path,
                                   refold_workers=0, request_timeout_seconds=1)
    worker = bearer(issuer.token(CASEWORKER, ADMIN, municipalities=["851"], subject="anna@aalborg"))
    with serve(obligations_app(lambda: obligations_bootstrap(settings), settings), token=None) as obligations, \
            psycopg.connect(database_url) as holder:
        assert obligations.get("/obligations", headers=worker).status_code == 200
        holder.execute("LOCK TABLE obligations IN ACCESS EXCLUSIVE MODE")  # the worklist's query waits for it
        asked = time.monotonic()
        problem = is_problem(obligations.get("/obligations", headers=worker, timeout=10), 503)
        assert 1 <= time.monotonic() - asked < 3
        assert "1 seconds" in problem["detail"]
        assert obligations.get("/healthz", timeout=2).status_code == 200  # a late handler holds up nobody else
        holder.rollback()
        assert obligations.get("/obligations", headers=worker, timeout=10).status_code == 200
        statuses = [r["status"] for r in obligations.get("/audit", headers=worker).json()["records"]]
        assert statuses == [200, 503, 200]  # the 503 is recorded as answered


def test_an_event_posted_past_the_time_limit_is_stored_once_and_the_store_goes_on(database_url, tmp_path, serve):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path,
                            request_timeout_seconds=1)
    with serve(case_app(lambda: case_bootstrap(settings), settings)) as case, \
            psycopg.connect(database_url) as holder:
        assert case.post("/events", json=opened("c-1"), headers=SINGLE).status_code == 201
        holder.execute("LOCK TABLE cases_events IN ACCESS EXCLUSIVE MODE")  # the store's writer waits for it
        late = opened("c-2")
        is_problem(case.post("/events", json=late, headers=SINGLE, timeout=10), 503)
        holder.rollback()
        # the writer finished what it had begun: posting it again finds it stored, once
        assert case.post("/events", json=late, headers=SINGLE, timeout=10).status_code == 200
        assert case.post("/events", json=opened("c-3"), headers=SINGLE, timeout=10).status_code == 201
        assert [e["sequence"] for e in case.get("/cases/c-2").json()["events"]] == [1]
