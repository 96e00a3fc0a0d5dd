"""Who may do what, over HTTP with real tokens: bearer JWTs checked for signature, expiry,
issuer and audience; roles (integration, caseworker, evaluator, admin); municipality
boundaries, including a case that moves from Aalborg to Aarhus."""

from collections.abc import Iterator

import httpx
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from shared.auth import ADMIN, CASEWORKER, EVALUATOR, INTEGRATION
from tests.events import benefit_started, event, opened
from tests.infra import Issuer, bearer, is_problem, wait_until

AALBORG, AARHUS = "851", "751"
SINGLE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
def services(tmp_path, serve) -> Iterator[tuple[httpx.Client, httpx.Client, httpx.Client]]:
    """The three services, embedded, whose clients send no token of their own."""
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common))), token=None) as case, \
            serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common))), token=None) as obl, \
            serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common))), token=None) as rep:
        yield case, obl, rep


def as_(issuer: Issuer, role: str, *municipalities: str) -> dict[str, str]:
    return bearer(issuer.token(role, municipalities=municipalities, subject=f"{role}-{'-'.join(municipalities)}"))


def post(case: httpx.Client, headers: dict, *documents: dict) -> httpx.Response:
    if len(documents) == 1:
        return case.post("/events", json=documents[0], headers={**SINGLE, **headers})
    return case.post("/events", json=list(documents), headers={**BATCH, **headers})


def wait_for_case(obligations: httpx.Client, headers: dict, case_id: str, as_of: str) -> None:
    assert wait_until(lambda: obligations.get(f"/cases/{case_id}/obligations", params={"as_of": as_of},
                                              headers=headers).status_code != 404, timeout=30)


def test_without_a_valid_token_every_data_endpoint_answers_401(services, issuer, tmp_path):
    case, obligations, reporting = services
    forger = Issuer(tmp_path / "forger")  # the same key id, another key
    everything = [AALBORG, AARHUS]
    invalid = {
        "none": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": bearer("not-a-jwt"),
        "forged": bearer(forger.token(ADMIN, INTEGRATION, CASEWORKER, EVALUATOR, municipalities=everything)),
        "expired": bearer(issuer.token(ADMIN, INTEGRATION, CASEWORKER, EVALUATOR, municipalities=everything,
                                       lifetime=-120)),
        "wrong audience": bearer(issuer.token(ADMIN, INTEGRATION, CASEWORKER, EVALUATOR, municipalities=everything,
                                              aud="another-system")),
        "wrong issuer": bearer(issuer.token(ADMIN, INTEGRATION, CASEWORKER, EVALUATOR, municipalities=everything,
                                            iss="https://elsewhere.example")),
    }
    requests = [(case, "POST", "/events"), (case, "GET", "/cases/c-1"),
                (obligations, "GET", "/cases/c-1/obligations"), (obligations, "GET", "/obligations"),
                (obligations, "POST", "/catalog/reload"), (obligations, "GET", "/status"),
                (reporting, "GET", "/trials"), (reporting, "GET", "/trials/T11/evaluation")]
    for why, headers in invalid.items():
        for client, method, path in requests:
            answer = client.request(method, path, headers=headers, json=opened("c-1"))
            problem = is_problem(answer, 401)
            assert answer.headers["www-authenticate"].startswith("Bearer"), (why, path)
            assert problem["type"].endswith("/unauthenticated"), (why, path)
    # nothing was stored by any of them
    assert post(case, as_(issuer, INTEGRATION, AALBORG), opened("c-1")).json()["status"] == "stored"
    for client in (case, obligations, reporting):  # health and metrics stay open to the platform
        assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_each_role_reaches_its_own_endpoints_only(services, issuer):
    case, obligations, reporting = services
    integration, caseworker = as_(issuer, INTEGRATION, AALBORG), as_(issuer, CASEWORKER, AALBORG)
    evaluator, admin = as_(issuer, EVALUATOR), as_(issuer, ADMIN)
    for headers in (caseworker, evaluator, admin):
        assert is_problem(post(case, headers, opened("c-1")), 403)["type"].endswith("/forbidden")
    assert post(case, integration, opened("c-1"), benefit_started("c-1")).status_code == 201
    wait_for_case(obligations, caseworker, "c-1", "2019-06-01")

    assert case.get("/cases/c-1", headers=caseworker).status_code == 200
    assert case.get("/cases/c-1", headers=integration).status_code == 200
    for headers in (evaluator, admin):
        is_problem(case.get("/cases/c-1", headers=headers), 403)

    assert obligations.get("/cases/c-1/obligations", params={"as_of": "2019-06-01"}, headers=caseworker).json()[
        "obligations"]
    for headers in (integration, evaluator, admin):
        is_problem(obligations.get("/cases/c-1/obligations", headers=headers), 403)
        is_problem(obligations.get("/obligations", headers=headers), 403)
    for headers in (integration, caseworker, evaluator):
        is_problem(obligations.post("/catalog/reload", headers=headers), 403)
    assert obligations.post("/catalog/reload", headers=admin).status_code == 202

    assert reporting.get("/trials", headers=evaluator).status_code == 200
    for headers in (integration, caseworker, admin):
        is_problem(reporting.get("/trials", headers=headers), 403)
        is_problem(reporting.get("/trials/T11/form", headers=headers), 403)


