"""POST /events and GET /cases over HTTP, on SQLite and on PostgreSQL: what is accepted is
stored once, and every refusal is problem+json naming the field, with nothing stored."""

import pytest

from services.case.api import create_app
from services.case.bootstrap import bootstrap, build_cases
from services.case.domain import Case
from services.case.ingest import Ingest
from shared.events import parse_event
from tests.events import CONTRACT_EXAMPLE, benefit_ended, benefit_started, event, opened

CE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def history(client, case_id):
    """The case's stored events; [] only when the service says it has none (404 case-not-found):
    any other answer fails, so "nothing stored" cannot pass because reading broke."""
    answer = client.get(f"/cases/{case_id}")
    if answer.status_code == 404 and answer.json()["type"].endswith("/case-not-found"):
        return []
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def test_opened_then_the_contract_example_are_stored_and_a_repeat_is_a_duplicate(case_api):
    first = case_api.post("/events", json=opened("case-42"), headers=CE)
    assert first.status_code == 201 and first.json()["status"] == "stored" and first.json()["sequence"] == 1
    second = case_api.post("/events", json=CONTRACT_EXAMPLE)  # application/json is accepted too
    assert second.status_code == 201 and second.json()["sequence"] == 2
    again = case_api.post("/events", json=CONTRACT_EXAMPLE)
    assert again.status_code == 200 and again.json()["status"] == "duplicate" and again.json()["sequence"] == 2
    events = history(case_api, "case-42")
    assert [e["type"] for e in events] == ["dk.frisag.case.opened", "dk.frisag.benefit.started"]
    assert events[0]["data"]["cpr"] == "010190-****"  # never shown in clear
    assert events[1]["id"] == "momentum-000123" and events[1]["time"].startswith("2019-01-02T08:00:00")


def test_a_batch_is_stored_whole_with_positions_in_order(case_api):
    batch = [opened("b1"), benefit_started("b1"), opened("b2", municipality="751"), benefit_ended("b1")]
    answer = case_api.post("/events", json=batch, headers=BATCH)
    assert answer.status_code == 201
    body = answer.json()
    assert [o["sequence"] for o in body] == [1, 2, 1, 3]
    positions = [o["position"] for o in body]
    assert len(set(positions)) == 4
    assert positions[0] < positions[1] < positions[3]  # in order within a case
    assert case_api.post("/events", json=batch, headers=BATCH).status_code == 200


def test_a_batch_with_duplicates_and_new_events_stores_only_the_new(case_api):
    case_api.post("/events", json=(first := opened("d1")), headers=CE)
    answer = case_api.post("/events", json=[first, benefit_started("d1")], headers=BATCH)
    assert answer.status_code == 201
    assert [o["status"] for o in answer.json()] == ["duplicate", "stored"]
    assert len(history(case_api, "d1")) == 2


def assert_problem(answer, status, field=None):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


