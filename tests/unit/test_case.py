"""The Case aggregate's invariants, without a store."""

import pytest

from services.case.domain import Case
from shared.catalog import Catalog
from shared.events import parse_event
from shared.problems import Problem
from tests.events import benefit_ended, benefit_started, event, opened

CATALOG = Catalog.load()


def case_with(*documents) -> Case:
    first, *rest = [parse_event(d) for d in documents]
    case = Case.open(first)
    for incoming in rest:
        case.append(incoming, CATALOG)
    return case


def refused(case: Case, document) -> Problem:
    version = case.version
    with pytest.raises(Problem) as caught:
        case.append(parse_event(document), CATALOG)
    assert case.version == version  # nothing recorded
    return caught.value


def test_the_first_event_must_open_the_case():
    with pytest.raises(Problem) as caught:
        Case.open(parse_event(benefit_started("c")))
    assert caught.value.status == 409


def test_a_case_is_opened_once():
    assert refused(case_with(opened("c")), opened("c")).status == 409


def test_nothing_follows_case_closed():
    case = case_with(opened("c"), event("case.closed", "c", date="2019-05-01", reason="job"))
    problem = refused(case, event("plan.updated", "c", date="2019-05-02"))
    assert problem.status == 409 and "closed on 2019-05-01" in problem.errors[0].reason


def test_a_benefit_cannot_end_before_it_started():
    case = case_with(opened("c"), benefit_started("c", date="2019-03-01"))
    problem = refused(case, benefit_ended("c", date="2019-02-28"))
    assert (problem.status, problem.errors[0].field) == (422, "data.date")


def test_a_benefit_cannot_end_twice_or_without_starting():
    case = case_with(opened("c"), benefit_started("c"), benefit_ended("c"))
    assert refused(case, benefit_ended("c", date="2019-07-01")).errors[0].field == "data.benefit"
    assert refused(case, benefit_ended("c", benefit="dagpenge")).status == 409


def test_a_running_benefit_cannot_start_again_but_can_after_it_ended():
    case = case_with(opened("c"), benefit_started("c"))
    assert refused(case, benefit_started("c", date="2019-02-01")).status == 409
    case.append(parse_event(benefit_ended("c")), CATALOG)
    case.append(parse_event(benefit_started("c", date="2019-09-01")), CATALOG)
    assert case.running_benefits == {"ledighedsydelse": "2019-09-01"}


def test_moves_change_the_responsible_municipality_and_keys_remember_sequences():
    moved = event("case.moved", "c", municipality="751", date="2019-04-01")
    case = case_with(opened("c"), moved)
    assert case.municipality == "751"
    assert case.duplicate_of(parse_event(moved)) == 2
