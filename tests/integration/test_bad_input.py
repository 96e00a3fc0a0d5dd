"""Bad input, class by class, against all three services on PostgreSQL (where NUL bytes and
overlong strings reach the database): JSON nested deeper than any event, NUL bytes, dates
outside the accepted range, huge numbers, overlong ids and token subjects. Each is answered
with a 4xx problem naming the field and the reason, promptly, and stores no event (how the
audit log records them: test_audit.py)."""

from collections.abc import Iterator
from json import dumps as _json
from typing import NamedTuple

import httpx
import psycopg
import pytest

from services.case.api import create_app as case_app
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.auth import ADMIN, CASEWORKER, EVALUATOR, INTEGRATION
from shared.dates import RANGE
from tests.conftest import LiveServer
from tests.events import benefit_started, opened
from tests.infra import bearer, fresh_database, is_problem, wait_until

SINGLE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
DEEP = "[" * 1000 + "]" * 1000


class Bad(NamedTuple):
    """A bad request to `service` and how it is refused: `status`, the field named (in `errors`,
    or, for a refused body or token, in the detail) and words of the reason."""

    service: str
    method: str
    path: str
    status: int
    field: str
    params: dict[str, str] = {}
    content: str | None = None
    headers: dict[str, str] = {}
    subject: str = "anna@aalborg"  # the token's `sub`
    municipalities: tuple[str, ...] = ("851",)  # the token's kommunekoder
    reason: str = ""


def too_deep(content: str, headers: dict[str, str]) -> Bad:
    return Bad("case", "POST", "/events", 400, "", content=content, headers=headers, reason="32 levels")


def out_of_range(service: str, path: str, parameter: str, params: dict[str, str]) -> Bad:
    return Bad(service, "GET", path, 422, f"query.{parameter}", params=params, reason=RANGE)


ALL = ("case", "obligations", "reporting")
CLASSES: dict[str, list[Bad]] = {
    "deep nesting": [
        too_deep(DEEP, SINGLE),
        too_deep(DEEP, BATCH),
        too_deep(_json(opened("c-new"))[:-2] + ', "x": ' + DEEP + "}}", SINGLE),
        too_deep('{"a": "]", "b": ' + "[" * 33 + "]" * 33 + "}", SINGLE),  # 34 deep: the "]" closes nothing
    ],
    "NUL bytes": [
        Bad("case", "GET", "/cases/%00", 422, "path.case_id"),
        Bad("case", "GET", "/cases/c-1%00", 422, "path.case_id"),
        Bad("case", "POST", "/cases/%00/erasure", 422, "path.case_id"),
        Bad("obligations", "GET", "/cases/%00/obligations", 422, "path.case_id"),
        Bad("obligations", "GET", "/obligations", 422, "query.caseworker", params={"caseworker": "a\x00b"}),
        Bad("obligations", "GET", "/obligations", 422, "cursor", params={"cursor": "2019-01-01|c-1\x00|1"}),
        Bad("reporting", "GET", "/trials/T11%00/evaluation", 404, "trial"),
        Bad("reporting", "GET", "/trials/T11/evaluation", 422, "comparison", params={"comparison": "751\x00"}),
        *[Bad(s, "GET", "/audit", 422, "query.subject", params={"subject": "a\x00b"}) for s in ALL],
        *[Bad(s, "GET", "/audit", 401, "sub", subject="a\x00b", reason="1 to 256 characters") for s in ALL],
        Bad("obligations", "GET", "/obligations", 422, "municipality", municipalities=("8\x0051",)),
    ],
    "extreme dates": [
        out_of_range("reporting", "/trials/T11/evaluation", "from", {"from": "0001-01-01", "to": "0001-01-02"}),
        out_of_range("reporting", "/trials/T11/evaluation", "to", {"from": "2000-01-01", "to": "9999-12-31"}),
        out_of_range("reporting", "/trials/T11/evaluation", "to", {"to": "3000-01-01"}),
        out_of_range("reporting", "/trials/T11/evaluation", "from", {"from": "1899-12-31"}),
        out_of_range("reporting", "/trials/T11/series", "from",
                     {"metric": "ly_spells_ended", "from": "0001-01-01", "to": "2020-01-01"}),
        out_of_range("reporting", "/trials/T11/form", "to", {"to": "9999-12-31"}),
        # inside the range, but the baseline before the trial (as long as the period) is not
        Bad("reporting", "GET", "/trials/T11/evaluation", 422, "to", reason="baseline",
            params={"from": "1900-01-01", "to": "2999-12-31"}),
        out_of_range("obligations", "/cases/c-1/obligations", "as_of", {"as_of": "0001-01-01"}),
        out_of_range("obligations", "/cases/c-1/obligations", "as_of", {"as_of": "9999-12-31"}),
        out_of_range("obligations", "/obligations", "as_of", {"as_of": "9999-12-31", "status": "due"}),
        out_of_range("obligations", "/obligations", "due_before", {"due_before": "9999-12-31"}),
        out_of_range("obligations", "/obligations", "due_after", {"due_after": "0001-01-01"}),
        Bad("obligations", "GET", "/obligations", 422, "cursor", params={"cursor": "9999-12-31|c-1|1"}),
        *[out_of_range(s, "/audit", "since", {"since": "0001-01-01T00:00:00+14:00"}) for s in ALL],
        *[out_of_range(s, "/audit", "until", {"until": "9999-12-31T23:59:59-14:00"}) for s in ALL],
    ],
    "huge numbers": [
        Bad("obligations", "GET", "/obligations", 422, "cursor",
            params={"cursor": "2019-01-01|x|99999999999999999999999"}),
        Bad("obligations", "GET", "/obligations", 422, "cursor", params={"cursor": "2019-01-01|x|-1"}),
        Bad("obligations", "GET", "/obligations", 422, "query.limit", params={"limit": "9" * 30}),
        *[Bad(s, "GET", "/audit", 422, "query.after", params={"after": "9" * 30}) for s in ALL],
        Bad("case", "POST", "/events", 422, "data.interval_days", headers=SINGLE,
            content=_json(opened("c-new") | {"type": "dk.frisag.cadence.agreed",
                                             "data": {"rule": "LAS-74c", "interval_days": 10**30,
                                                      "date": "2019-01-01"}})),
    ],
    "overlong ids and subjects": [
        Bad("case", "GET", "/cases/" + "a" * 65, 422, "path.case_id"),
        Bad("case", "GET", "/cases/" + "a" * 600, 422, "path.case_id"),
        Bad("case", "POST", "/cases/" + "a" * 65 + "/erasure", 422, "path.case_id"),
        Bad("obligations", "GET", "/cases/" + "a" * 65 + "/obligations", 422, "path.case_id"),
        Bad("obligations", "GET", "/obligations", 422, "query.caseworker", params={"caseworker": "a" * 65}),
        Bad("obligations", "GET", "/obligations", 422, "cursor", params={"cursor": f"2019-01-01|{'a' * 65}|1"}),
        Bad("reporting", "GET", f"/trials/{'T' * 300}/evaluation", 404, "trial"),
        Bad("case", "POST", "/events", 422, "subject", content=_json(opened("a" * 65)), headers=SINGLE),
        *[Bad(s, "GET", "/audit", 401, "sub", subject="a" * 257, reason="1 to 256 characters") for s in ALL],
        *[Bad(s, "GET", "/audit", 422, "query.subject", params={"subject": "a" * 257}) for s in ALL],
    ],
}
TOKENS = {"case": (INTEGRATION, CASEWORKER, ADMIN), "obligations": (CASEWORKER, ADMIN), "reporting": (EVALUATOR, ADMIN)}


