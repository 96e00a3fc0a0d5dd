"""The obligations service over HTTP, fed by the case service through the embedded stream and
through the real broker: waived obligations with their trial and reasons, worklists,
catalog changes."""

import shutil
from datetime import date, timedelta
import time

import httpx
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from shared.catalog import CATALOG_DIR
from tests.events import benefit_started, event, opened
from tests.infra import bearer

CE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def settings_for(request, tmp_path, mode: str) -> dict:
    if mode == "embedded":
        return {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    return {"database_url": request.getfixturevalue("database_url"),
            "kafka_bootstrap_servers": request.getfixturevalue("kafka"),
            "kafka_topic": request.getfixturevalue("topic"), "kafka_topic_partitions": 3,
            "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}


@pytest.fixture
def services(request, tmp_path, serve):
    """(case client, obligations client, catalog dir) for one mode, both served over HTTP."""
    mode = getattr(request, "param", "embedded")
    common = settings_for(request, tmp_path, mode)
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
            serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common, catalog_dir=catalog_dir)))) as obligations:
        yield case, obligations, catalog_dir


def wait_for(probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def obligations_of(client: httpx.Client, case_id: str, as_of: str, rule: str | None = None) -> list[dict]:
    answer = client.get(f"/cases/{case_id}/obligations", params={"as_of": as_of})
    if answer.status_code != 200:
        return []
    return [o for o in answer.json()["obligations"] if rule is None or o["rule"] == rule]


def post(client, *documents):
    answer = client.post("/events", json=list(documents), headers=BATCH)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_a_waived_obligation_reaches_the_caseworker_with_its_trial_and_reasons(services):
    case, obligations, _ = services
    post(case, opened("ly-aalborg", municipality="851"), benefit_started("ly-aalborg", date="2019-01-01"),
         opened("ly-aarhus", municipality="751"), benefit_started("ly-aarhus", date="2019-01-01"))
    waived, *_ = wait_for(lambda: obligations_of(obligations, "ly-aalborg", "2020-02-01", "LAS-74c"))
    assert waived["status"] == "waived" and waived["due"] == "2020-01-01"
    assert waived["exemption"]["trial"] == "T11" and waived["exemption"]["effect"] == "waive"
    assert waived["legal_reference"] == "LAS § 74 c"
    assert "benefit.started ledighedsydelse 2019-01-01" in waived["because"]
    assert any(b.startswith("T11 waives LAS-74c") for b in waived["because"])
    required, *_ = wait_for(lambda: obligations_of(obligations, "ly-aarhus", "2020-02-01", "LAS-74c"))
    assert required["status"] == "due" and required["exemption"] is None

    post(case, event("assessment.completed", "ly-aarhus", kind="revurdering-ledighedsydelse", date="2020-02-15"))
    done = wait_for(lambda: [o for o in obligations_of(obligations, "ly-aarhus", "2020-03-01", "LAS-74c") if o["status"] == "done"])
    assert done and done[0]["done_on"] == "2020-02-15"

    waived_in_aalborg = lambda: [(o["case_id"], o["rule"]) for o in obligations.get(
        "/obligations", params={"municipality": "851", "status": "waived", "as_of": "2020-02-01"}).json()["items"]]
    # as on the case page: the waived one due 2020-01-01, and the next (2021-01-01)
    assert wait_for(waived_in_aalborg) == [("ly-aalborg", "LAS-74c")] * 2


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_worklists_follow_a_move_and_page(services):
    case, obligations, _ = services
    post(case, opened("mover", municipality="851", date="2019-01-01"), benefit_started("mover", benefit="dagpenge"),
         event("case.moved", "mover", municipality="751", date="2019-04-01"),
         event("case.assigned", "mover", caseworker="cw-7", date="2019-04-01"))
    wait_for(lambda: obligations_of(obligations, "mover", "2019-03-01"))
    wait_for(lambda: obligations.get("/obligations", params={"municipality": "751", "as_of": "2019-05-01"}).json()["items"])

    def cases_of(municipality, as_of, **extra):
        answer = obligations.get("/obligations", params={"municipality": municipality, "as_of": as_of, **extra})
        assert answer.status_code == 200, answer.text
        return {o["case_id"] for o in answer.json()["items"]}

    assert cases_of("851", "2019-03-01") == {"mover"} and cases_of("751", "2019-03-01") == set()
    assert cases_of("751", "2019-05-01") == {"mover"} and cases_of("851", "2019-05-01") == set()
    assert cases_of("751", "2019-05-01", caseworker="cw-7") == {"mover"}
    overdue = obligations.get("/obligations", params={"municipality": "751", "status": "overdue", "as_of": "2019-05-01"}).json()
    assert {o["rule"] for o in overdue["items"]} == {"LAB-jobsamtale"}  # monthly in months 1-6, none held
    first = obligations.get("/obligations", params={"municipality": "751", "as_of": "2019-05-01", "limit": 2}).json()
    second = obligations.get("/obligations", params={"municipality": "751", "as_of": "2019-05-01", "limit": 2,
                                                     "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 2 and second["items"]
    assert first["items"][-1]["due"] <= second["items"][0]["due"]
    assert not {o["cursor"] for o in first["items"]} & {o["cursor"] for o in second["items"]}


def test_bad_queries_are_problems(services):
    _, obligations, _ = services
    for params in ({"status": "lost"}, {"as_of": "yesterday"}, {"limit": 0}, {"cursor": "x"}, {"municipality": "8510"}):
        answer = obligations.get("/obligations", params=params)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", params
    assert obligations.get("/cases/nobody/obligations").status_code == 404


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_changing_a_trial_in_the_catalog_re_evaluates_the_cases_it_touches(services):
    case, obligations, catalog_dir = services
    t11 = catalog_dir / "trials" / "T11.yaml"
    t11.write_text(t11.read_text().replace("end: '2022-12-31'", "end: '2020-12-31'"))
    assert obligations.post("/catalog/reload").status_code == 202
    post(case, opened("aal", municipality="851"), benefit_started("aal", date="2019-01-01"),
         opened("aar", municipality="751"), benefit_started("aar", date="2019-01-01"))

    def statuses(case_id):
        return [(o["due"], o["status"]) for o in obligations_of(obligations, case_id, "2021-02-01", "LAS-74c")]

    assert wait_for(lambda: statuses("aal")) == [("2020-01-01", "waived"), ("2020-12-31", "waived"), ("2021-01-01", "due"),
                                                 ("2022-01-01", "upcoming")]
    # the trial is extended, and Aarhus joins it
    t11.write_text(t11.read_text().replace("end: '2020-12-31'", "end: '2022-12-31'").replace("- '840'", "- '840'\n- '751'"))
    assert obligations.post("/catalog/reload").json()["cases_to_reevaluate"] == 2
    assert statuses("aal") == [("2020-01-01", "waived"), ("2020-12-31", "waived"), ("2021-12-31", "waived")]
    assert statuses("aar")[0] == ("2020-01-01", "waived")
    worklist = lambda: obligations.get("/obligations", params={"municipality": "751", "status": "waived", "as_of": "2021-02-01"}).json()["items"]
    assert wait_for(lambda: {o["case_id"] for o in worklist()} == {"aar"})
    assert wait_for(lambda: obligations.get("/status").json()["stale"] == 0)


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_a_case_the_fold_fails_for_stops_no_other_and_is_derived_again_after_a_fix(services, issuer):
    """Issue 13: a catalog value the fold cannot use fails every ledighedsydelse case; the cases
    around it are projected, the service stays ready, operators see the case, its caseworker a
    problem, and fixing the catalog derives it."""
    case, obligations, catalog_dir = services
    las = catalog_dir / "rules" / "LAS-74c.yaml"
    good_rule = las.read_text()
    las.write_text(good_rule.replace("{value: 12,", "{value: twelve,"))
    assert obligations.post("/catalog/reload").status_code == 202
    post(case, opened("good-1", municipality="751"), benefit_started("good-1", benefit="dagpenge"),
         opened("poison", municipality="751"), benefit_started("poison", benefit="ledighedsydelse"),
         opened("good-2", municipality="751"), benefit_started("good-2", benefit="dagpenge"))
    post(case, opened("good-3", municipality="751"), benefit_started("good-3", benefit="dagpenge"))

    assert wait_for(lambda: obligations_of(obligations, "good-3", "2019-03-01"))
    assert obligations_of(obligations, "good-1", "2019-03-01") and obligations_of(obligations, "good-2", "2019-03-01")
    assert obligations.get("/readyz").status_code == 200
    answer = obligations.get("/cases/poison/obligations", params={"as_of": "2020-02-01"})
    assert answer.status_code == 409 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "https://frisag.dk/problems/case-not-derived" and "TypeError" in problem["detail"]
    aalborg = httpx.Client(base_url=obligations.base_url, headers=bearer(issuer.token("caseworker", municipalities=["851"])))
    assert aalborg.get("/cases/poison/obligations").status_code == 403  # not the case's municipality
    status = obligations.get("/status").json()
    assert status["failed"] == 1 and [f["case_id"] for f in status["failed_cases"]] == ["poison"]
    assert status["failed_cases"][0]["error"].startswith("TypeError")
    assert "frisag_projection_failed_cases 1.0" in obligations.get("/metrics").text.splitlines()
    worklist = obligations.get("/obligations", params={"municipality": "751", "as_of": "2019-03-01"}).json()
    assert worklist["cases_not_derived"] == ["poison"] and {o["case_id"] for o in worklist["items"]} == {"good-1", "good-2", "good-3"}
    assert aalborg.get("/status").json().keys() == {"cases", "stale", "failed", "obligations"}  # ids for admins only

    las.write_text(good_rule)
    assert obligations.post("/catalog/reload").status_code == 202
    assert wait_for(lambda: obligations_of(obligations, "poison", "2020-02-01", "LAS-74c"))
    assert wait_for(lambda: obligations.get("/status").json()["failed"] == 0)
    assert "frisag_projection_failed_cases 0.0" in obligations.get("/metrics").text.splitlines()


def test_the_triggers_of_issue_13_are_refused_or_handled(services):
    """A back-dated ledighedsydelse from 2012 is ordinary data: stored and folded, LAS § 74 c
    counted from 2013-01-01. A date the fold cannot reach past is refused at ingest."""
    case, obligations, _ = services
    post(case, opened("ly-2012", municipality="751", date="2012-06-01"), benefit_started("ly-2012", date="2012-06-01"))
    for day in ("9998-11-27", "3000-01-01", "1899-12-31"):
        answer = case.post("/events", json=[event("plan.updated", "ly-2012", date=day)], headers=BATCH)
        assert answer.status_code == 422 and [e["field"] for e in answer.json()["errors"]] == ["[0].data.date"], answer.text
    post(case, opened("after", municipality="751"), benefit_started("after", benefit="dagpenge"))
    assert wait_for(lambda: obligations_of(obligations, "after", "2019-03-01"))
    [first, *_] = obligations_of(obligations, "ly-2012", "2014-01-10", "LAS-74c")
    assert first["due"] == "2014-01-01" and first["status"] == "due"
    assert "benefit.started ledighedsydelse 2012-06-01; LAS-74c in force from 2013-01-01: counted from then" in first["because"]
    assert obligations.get("/status").json()["failed"] == 0


def worklist_of(client: httpx.Client, municipality: str, as_of: str, **params) -> dict:
    answer = client.get("/obligations", params={"municipality": municipality, "as_of": as_of, "limit": 500, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_the_case_page_and_the_worklist_agree_before_and_after_a_trials_end(services):
    """Issue 14: T22's suspension and T2's agreed cadence end with the trial (or a move); the
    worklist shows exactly what the case page shows, with the same statuses."""
    case, obligations, catalog_dir = services
    t2 = catalog_dir / "trials" / "T2.yaml"
    t2.write_text(t2.read_text().replace("end: null", "end: '2018-08-31'"))
    assert obligations.post("/catalog/reload").status_code == 202
    post(case,  # T22 in Hillerød: suspended, never resumed
         opened("t22", municipality="219", date="2018-01-01"), benefit_started("t22", benefit="kontanthjaelp", date="2018-01-01"),
         event("target-group.assessed", "t22", trial="T22", in_target_group=True, date="2018-02-01"),
         event("offer-duty.suspended", "t22", date="2018-03-01"),
         # T2 in Aalborg: a 180-day cadence kept, T2 ending on 2018-08-31
         opened("t2", municipality="851", date="2018-01-01"), benefit_started("t2", benefit="dagpenge", date="2018-01-01"),
         event("cadence.agreed", "t2", rule="LAB-jobsamtale", interval_days=180, date="2018-01-10"),
         event("conversation.held", "t2", kind="jobsamtale", date="2018-07-09"),
         # T2 in Aalborg, then a move to Viborg (no trial)
         opened("t2-moved", municipality="851", date="2018-01-01"), benefit_started("t2-moved", benefit="dagpenge", date="2018-01-01"),
         event("cadence.agreed", "t2-moved", rule="LAB-jobsamtale", interval_days=180, date="2018-01-10"),
         event("case.moved", "t2-moved", municipality="791", date="2018-02-15"),
         # ledighedsydelse in Aarhus: the re-assessment falls due within 14 days of the as-of date
         opened("ly", municipality="751", date="2019-01-01"), benefit_started("ly", date="2019-01-01"))
    wait_for(lambda: obligations_of(obligations, "ly", "2019-12-20"))
    wait_for(lambda: obligations.get("/status").json()["stale"] == 0)

    def case_page(case_id, as_of):
        return [(o["rule"], o["due"], o["status"], (o["exemption"] or {}).get("trial")) for o in obligations_of(obligations, case_id, as_of)]

    def worklist(case_id, municipality, as_of):
        return [(o["rule"], o["due"], o["status"], (o["exemption"] or {}).get("trial"))
                for o in worklist_of(obligations, municipality, as_of, sort="due")["items"] if o["case_id"] == case_id]

    checks = [("t22", "219", "2019-06-01"), ("t22", "219", "2020-12-01"), ("t2", "851", "2018-05-15"),
              ("t2", "851", "2018-10-01"), ("t2-moved", "791", "2018-05-15"), ("ly", "751", "2019-12-20")]
    for case_id, municipality, as_of in checks:
        assert wait_for(lambda: worklist(case_id, municipality, as_of) == case_page(case_id, as_of)), (case_id, as_of)
    assert ("LAB-tilbud", "2020-07-02", "overdue", None) in case_page("t22", "2020-12-01")
    assert ("LAB-tilbud", "2018-04-01", "suspended", "T22") in case_page("t22", "2019-06-01")
    assert ("LAB-jobsamtale", "2018-07-09", "upcoming", "T2") in case_page("t2", "2018-05-15")
    assert ("LAB-jobsamtale", "2018-10-09", "due", None) in case_page("t2", "2018-10-01")  # 3 months after, T2 over
    assert ("LAB-jobsamtale", "2018-03-01", "overdue", None) in case_page("t2-moved", "2018-05-15")
    assert case_page("ly", "2019-12-20") == [("LAS-74c", "2020-01-01", "due", None)]


def test_the_worklist_filters_by_several_statuses_counts_sorts_and_refuses_beyond_its_horizon(services):
    case, obligations, _ = services
    post(case, opened("ly", municipality="751", date="2019-01-01"), benefit_started("ly", date="2019-01-01"),
         opened("dp", municipality="751", date="2019-10-01"), benefit_started("dp", benefit="dagpenge", date="2019-10-01"))
    wait_for(lambda: worklist_of(obligations, "751", "2019-12-20")["items"])
    both = worklist_of(obligations, "751", "2019-12-20", status=["due", "overdue"])
    # the dagpenge talks of 1 Nov and 1 Dec (the next is under the 2020 rules, 14 Feb); LAS § 74 c on 1 Jan
    assert [(o["case_id"], o["due"], o["status"]) for o in both["items"]] == [
        ("dp", "2019-11-01", "overdue"), ("dp", "2019-12-01", "overdue"), ("ly", "2020-01-01", "due")]
    assert both["total"] == len(both["items"]) == 3
    dues = [o["due"] for o in both["items"]]
    assert dues == sorted(dues)  # open tasks: the earliest due first
    page = worklist_of(obligations, "751", "2019-12-20", status=["due", "overdue"], limit=1)
    assert page["total"] == 3 and len(page["items"]) == 1 and page["next_cursor"]
    latest_first = worklist_of(obligations, "751", "2019-12-20", sort="-due")["items"]
    assert [o["due"] for o in latest_first] == sorted((o["due"] for o in latest_first), reverse=True)
    upcoming = worklist_of(obligations, "751", "2019-12-01", status="upcoming")["items"]
    assert {(o["case_id"], o["rule"]) for o in upcoming} >= {("ly", "LAS-74c")}
    for params in ({"as_of": (date.today() + timedelta(days=401)).isoformat()},
                   {"as_of": "2019-12-20", "due_before": (date.today() + timedelta(days=401)).isoformat()}):
        answer = obligations.get("/obligations", params={"municipality": "751", **params})
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", params
        assert "stored" in answer.text
