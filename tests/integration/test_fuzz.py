"""Property-based fuzzing of each service's OpenAPI schema (schemathesis) against the running
service on PostgreSQL (in a process of its own): requests that fit the schema and requests that break it, with a token
that may do everything. No answer is a 5xx, every 4xx is problem+json, and a refused request
stores nothing. Each service answers at least 1,000 generated requests."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shared.problems import PROBLEM_JSON
from tests.infra import bearer, free_port, wait_for_port

REQUESTS = 1000  # at least, per service
APPS = {"case": "services.case.api:app", "obligations": "services.obligations.api:app",
        "reporting": "services.reporting.api:app"}


@contextmanager
def served_apart(app: str, environment: dict[str, str], token: str) -> Iterator[httpx.Client]:
    """The service in a process of its own, configured by its environment: generating the
    requests and answering them then take a core each."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"} | environment
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
                                "--no-access-log"], env=env)
    try:
        wait_for_port(port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=bearer(token), timeout=30) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # stuck on a request: it must not outlive the test
            process.kill()
            process.wait()


def answered(client: httpx.Client) -> int:
    """Requests the service has answered, by its own count (`/metrics`)."""
    lines = client.get("/metrics").text.splitlines()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in lines if line.startswith("frisag_http_requests_total{"))


# what a service holds, asked of its database: the case store's events, or the projection's
# cases (straight from PostgreSQL: asking the service's /metrics each time doubled the run)
HOLDINGS = {"case": "SELECT count(*) FROM cases_events", "obligations": "SELECT count(*) FROM obligations_cases",
            "reporting": "SELECT count(*) FROM reporting_cases"}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _event(**changes) -> bytes:
    event = {"specversion": "1.0", "id": "hostile-1", "source": "jobcenter/851/momentum", "type": "dk.frisag.case.opened",
             "subject": "hostile-case", "data": {"cpr": "010190-1234", "municipality": "851", "date": "2019-01-01"}}
    data = changes.pop("data", {})
    return json.dumps({**event, **changes, "data": {**event["data"], **data}}).encode()


LONG = "x" * 100_000  # in a body
LONG_URL = "x" * 4_000  # in a path or query: within what HTTP servers and proxies take in a request line
EXTREME_DATES = ("0001-01-01", "9999-12-31", "10000-01-01", "-0001-01-01", "2019-02-30")
HUGE_NUMBERS = (10**400, -(10**400), 1e308, 2**63)
# hand-made hostile inputs of each class (`make faults` sends them before the generated ones): (method, path, query, body)
HOSTILE: dict[str, list[tuple[str, str, dict, bytes | None]]] = {
    "case": [
        ("POST", "/events", {}, ('{"a":' * 100_000 + "1" + "}" * 100_000).encode()),
        ("POST", "/events", {}, _nested(100_000).encode()),
        ("POST", "/events", {}, _event(data={"extra": json.loads(_nested(500))})),
        ("POST", "/events", {}, _event(subject="case\u0000nul")),
        ("POST", "/events", {}, _event(id="id\u0000nul")),
        ("POST", "/events", {}, _event(data={"municipality": "8\u000051"})),
        ("POST", "/events", {}, b'{"specversion": "1.0\x00"}'),
        *[("POST", "/events", {}, _event(data={"date": d})) for d in EXTREME_DATES],
        ("POST", "/events", {}, _event(time="9999-12-31T23:59:59Z")),
        ("POST", "/events", {}, _event(time="0001-01-01T00:00:00+14:00")),
        *[("POST", "/events", {}, _event(data={"date": n})) for n in HUGE_NUMBERS],
        *[("POST", "/events", {}, _event(data={"municipality": n})) for n in HUGE_NUMBERS],
        ("POST", "/events", {}, b'{"id": 1' + b"0" * 5000 + b"}"),
        ("POST", "/events", {}, _event(id=LONG)),
        ("POST", "/events", {}, _event(subject=LONG)),
        ("POST", "/events", {}, _event(source=LONG)),
        ("GET", "/cases/" + LONG_URL, {}, None),
        ("GET", "/cases/nul%00case", {}, None),
        ("GET", "/audit", {"since": "9999-12-31T23:59:59Z", "until": "0001-01-01T00:00:00Z"}, None),
        ("GET", "/audit", {"after": str(10**40), "case_id": LONG_URL}, None),
    ],
    "obligations": [
        ("GET", "/cases/" + LONG_URL + "/obligations", {}, None),
        ("GET", "/cases/nul%00case/obligations", {}, None),
        *[("GET", "/cases/case-1/obligations", {"as_of": d}, None) for d in EXTREME_DATES],
        *[("GET", "/obligations", {"municipality": "851", "as_of": d, "due_before": d, "due_after": d}, None)
          for d in EXTREME_DATES],
        ("GET", "/obligations", {"municipality": "851", "limit": str(10**40)}, None),
        ("GET", "/obligations", {"municipality": "851", "cursor": LONG_URL}, None),
        ("GET", "/obligations", {"municipality": "851", "cursor": "\x00", "caseworker": "\x00" + LONG_URL}, None),
        ("GET", "/audit", {"after": str(10**40), "since": "9999-12-31T23:59:59Z"}, None),
    ],
    "reporting": [
        ("GET", "/trials/" + LONG_URL + "/evaluation", {}, None),
        ("GET", "/trials/T%0011/evaluation", {}, None),
        *[("GET", "/trials/T11/evaluation", {"from": d, "to": d}, None) for d in EXTREME_DATES],
        ("GET", "/trials/T11/evaluation", {"from": "0001-01-01", "to": "9999-12-31"}, None),
        ("GET", "/trials/T11/evaluation", {"comparison": ",".join(["851"] * 10_000)}, None),
        ("GET", "/trials/T11/series", {"metric": "\x00" + LONG_URL, "from": "0001-01-01", "to": "9999-12-31"}, None),
        ("GET", "/trials/T11/form", {"from": "9999-12-31"}, None),
        ("GET", "/audit", {"after": str(10**40), "until": "0001-01-01T00:00:00Z"}, None),
    ],
}