@pytest.fixture(scope="module")
def services(pg_admin, issuer, tmp_path_factory) -> Iterator[tuple[dict[str, httpx.Client], str]]:
    """The three services on one PostgreSQL database, holding case c-1 (Aalborg, ledighedsydelse)."""
    with fresh_database(pg_admin) as url:
        common = {"database_url": url, "kafka_bootstrap_servers": None, "data_dir": tmp_path_factory.mktemp("data")}
        admin = issuer.token(*TOKENS["case"], municipalities=["851"], subject="root@frisag")
        with LiveServer(case_app(settings=CaseSettings(**common)), admin) as case, \
                LiveServer(obligations_app(settings=ObligationsSettings(**common, refold_workers=0)), admin) as obl, \
                LiveServer(reporting_app(settings=ReportingSettings(**common, refold_workers=0)), admin) as rep:
            for document in (opened("c-1"), benefit_started("c-1")):
                assert case.post("/events", json=document, headers=SINGLE).status_code == 201
            assert wait_until(lambda: obl.get("/status").json()["cases"] == 1, timeout=30)
            assert wait_until(lambda: rep.get("/status").json()["cases"] == 1, timeout=30)
            yield {"case": case, "obligations": obl, "reporting": rep}, url


def label(bad: Bad) -> str:
    return f"{bad.service} {bad.method} {bad.path[:40]} {bad.params or ''} {(bad.content or '')[:40]}"


def stored_events(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(*) FROM cases_events").fetchone()[0]


@pytest.mark.parametrize("kind", CLASSES)
def test_bad_input_is_refused_with_a_reason_promptly_and_stores_nothing(kind, services, issuer):
    clients, url = services
    before = stored_events(url)
    for bad in CLASSES[kind]:
        token = issuer.token(*TOKENS[bad.service], municipalities=bad.municipalities, subject=bad.subject)
        answer = clients[bad.service].request(bad.method, bad.path, params=bad.params, content=bad.content,
                                              headers={**bad.headers, **bearer(token)}, timeout=10)
        assert answer.status_code == bad.status, f"{label(bad)} -> {answer.status_code}: {answer.text[:300]}"
        problem = is_problem(answer, bad.status)
        named = [e["field"] for e in problem.get("errors", [])]
        assert bad.field in named or (bad.status in (400, 401) and bad.field in problem["detail"]), \
            f"{label(bad)}: {problem}"
        assert bad.reason in answer.text, f"{label(bad)}: {problem}"
    assert stored_events(url) == before
    for client in clients.values():  # and every service goes on answering
        assert client.get("/healthz").status_code == 200