# Each refusal the contract names: (events posted first, the refused event, status, field)
REFUSALS = {
    "unknown type": ([opened("r")], event("case.exploded", "r", date="2019-01-01"), 422, "type"),
    "missing data field": ([opened("r")], event("benefit.started", "r", date="2019-01-01"), 422, "data.benefit"),
    "malformed date": ([opened("r")], benefit_started("r", date="01-02-2019"), 422, "data.date"),
    "impossible date": ([opened("r")], benefit_started("r", date="2019-02-29"), 422, "data.date"),
    "unknown municipality": ([opened("r")], event("case.moved", "r", municipality="000", date="2019-02-01"), 422, "data.municipality"),
    "cpr format": ([], opened("r", cpr="12345"), 422, "data.cpr"),
    "cpr date": ([], opened("r", cpr="320190-1234"), 422, "data.cpr"),
    "bad case id": ([], opened("r/1"), 422, "subject"),
    "a CPR number in free text": ([opened("r")], event("rehab-team.meeting-held", "r", date="2019-02-01",
                                                       recommendation="borger 271183-4821 anbefales ressourceforløb"),
                                  422, "data.recommendation"),
    "a CPR number as caseworker": ([opened("r")], event("case.assigned", "r", caseworker="2711834821",
                                                        date="2019-02-01"), 422, "data.caseworker"),
    "wrong specversion": ([opened("r")], {**benefit_started("r"), "specversion": "0.3"}, 422, "specversion"),
    "first event not case.opened": ([], benefit_started("r"), 409, "type"),
    "opened twice": ([opened("r")], opened("r"), 409, "type"),
    "after case.closed": ([opened("r"), event("case.closed", "r", date="2019-03-01", reason="job")], event("plan.updated", "r", date="2019-03-02"), 409, "type"),
    "benefit ends before it started": ([opened("r"), benefit_started("r", date="2019-03-01")], benefit_ended("r", date="2019-02-01"), 422, "data.date"),
    "benefit ends twice": ([opened("r"), benefit_started("r"), benefit_ended("r")], benefit_ended("r", date="2019-08-01"), 409, "data.benefit"),
    "benefit ends without starting": ([opened("r")], benefit_ended("r"), 409, "data.benefit"),
    # actions only a trial permits, outside it (422 with the rule)
    "offer duty suspended outside T22": ([opened("r", municipality="751")], event("offer-duty.suspended", "r", date="2019-02-01"), 422, "type"),
    "cadence agreed outside T2/T16/T23": ([opened("r", municipality="751")], event("cadence.agreed", "r", rule="LAB-jobsamtale", interval_days=90, date="2019-02-01"), 422, "data.rule"),
    "IGU over 40 outside T15": ([opened("r", municipality="751", cpr="010170-1234")], event("offer.started", "r", offer="igu", date="2019-02-01"), 422, "data.offer"),
    "wage subsidy before 26 weeks outside T12": ([opened("r", municipality="751"), benefit_started("r", benefit="dagpenge")], event("offer.started", "r", offer="loentilskud", date="2019-03-01"), 422, "data.offer"),
    "psychologist outside T7": ([opened("r", municipality="751")], event("offer.started", "r", offer="psykologbehandling", date="2019-02-01"), 422, "data.offer"),
}
PERMISSION_RULES = {
    "offer duty suspended outside T22": "LAB-tilbud", "cadence agreed outside T2/T16/T23": "LAB-jobsamtale",
    "IGU over 40 outside T15": "IGU-alder", "wage subsidy before 26 weeks outside T12": "LAB-loentilskud-26uger",
    "psychologist outside T7": "LAB-tilbudstyper",
}


@pytest.mark.parametrize("name", REFUSALS)
def test_each_refusal_is_a_problem_and_changes_nothing(case_api, name):
    before, refused_event, status, field = REFUSALS[name]
    for e in before:
        assert case_api.post("/events", json=e, headers=CE).status_code == 201
    stored = history(case_api, "r")
    body = assert_problem(case_api.post("/events", json=refused_event, headers=CE), status, field)
    assert body.get("rule") == PERMISSION_RULES.get(name)
    assert history(case_api, "r") == stored


def test_what_a_trial_permits_is_accepted_inside_it(case_api):
    case_api.post("/events", json=opened("h", municipality="219", date="2018-01-01"), headers=CE)
    case_api.post("/events", json=event("target-group.assessed", "h", trial="T23", in_target_group=True, date="2018-01-10"), headers=CE)
    agreed = event("cadence.agreed", "h", rule="LAB-jobsamtale", interval_days=90, date="2018-02-01")
    assert case_api.post("/events", json=agreed, headers=CE).status_code == 201
    case_api.post("/events", json=opened("j", municipality="849", cpr="010170-1234"), headers=CE)  # Jammerbugt, T15
    assert case_api.post("/events", json=event("offer.started", "j", offer="igu", date="2019-02-01"), headers=CE).status_code == 201


def test_after_a_refused_batch_the_case_goes_on_from_what_was_stored(case_api):
    case_api.post("/events", json=opened("z1"), headers=CE)
    refused = [benefit_started("z1"), benefit_ended("z1", benefit="dagpenge")]
    assert_problem(case_api.post("/events", json=refused, headers=BATCH), 409)
    answer = case_api.post("/events", json=benefit_started("z1", benefit="dagpenge"), headers=CE)
    assert answer.status_code == 201 and answer.json()["sequence"] == 2
    assert [e["type"] for e in history(case_api, "z1")] == ["dk.frisag.case.opened", "dk.frisag.benefit.started"]


def test_a_batch_with_one_bad_event_stores_none_of_it(case_api):
    batch = [opened("x1"), benefit_started("x1"), opened("x2"), benefit_started("x2", benefit="lottery")]
    assert_problem(case_api.post("/events", json=batch, headers=BATCH), 422, "[3].data.benefit")
    assert history(case_api, "x1") == [] and history(case_api, "x2") == []


def test_a_batch_whose_history_conflicts_stores_none_of_it(case_api):
    case_api.post("/events", json=opened("y1"), headers=CE)
    batch = [benefit_started("y1"), benefit_ended("y1", benefit="dagpenge")]
    assert_problem(case_api.post("/events", json=batch, headers=BATCH), 409, "[1].data.benefit")
    assert len(history(case_api, "y1")) == 1


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b"{not json", CE, 400),
        (b'{"specversion": NaN}', CE, 400),
        (b"[]", BATCH, 422),
        (b"{}", BATCH, 422),
        (b"[]", CE, 422),
        (b"<xml/>", {"content-type": "application/xml"}, 415),
    ],
)
def test_malformed_requests_are_problems(case_api, body, headers, status):
    assert_problem(case_api.post("/events", content=body, headers=headers), status)


