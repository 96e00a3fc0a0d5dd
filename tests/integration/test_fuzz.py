"""Property-based fuzzing of each service's OpenAPI schema (schemathesis) against the running
service on PostgreSQL (in a process of its own): requests that fit the schema and requests that break it, with a token
that may do everything, and requests that fit it but for one query or path parameter, the body
or the token's subject, which is bad input of a known class (tests/bad_input.py: deep nesting,
NUL bytes, extreme dates, huge numbers, overlong ids and subjects). No answer is a 5xx, every
4xx is problem+json, and a refused request stores nothing. Each service answers at least 1,000
generated requests."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from requests import Session
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shared.auth import ROLES
from shared.municipalities import municipalities
from shared.problems import PROBLEM_JSON
from tests.bad_input import BODIES, PARAMETERS, SUBJECTS
from tests.infra import bearer, free_port, wait_for_port

pytestmark = pytest.mark.slow

REQUESTS = 1000  # at least, per service
SPOILT = 300  # and at least as many with bad input of a known class
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


def spoiled(case, place: int, value: str, body: bytes, token: str):
    """`case` with one of its query or path parameters, its body or its token made bad; and the
    token to send (None: the good one)."""
    operation = case.operation
    places = [("query", p.name) for p in operation.query] + [("path", p.name) for p in operation.path_parameters]
    places += [("body", "")] * bool(len(operation.body)) + [("token", "")]
    where, name = places[place % len(places)]
    if where == "query":
        case.query = {**(case.query or {}), name: value}
    elif where == "path":
        case.path_parameters = {**case.path_parameters, name: value}
    elif where == "body":
        case.body = body
    return case, token if where == "token" else None


def fuzz(service: str, database_url: str, tmp_path, issuer, requests: int, spoilt: int,
         stateful_steps: int = 0) -> int:
    """Schemathesis against the service: `requests` generated requests and `spoilt` with bad
    input (exactly: hypothesis, derandomized, stops early only when it has tried every small input,
    which the counts then say), then `stateful_steps` steps of
    sequences that follow the schema's OpenAPI links. Returns how many requests were sent."""
    # a change feed's stream ends at once: each of the fuzzer's requests is answered
    environment = {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "CHANGES_STREAM_SECONDS": "0"}
    with served_apart(APPS[service], environment, issuer.everything()) as client, \
            psycopg.connect(database_url, autocommit=True) as db, Session() as session:
        def stored() -> int:
            return db.execute(HOLDINGS[service]).fetchone()[0]

        schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        generated = st.one_of([op.as_strategy(mode) for op in operations
                               for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
        bad_tokens = [issuer.token(*ROLES, municipalities=municipalities(), subject=s) for s in SUBJECTS]
        bad_input = st.builds(spoiled, st.one_of([op.as_strategy(GenerationMode.POSITIVE) for op in operations]),
                              st.integers(0, 63), st.sampled_from([v for vs in PARAMETERS.values() for v in vs]),
                              st.sampled_from([b for bs in BODIES.values() for b in bs]), st.sampled_from(bad_tokens))
        sent, held = 0, [stored()]

        def check(case, answer) -> None:
            where = f"{case.method} {case.formatted_path} -> {answer.status_code}: {answer.text[:300]}"
            assert answer.status_code < 500, where
            now = stored()
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == [PROBLEM_JSON], where
                assert "errors" in answer.json() or answer.json()["detail"], where
                assert now == held[-1], f"refused, yet stored: {where}"
            held.append(now)

        def holds_up(case, token: str | None) -> None:
            nonlocal sent
            headers = dict(client.headers) | (bearer(token) if token else {})
            answer = case.call(base_url=str(client.base_url), session=session, headers=headers)
            sent += 1
            check(case, answer)

        def runs(examples: int):
            return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                            suppress_health_check=list(HealthCheck))

        start = answered(client)
        runs(requests)(given(case=generated)(lambda case: holds_up(case, None)))()
        assert sent >= requests
        runs(spoilt)(given(request=bad_input)(lambda request: holds_up(*request)))()
        assert sent >= requests + spoilt
        if stateful_steps:
            class Sequences(schema.as_state_machine()):
                """Follows the schema's links: a stored event's case read back (and erased), a
                worklist's first case and next page, a trial's evaluation, series and form."""

                def get_call_kwargs(self, case):
                    return {"base_url": str(client.base_url), "session": session, "headers": dict(client.headers)}

                def validate_response(self, response, case, **kwargs) -> None:
                    nonlocal sent
                    sent += 1
                    check(case, response)

            before, per_sequence = sent, 10
            Sequences.run(settings=settings(max_examples=stateful_steps // per_sequence + 1,
                                            stateful_step_count=per_sequence, deadline=None, database=None,
                                            derandomize=True, suppress_health_check=list(HealthCheck)))
            assert sent - before >= stateful_steps // 2, "the stateful run stopped early"
        assert answered(client) - start >= sent  # the service saw them all
        return sent


@pytest.mark.parametrize("service", APPS)
def test_generated_requests_get_no_5xx_problems_for_4xx_and_refusals_store_nothing(service, database_url, tmp_path,
                                                                                   issuer):
    assert fuzz(service, database_url, tmp_path, issuer, REQUESTS, SPOILT) >= REQUESTS + SPOILT