def fuzz(service: str, database_url: str, tmp_path, token: str, requests: int, stateful_steps: int = 0,
         hostile: bool = False) -> int:
    """Schemathesis against the service: `requests` generated requests (half as many again
    allowed, hypothesis may stop early), then `stateful_steps` steps of link-following
    sequences; with `hostile`, the hand-made HOSTILE inputs first. Returns how many requests
    were sent."""
    environment = {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)}
    with served_apart(APPS[service], environment, token) as client, \
            psycopg.connect(database_url, autocommit=True) as db:
        def stored() -> int:
            return db.execute(HOLDINGS[service]).fetchone()[0]

        held = [stored()]

        def check(case, answer) -> None:
            where = f"{case.method} {case.formatted_path} -> {answer.status_code}: {answer.text[:300]}"
            assert answer.status_code < 500, where
            now = stored()
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == [PROBLEM_JSON], where
                assert "errors" in answer.json() or answer.json()["detail"], where
                assert now == held[-1], f"refused, yet stored: {where}"
            held.append(now)

        schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        cases = st.one_of([op.as_strategy(mode) for op in operations
                           for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
        per_example = requests // 4  # hypothesis stops early when it has seen every small input
        sent = 0

        @settings(max_examples=requests + per_example, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def requests_hold_up(case) -> None:
            nonlocal sent
            answer = case.call(base_url=str(client.base_url), headers=dict(client.headers))
            sent += 1
            check(case, answer)

        start = answered(client)
        wrong = []
        for method, path, query, body in HOSTILE[service] if hostile else ():
            try:
                answer = client.request(method, path, params=query, content=body,
                                        headers={"content-type": "application/cloudevents+json"} if body else {})
            except httpx.HTTPError as exc:  # no answer at all
                wrong.append(f"{method} {path[:40]} {str(query)[:60]} {(body or b'')[:60]!r}: {exc!r}")
                continue
            sent += 1
            where = f"{method} {path[:40]} {str(query)[:60]} {(body or b'')[:60]!r} -> {answer.status_code}: {answer.text[:200]}"
            if answer.status_code >= 500 or (answer.status_code >= 400 and
                                             answer.headers["content-type"] != PROBLEM_JSON):
                wrong.append(where)
            now = stored()
            if answer.status_code >= 400 and now != held[-1]:
                wrong.append(f"refused, yet stored: {where}")
            held.append(now)
        requests_hold_up()
        assert sent >= requests
        if stateful_steps:
            class Sequences(schema.as_state_machine()):
                """Follows the schema's links: a stored event's case read back, a worklist's
                cases and pages, a trial's evaluation, series and form."""

                def get_call_kwargs(self, case):
                    return {"base_url": str(client.base_url), "headers": dict(client.headers)}

                def validate_response(self, response, case, **kwargs) -> None:
                    nonlocal sent
                    sent += 1
                    check(case, response)

            before = sent
            per_sequence = 10
            Sequences.run(settings=settings(max_examples=stateful_steps // per_sequence + 1,
                                            stateful_step_count=per_sequence, deadline=None, database=None,
                                            derandomize=True, suppress_health_check=list(HealthCheck)))
            assert sent - before >= stateful_steps // 2, "the stateful run stopped early"
        assert answered(client) - start >= sent  # the service saw them all
        assert not wrong, "\n".join(wrong)  # the hostile inputs' failures, after the rest has run
        return sent


@pytest.mark.parametrize("service", APPS)
def test_generated_requests_get_no_5xx_problems_for_4xx_and_refusals_store_nothing(service, database_url, tmp_path,
                                                                                   issuer):
    assert fuzz(service, database_url, tmp_path, issuer.everything(), REQUESTS) >= REQUESTS
