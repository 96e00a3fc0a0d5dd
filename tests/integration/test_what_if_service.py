"""`POST /what-if` and `GET /what-if/{id}` of the reporting service over HTTP, its store in
PostgreSQL: six citizens on ledighedsydelse in Aalborg (T11) and six in Aarhus, and the
scenario "T11 never existed", against a table worked out by hand."""

import csv
import io
import time

import pytest
from sqlalchemy import func, select

from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from services.reporting.store import what_if
from shared.auth import CASEWORKER, EVALUATOR
from shared.stream import Delivery
from tests.integration.test_reporting_service import ly_citizens
from tests.unit.test_evaluation import stream_events

WITHOUT_T11 = {"scenario": {"title": "Uden T11", "without_trials": ["T11"]}}


@pytest.fixture
def reporting(database_url, tmp_path, serve, request):
    """The reporting service over citizens on LY since 2017 (`ly_citizens`: every other one until
    2020-06-30): twelve in Aalborg, six in Aarhus, two in Jammerbugt; stored through its own store."""
    wait = getattr(request, "param", 2.5)
    service = reporting_bootstrap(ReportingSettings(database_url=database_url, kafka_bootstrap_servers=None,
                                                    data_dir=tmp_path, run_consumer=False, refold_workers=0))
    documents = ly_citizens("aal", "851", 12) + ly_citizens("aar", "751", 6) + ly_citizens("jam", "849", 2)
    histories: dict[str, list[dict]] = {}
    for d in documents:
        histories.setdefault(d["subject"], []).append(d)
    for k, history in enumerate(histories.values()):  # a citizen each (ly_citizens numbers them per municipality)
        history[0]["data"]["cpr"] = f"0101{60 + k:02d}-{2000 + k}"
    events = [e for h in histories.values() for e in stream_events(h)]
    service.projection.store([Delivery(0, i, e) for i, e in enumerate(events)])
    service.projection.refresh()
    with serve(reporting_app(lambda: service, ReportingSettings(what_if_wait=wait))) as server:
        yield server, service


def jobs(service) -> int:
    with service.projection.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(what_if)).scalar_one()


def test_t11_never_existed_gives_back_its_waived_reassessments(reporting):
    server, service = reporting
    before = service.projection.snapshot()
    answered = server.post("/what-if", json=WITHOUT_T11)
    assert answered.status_code == 201, answered.text
    job = answered.json()
    assert answered.headers["location"] == f"/what-if/{job['id']}" and job["status"] == "done"
    # the request as read, every field named: to post again after new events
    assert job["request"] == {"scenario": {"title": "Uden T11", "trials": [], "without_trials": ["T11"], "rules": []},
                              "from": None, "to": None}
    assert job["requested_at"].endswith("+00:00") and job["requested_by"] == "test-everything"
    result = job["result"]
    # whole years from T11's start; not Aarhus
    assert (result["from"], result["to"], result["cases_folded"]) == ("2018-01-01", "2022-12-31", 14)
    # by hand: on LY from 2017-01-01, re-assessments due 2018-01-01 (before T11: required either way),
    # then 2019-01-01, 2020-01-01, 2020-12-31, 2021-12-31 and 2022-12-31 for the six still on it; the
    # six whose LY ended 2020-06-30 only 2019 and 2020: 6 x 5 + 6 x 2 = 42 waived by T11, required
    # without it
    places = {m["municipality"]: m for m in result["municipalities"]}
    assert sorted(places) == ["787", "840", "849", "851"]  # T11's four, those without cases at 0
    assert all(places[m]["obligations_freed"] == 0 and places[m]["citizens_affected"] == 0 for m in ("787", "840"))
    aalborg = places["851"]
    assert (aalborg["municipality"], aalborg["name"]) == ("851", "Aalborg")
    assert {k: aalborg[k] for k in ("required_today", "required_scenario", "waived_today", "waived_scenario",
                                    "obligations_freed", "hours_freed", "citizens_affected", "suppressed")} == {
        "required_today": 12, "required_scenario": 54, "waived_today": 42, "waived_scenario": 0,
        "obligations_freed": -42, "hours_freed": -84.0, "citizens_affected": 12, "suppressed": False}
    months = {m["month"]: m for m in aalborg["months"]}
    assert len(months) == 60 and not any(m["projected"] or m["suppressed"] for m in months.values())
    assert {m: c["obligations_freed"] for m, c in months.items() if c["obligations_freed"]} == {
        "2019-01": -12, "2020-01": -12, "2020-12": -6, "2021-12": -6, "2022-12": -6}
    assert [(y["year"], y["obligations_freed"]) for y in aalborg["years"]] == [
        ("2018", 0), ("2019", -12), ("2020", -18), ("2021", -6), ("2022", -6)]
    # two citizens in Jammerbugt: hidden, and so is every sum over the municipalities with it (a
    # scenario without Jammerbugt would give the total less Jammerbugt)
    assert places["849"]["suppressed"] and places["849"]["obligations_freed"] is None
    assert result["total"]["suppressed"] and result["total"]["rules"][0]["suppressed"]
    assert result["minutes_per_obligation"] == {"LAS-74c": 120}
    assert service.projection.snapshot() == before  # nothing stored changed

    again = server.get(f"/what-if/{job['id']}")
    assert again.status_code == 200 and again.json()["result"] == result
    exported = server.get(f"/what-if/{job['id']}", headers={"accept": "text/csv"})
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(exported.text.removeprefix("\ufeff")), delimiter=";"))
    total = rows[-1]
    assert (total["kommunenavn"], total["sparede pligter"], total["undertrykt"]) == ("I alt", "", "ja")
    (whole,) = [r for r in rows if r["kommune"] == "851" and not (r["måned"] or r["år"] or r["regel"])]
    assert (whole["kommunenavn"], whole["sparede pligter"], whole["frigjorte timer"], whole["undertrykt"]) == (
        "Aalborg", "-42", "-84", "nej")


