"""POST /events and GET /cases over HTTP, on SQLite and on PostgreSQL: what is accepted is
stored once, and every refusal is problem+json naming the field, with nothing stored."""

import pytest

from tests.events import CONTRACT_EXAMPLE, benefit_ended, benefit_started, event, opened

CE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def history(client, case_id):
    answer = client.get(f"/cases/{case_id}")
    return answer.json()["events"] if answer.status_code == 200 else []


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