def test_an_unknown_case_is_a_404_problem(case_api):
    assert_problem(case_api.get("/cases/nobody"), 404, "case_id")


def test_an_events_key_is_one_event_across_all_cases(case_api):
    # (source, id) names one event, whatever its subject
    first = opened("k1", id_="sys-1")
    assert case_api.post("/events", json=first, headers=CE).status_code == 201
    assert case_api.post("/events", json=opened("k2"), headers=CE).status_code == 201
    reused = {
        "on another case": opened("k3", id_="sys-1"),
        "on another existing case": event("plan.updated", "k2", id_="sys-1", date="2019-02-01"),
        "on its own case, saying something else": event("plan.updated", "k1", id_="sys-1", date="2019-02-01"),
        "same type and case, other data": opened("k1", id_="sys-1", municipality="751"),
    }
    for why, document in reused.items():
        body = assert_problem(case_api.post("/events", json=document, headers=CE), 409, "id")
        assert "already used id sys-1 for a different event" in body["errors"][0]["reason"], why
        assert "k1" not in body["detail"], why  # the other event's case is not named
    assert case_api.get("/cases/k3").status_code == 404 and len(history(case_api, "k2")) == 1
    # the same event again, in either spelling of its CPR number, and with another time: a duplicate
    again = {**first, "time": "2019-01-03T09:00:00Z", "data": {**first["data"], "cpr": "0101901234"}}
    answer = case_api.post("/events", json=again, headers=CE)
    assert answer.status_code == 200 and answer.json()["status"] == "duplicate" and answer.json()["sequence"] == 1
    assert len(history(case_api, "k1")) == 1


def test_a_batch_cannot_use_one_key_twice_for_two_events(case_api):
    batch = [opened("m1", id_="sys-2"), opened("m2", id_="sys-2")]
    assert_problem(case_api.post("/events", json=batch, headers=BATCH), 409, "[1].id")
    assert history(case_api, "m1") == [] and history(case_api, "m2") == []


def events_stored(client) -> float:
    line = next(l for l in client.get("/metrics").text.splitlines() if l.startswith("frisag_events_stored_total "))
    return float(line.split()[1])


@pytest.mark.parametrize("case_id", ["030472-3917", "0304723917", "borger:030472-3917"])
def test_a_case_id_that_is_a_cpr_number_is_refused(case_api, case_id):
    before = events_stored(case_api)
    body = assert_problem(case_api.post("/events", json=opened(case_id), headers=CE), 422, "subject")
    assert "looks like a CPR number" in body["errors"][0]["reason"] and "3917" not in body["detail"]
    assert events_stored(case_api) == before


def test_a_store_from_before_keys_were_checked_across_cases_gets_them_on_start(store_settings, serve):
    cases = build_cases(store_settings)
    ingest = Ingest(cases)
    ingest.submit([parse_event(opened("old-1", id_="sys-9"))]).result()
    ingest.close()
    with cases.recorder.datastore.transaction(commit=True) as c:  # as an older version left it
        c.execute("DELETE FROM cases_event_keys")
    cases.close()
    with serve(create_app(lambda: bootstrap(store_settings))) as client:
        assert_problem(client.post("/events", json=opened("old-2", id_="sys-9"), headers=CE), 409, "id")
        assert client.post("/events", json=opened("old-1", id_="sys-9"), headers=CE).status_code == 200


def test_the_case_cache_keeps_open_cases_only(store_settings):
    """Closed cases pile up with their whole history (a jobcenter closes cases every day): the
    cache lets them go, and a repeat of a closed case's event is still a duplicate."""
    cases = build_cases(store_settings)
    ingest = Ingest(cases)
    try:
        for case_id in ("open-1", "closed-1"):
            ingest.submit([parse_event(opened(case_id)), parse_event(benefit_started(case_id))]).result()
        closing = parse_event(event("case.closed", "closed-1", date="2019-05-01", reason="job"))
        ingest.submit([closing]).result()
        cached = set(cases.repository.cache.cache)
        assert Case.create_id("open-1") in cached and Case.create_id("closed-1") not in cached
        [repeat] = ingest.submit([closing]).result()
        assert repeat.duplicate and repeat.sequence == 3
    finally:
        ingest.close()
        cases.close()