@pytest.mark.parametrize("reporting", [0.0], indirect=True)
def test_a_scenario_not_answered_at_once_is_a_job_to_ask_again(reporting):
    server, _ = reporting
    started = server.post("/what-if", json=WITHOUT_T11)
    # 202 while it runs; 201 only if it was done before the answer was made
    assert started.status_code == (202 if started.json()["status"] == "running" else 201)
    location = started.headers["location"]
    deadline, seen = time.monotonic() + 30, 0.0
    while (job := server.get(location).json())["status"] == "running":
        assert seen <= job["progress"] <= 1 and time.monotonic() < deadline  # the share of cases folded, growing
        seen = job["progress"]
        time.sleep(0.05)
    aalborg = next(m for m in job["result"]["municipalities"] if m["municipality"] == "851")
    assert (job["status"], job["progress"], aalborg["obligations_freed"]) == ("done", 1.0, -42)


@pytest.mark.parametrize(("body", "field"), [
    ({"scenario": {"title": "x", "without_trials": ["T99"]}}, "scenario.without_trials[0]"),
    ({"scenario": {"title": "x", "trials": [{"id": "T11", "title": "x", "seeds": [], "municipalities": ["999"],
                                              "period": {"start": "2019-01-01"}, "target_group": "all"}]}},
     "body.scenario.trials.0.municipalities"),
    ({"scenario": {"title": "x"}, "from": "2023-01-01", "to": "2022-12-31"}, "to"),
    ({"scenario": {"title": "x"}, "to": "2040-01-01"}, "to"),
    ({"scenario": {"title": "x"}, "from": "1900-01-01", "to": "1920-01-01"}, "from"),  # 241 months
    ({"scenario": {"title": ""}}, "body.scenario.title"),
    ({"scenario": {"title": "x", "unknown": 1}}, "body.scenario.unknown"),
])
def test_an_invalid_scenario_is_refused_naming_the_field_and_nothing_is_stored(reporting, body, field):
    server, service = reporting
    refused = server.post("/what-if", json=body)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in refused.json()["errors"]]
    assert jobs(service) == 0


def test_only_evaluators_and_admins_ask_and_an_unknown_job_is_not_found(reporting, issuer):
    server, service = reporting
    caseworker = {"authorization": f"Bearer {issuer.token(CASEWORKER, municipalities=['851'])}"}
    assert server.post("/what-if", json=WITHOUT_T11, headers=caseworker).status_code == 403
    assert jobs(service) == 0
    evaluator = {"authorization": f"Bearer {issuer.token(EVALUATOR)}"}
    job = server.post("/what-if", json=WITHOUT_T11, headers=evaluator).json()
    assert server.get(f"/what-if/{job['id']}", headers=caseworker).status_code == 403
    for unknown in ("no-such-job", "%00", "00000000-0000-0000-0000-000000000000"):
        missing = server.get(f"/what-if/{unknown}", headers=evaluator)
        assert missing.status_code == 404 and missing.json()["errors"] == [{"field": "job", "reason": "not asked here"}]


def test_twenty_years_of_months_are_answered(reporting):
    server, _ = reporting
    answered = server.post("/what-if", json={**WITHOUT_T11, "from": "1900-01-01", "to": "1919-12-31"})  # 240 months
    assert answered.status_code == 201, answered.text
    assert {len(m["months"]) for m in answered.json()["result"]["municipalities"]} == {240}


@pytest.mark.parametrize(("content", "content_type", "status", "field"), [
    (b'{"scenario": {"title": "x"}, "scenario": {"title": "y"}}', "application/json", 400, ""),  # which one?
    (b'{"scenario": {"title": NaN}}', "application/json", 400, ""),
    (b'{"scenario": {"title": "x"}}', "text/plain", 415, "Content-Type"),
])
def test_a_body_that_is_not_strict_json_is_refused_as_an_event_would_be(reporting, content, content_type, status, field):
    server, service = reporting
    refused = server.post("/what-if", content=content, headers={"content-type": content_type})
    assert refused.status_code == status and [e["field"] for e in refused.json()["errors"]] == [field]
    assert jobs(service) == 0
