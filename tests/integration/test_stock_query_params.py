"""A query parameter an operation does not declare (a misspelling: `?statuss=overdue`,
`?comparision=751`) is refused with 422 naming it and the parameters the operation accepts,
rather than ignored: the caller would get an answer to another question. Checked after the
token, like every other validation, and audited like every other refusal."""

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
from tests.conftest import LiveServer
from tests.events import opened
from tests.infra import is_problem

# one worker runs them all: they share the module's running services (Makefile)
pytestmark = pytest.mark.xdist_group("stock-query-params")

WORKLIST = ["municipality", "caseworker", "status", "rule", "trial", "due_before", "due_after", "as_of", "sort",
            "limit", "cursor"]


@pytest.fixture(scope="module")
def apis(issuer, tmp_path_factory):
    """The three services on the embedded stream, with one case."""
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path_factory.mktemp("params")}
    token = issuer.everything()
    with LiveServer(case_app(lambda: case_bootstrap(CaseSettings(**common))), token) as case, \
            LiveServer(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common))), token) \
            as obligations, \
            LiveServer(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common))), token) as reporting:
        assert case.post("/events", json=opened("case-1"),
                         headers={"content-type": "application/cloudevents+json"}).status_code == 201
        yield {"case": case, "obligations": obligations, "reporting": reporting}


@pytest.mark.parametrize("service, method, path, params, unknown, accepted", [
    ("case", "GET", "/cases/case-1", {"verbose": "1"}, "verbose", []),
    ("case", "POST", "/events", {"dry_run": "true"}, "dry_run", []),
    ("obligations", "GET", "/obligations", {"municipality": "851", "statuss": "overdue"}, "statuss", WORKLIST),
    ("obligations", "GET", "/cases/case-1/obligations", {"asof": "2020-01-01"}, "asof", ["as_of"]),
    ("reporting", "GET", "/trials/T11/evaluation", {"comparision": "751"}, "comparision", ["from", "to", "comparison"]),
    ("reporting", "GET", "/audit", {"case": "case-1"}, "case",
     ["subject", "case_id", "action", "since", "until", "after", "limit", "order"]),
])
def test_a_misspelled_parameter_is_refused_naming_it_and_the_accepted_ones(apis, service, method, path, params,
                                                                          unknown, accepted):
    answer = apis[service].request(method, path, params=params, json=opened("case-2") if method == "POST" else None,
                                   headers={"content-type": "application/cloudevents+json"})
    problem = is_problem(answer, 422)
    reason = f"not a parameter of this operation, which takes {', '.join(accepted) if accepted else 'none'}"
    assert problem["errors"] == [{"field": f"query.{unknown}", "reason": reason}]


def test_many_undeclared_parameters_are_refused_naming_the_first_ten_in_an_answer_of_bounded_size(apis):
    """3,000 of them (24 KB asked): the answer names 10, 9 then 10 (the boundary); it does not
    repeat the accepted ones 3,000 times (it was a megabyte)."""
    for count, named in ((3000, 10), (9, 9), (10, 10), (11, 10)):
        answer = apis["obligations"].get("/obligations", params={f"x{i}": "1" for i in range(count)})
        problem = is_problem(answer, 422)
        assert [e["field"] for e in problem["errors"]] == [f"query.x{i}" for i in range(named)]
        assert len(answer.content) < 5000


def test_a_parameter_of_one_value_given_twice_is_refused_and_one_of_several_values_is_not(apis):
    """`?limit=5&limit=6` would be answered for 6, as if 5 had not been asked; `status` takes several."""
    answer = apis["reporting"].get("/audit", params=[("limit", "5"), ("limit", "6")])
    assert [e["field"] for e in is_problem(answer, 422)["errors"]] == ["query.limit"]
    assert apis["reporting"].get("/audit", params=[("limit", "5")]).status_code == 200
    assert apis["obligations"].get("/obligations", params=[("municipality", "851"), ("status", "due"),
                                                            ("status", "overdue")]).status_code == 200


def test_declared_parameters_pass_under_their_names(apis):
    assert apis["obligations"].get("/obligations", params={"municipality": "851", "status": ["due", "overdue"],
                                                           "as_of": "2020-01-01"}).status_code == 200
    assert apis["reporting"].get("/trials/T11/evaluation", params={"from": "2019-01-01"}).status_code == 200
    assert apis["reporting"].get("/audit", params={"order": "newest", "limit": 5}).status_code == 200
    with apis["obligations"].stream("GET", "/obligations/changes", params={"municipality": "851"}) as changes:
        assert changes.status_code == 200  # the web service passes the feed on with this parameter


def test_the_token_is_checked_first_and_the_refusal_is_audited(apis):
    obligations = apis["obligations"]
    anonymous = httpx.get(f"{obligations.base_url}/obligations", params={"municipality": "851", "statuss": "overdue"})
    assert is_problem(anonymous, 401)
    assert is_problem(obligations.get("/obligations", params={"municipality": "851", "statuss": "overdue"}), 422)
    (record,) = obligations.get("/audit", params={"action": "read worklist", "order": "newest", "limit": 1}
                                ).json()["records"]
    assert (record["status"], record["query"]) == (422, "municipality=851&statuss=overdue")
