"""Property-based fuzzing of each service's OpenAPI schema (schemathesis) against the running
service on PostgreSQL: requests that fit the schema and requests that break it, with a token
that may do everything. No answer is a 5xx, every 4xx is problem+json, and a refused request
stores nothing. Each service answers at least 1,000 generated requests."""

from collections.abc import Callable

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.case.api import create_app as case_app
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.problems import PROBLEM_JSON

REQUESTS = 1000  # at least, per service
APPS: dict[str, tuple[Callable, type]] = {
    "case": (case_app, CaseSettings),
    "obligations": (obligations_app, ObligationsSettings),
    "reporting": (reporting_app, ReportingSettings),
}


def answered(client: httpx.Client) -> int:
    """Requests the service has answered, by its own count (`/metrics`)."""
    lines = client.get("/metrics").text.splitlines()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in lines if line.startswith("frisag_http_requests_total{"))


def stored(client: httpx.Client) -> float:
    """What the service holds: the case store's last position, or the projection's cases."""
    text = client.get("/metrics").text
    for name in ("frisag_events_stored ", "frisag_projection_cases "):
        for line in text.splitlines():
            if line.startswith(name):
                return float(line.split()[1])
    raise AssertionError("no store size in /metrics")


@pytest.mark.parametrize("service", APPS)
def test_generated_requests_get_no_5xx_problems_for_4xx_and_refusals_store_nothing(service, database_url, tmp_path,
                                                                                   serve):
    create_app, settings_type = APPS[service]
    app_settings = settings_type(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    with serve(create_app(settings=app_settings)) as client:
        schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        cases = st.one_of([op.as_strategy(mode) for op in operations
                           for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)])
        per_example = REQUESTS // 4  # hypothesis stops early when it has seen every small input

        sent, held = 0, [stored(client)]

        @settings(max_examples=REQUESTS + per_example, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def requests_hold_up(case) -> None:
            nonlocal sent
            answer = case.call(base_url=str(client.base_url), headers=dict(client.headers))
            sent += 1
            where = f"{case.method} {case.formatted_path} -> {answer.status_code}: {answer.text[:300]}"
            assert answer.status_code < 500, where
            now = stored(client)
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == [PROBLEM_JSON], where
                assert "errors" in answer.json() or answer.json()["detail"], where
                assert now == held[-1], f"refused, yet stored: {where}"
            held.append(now)

        start = answered(client)
        requests_hold_up()
        assert sent >= REQUESTS
        assert answered(client) - start >= 2 * sent  # the service saw them all (and the /metrics asks)