def test_a_municipality_sees_and_posts_only_its_own_cases(services, issuer):
    case, obligations, reporting = services
    aalborg, aarhus = as_(issuer, INTEGRATION, AALBORG), as_(issuer, INTEGRATION, AARHUS)
    assert post(case, aalborg, opened("c-aal", municipality=AALBORG), benefit_started("c-aal", benefit="dagpenge")).status_code == 201
    assert post(case, aarhus, opened("c-aar", municipality=AARHUS), benefit_started("c-aar", benefit="dagpenge")).status_code == 201

    # Aalborg's system cannot open a case in Aarhus, nor add to one; a batch is refused whole
    problem = is_problem(post(case, aalborg, opened("c-new", municipality=AARHUS)), 403)
    assert problem["errors"] == [{"field": "subject", "reason": "case c-new belongs to municipality 751, "
                                  "which this token does not act for"}]
    problem = is_problem(post(case, aalborg, event("plan.updated", "c-aal", date="2019-02-01"),
                              event("plan.updated", "c-aar", date="2019-02-01")), 403)
    assert [e["field"] for e in problem["errors"]] == ["[1].subject"]
    assert len(case.get("/cases/c-aal", headers=aalborg).json()["events"]) == 2  # nothing of the batch stored
    assert case.get("/cases/c-new", headers=aarhus).status_code == 404

    caseworker_aalborg, caseworker_aarhus = as_(issuer, CASEWORKER, AALBORG), as_(issuer, CASEWORKER, AARHUS)
    wait_for_case(obligations, caseworker_aalborg, "c-aal", "2019-06-01")
    wait_for_case(obligations, caseworker_aarhus, "c-aar", "2019-06-01")
    is_problem(case.get("/cases/c-aar", headers=caseworker_aalborg), 403)
    is_problem(obligations.get("/cases/c-aar/obligations", headers=caseworker_aalborg), 403)
    is_problem(obligations.get("/obligations", params={"municipality": AARHUS}, headers=caseworker_aalborg), 403)
    def worklist(headers: dict) -> set[str]:
        answer = obligations.get("/obligations", params={"as_of": "2019-06-01", "limit": 500}, headers=headers)
        return {item["case_id"] for item in answer.json()["items"]}

    assert wait_until(lambda: worklist(caseworker_aarhus) == {"c-aar"}, timeout=30)  # both derived by now
    assert worklist(caseworker_aalborg) == {"c-aal"}
    both = as_(issuer, CASEWORKER, AALBORG, AARHUS)  # a shared service centre: must say which
    problem = is_problem(obligations.get("/obligations", headers=both), 422)
    assert problem["errors"][0]["field"] == "municipality"


