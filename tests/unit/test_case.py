"""The Case aggregate's invariants, without a store."""

import pytest

from services.case.domain import Case, CaseConflict, EventIdUsed
from shared.catalog import Catalog
from shared.events import parse_event
from shared.refusals import InvalidEvent, Refusal
from tests.events import benefit_ended, benefit_started, event, opened

CATALOG = Catalog.load()


def case_with(*documents) -> Case:
    first, *rest = [parse_event(d) for d in documents]
    case = Case.open(first)
    for incoming in rest:
        case.append(incoming, CATALOG)
    return case


def refused(case: Case, document) -> Refusal:
    version = case.version
    with pytest.raises(Refusal) as caught:
        case.append(parse_event(document), CATALOG)
    assert case.version == version  # nothing recorded
    return caught.value


def test_the_first_event_must_open_the_case():
    with pytest.raises(CaseConflict) as caught:
        Case.open(parse_event(benefit_started("c")))
    assert caught.value.field == "type"


def test_a_case_is_opened_once():
    assert refused(case_with(opened("c")), opened("c")) == CaseConflict("type", "the case is already open")


def test_nothing_follows_case_closed():
    case = case_with(opened("c"), event("case.closed", "c", date="2019-05-01", reason="job"))
    problem = refused(case, event("plan.updated", "c", date="2019-05-02"))
    assert isinstance(problem, CaseConflict) and "closed on 2019-05-01" in problem.reason


def test_a_benefit_cannot_end_before_it_started():
    case = case_with(opened("c"), benefit_started("c", date="2019-03-01"))
    problem = refused(case, benefit_ended("c", date="2019-02-28"))
    assert (type(problem), problem.field) == (InvalidEvent, "data.date")


def test_a_benefit_cannot_end_twice_or_without_starting():
    case = case_with(opened("c"), benefit_started("c"), benefit_ended("c"))
    assert refused(case, benefit_ended("c", date="2019-07-01")).field == "data.benefit"
    assert type(refused(case, benefit_ended("c", benefit="dagpenge"))) is CaseConflict


def test_a_running_benefit_cannot_start_again_but_can_after_it_ended():
    case = case_with(opened("c"), benefit_started("c"))
    assert type(refused(case, benefit_started("c", date="2019-02-01"))) is CaseConflict
    case.append(parse_event(benefit_ended("c")), CATALOG)
    case.append(parse_event(benefit_started("c", date="2019-09-01")), CATALOG)
    assert case.running_benefits == {"ledighedsydelse": "2019-09-01"}


def test_moves_change_the_responsible_municipality_and_keys_remember_sequences():
    moved = event("case.moved", "c", municipality="751", date="2019-04-01")
    case = case_with(opened("c"), moved)
    assert case.municipality == "751"
    assert case.duplicate_of(parse_event(moved)) == 2


def test_another_event_under_a_used_key_is_refused_without_saying_where_it_was_stored():
    moved = event("case.moved", "c", municipality="751", date="2019-04-01")
    case = case_with(opened("c"), moved)
    other = parse_event({**moved, "data": {**moved["data"], "municipality": "101"}})
    with pytest.raises(EventIdUsed) as caught:
        case.duplicate_of(other)
    assert caught.value == EventIdUsed(moved["source"], moved["id"])


def test_a_case_cannot_close_before_it_opened():
    """The day before its opening is refused (the closing's date named); on the opening day it
    closes."""
    case = case_with(opened("c", date="2019-01-01"))
    problem = refused(case, event("case.closed", "c", date="2018-12-31", reason="job"))
    assert (type(problem), problem.field) == (InvalidEvent, "data.date") and "2019-01-01" in problem.reason
    case.append(parse_event(event("case.closed", "c", date="2019-01-01", reason="job")), CATALOG)
    assert case.closed_on == "2019-01-01"