def test_a_moved_case_is_the_new_municipalitys_from_the_move_date(services, issuer):
    case, obligations, _ = services
    aalborg, aarhus = as_(issuer, INTEGRATION, AALBORG), as_(issuer, INTEGRATION, AARHUS)
    worker_aalborg, worker_aarhus = as_(issuer, CASEWORKER, AALBORG), as_(issuer, CASEWORKER, AARHUS)
    assert post(case, aalborg, opened("c-move", municipality=AALBORG), benefit_started("c-move", benefit="dagpenge"),
                event("case.moved", "c-move", municipality=AARHUS, date="2019-06-01")).status_code == 201
    # from now on it is Aarhus' case: Aalborg's system may no longer add to it
    is_problem(post(case, aalborg, event("plan.updated", "c-move", date="2019-07-01")), 403)
    assert post(case, aarhus, event("plan.updated", "c-move", date="2019-07-01")).status_code == 201
    assert case.get("/cases/c-move", headers=worker_aarhus).status_code == 200
    is_problem(case.get("/cases/c-move", headers=worker_aalborg), 403)

    wait_for_case(obligations, worker_aalborg, "c-move", "2019-05-31")
    path = "/cases/c-move/obligations"
    assert obligations.get(path, params={"as_of": "2019-05-31"}, headers=worker_aalborg).status_code == 200
    is_problem(obligations.get(path, params={"as_of": "2019-05-31"}, headers=worker_aarhus), 403)
    assert obligations.get(path, params={"as_of": "2019-06-01"}, headers=worker_aarhus).status_code == 200
    is_problem(obligations.get(path, params={"as_of": "2019-06-01"}, headers=worker_aalborg), 403)

    def worklist(headers: dict, as_of: str) -> set[str]:
        return {i["case_id"] for i in obligations.get("/obligations", params={"as_of": as_of, "limit": 500},
                                                      headers=headers).json()["items"]}

    assert wait_until(lambda: "c-move" in worklist(worker_aarhus, "2019-08-01"), timeout=30)
    assert "c-move" not in worklist(worker_aalborg, "2019-08-01")
    assert "c-move" in worklist(worker_aalborg, "2019-05-31")
    assert "c-move" not in worklist(worker_aarhus, "2019-05-31")


def test_posts_to_another_municipalitys_case_learn_nothing_about_it(services, issuer):
    # Aalborg's system posts under the ids of an Aarhus case: every answer is the 403 a read gets
    case, _, _ = services
    aarhus, aalborg = as_(issuer, INTEGRATION, AARHUS), as_(issuer, INTEGRATION, AALBORG)
    opening = opened("c-aar", municipality=AARHUS)
    assert post(case, aarhus, opening, benefit_started("c-aar", benefit="dagpenge")).status_code == 201
    read = is_problem(case.get("/cases/c-aar", headers=aalborg), 403)
    attempts = {
        "opened again, in Aalborg": [opened("c-aar", municipality=AALBORG)],
        "its opening posted again": [opening],
        "its opening's key, now in Aalborg": [{**opened("c-aar", municipality=AALBORG), "id": opening["id"]}],
        "a benefit that runs already": [benefit_started("c-aar", benefit="dagpenge")],
        "a benefit that never started": [event("benefit.ended", "c-aar", benefit="sygedagpenge", date="2019-03-01",
                                               reason="job")],
        "an ordinary event": [event("plan.updated", "c-aar", date="2019-02-01")],
        "in a batch after an opening of its own": [opened("c-new-aal", municipality=AALBORG),
                                                   event("plan.updated", "c-aar", date="2019-02-01")],
    }
    for why, documents in attempts.items():
        problem = is_problem(post(case, aalborg, *documents), 403)
        field = "subject" if len(documents) == 1 else f"[{len(documents) - 1}].subject"
        assert problem["errors"] == [{"field": field, "reason": read["detail"]}], why
        assert "751" not in problem["detail"] and "sequence" not in problem, why
    assert len(case.get("/cases/c-aar", headers=aarhus).json()["events"]) == 2  # nothing stored
    assert case.get("/cases/c-new-aal", headers=aalborg).status_code == 404
