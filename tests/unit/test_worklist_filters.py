"""The worklist's filters by rule and by the trial that exempts or changes a task, and its
counts per caseworker and status, on SQLite and on PostgreSQL (the trial is read from the
stored JSON, which the two query differently).

Hand-computed from the catalog, as of 1 March 2020 (d and e: about their closing day), citizens
on ledighedsydelse:
- a, Aalborg (851) from 2 January 2020, assigned cw-7: jobsamtale due 16 February (overdue),
  the next one 2 April (upcoming), LAS-74c 1 January 2021 waived by T11;
- b, Aalborg from 30 January 2020, unassigned: jobsamtale 15 March (due), LAS-74c 29 January
  2021 waived by T11;
- c, Aarhus (751, not in T11): jobsamtale 16 February (overdue), 2 April (upcoming), LAS-74c
  1 January 2021 (upcoming);
- d, København (101) from 2 January 2020, closed 20 February 2020 (job): jobsamtale 16 February
  (overdue, never held: nothing is posted after the closing);
- e, Frederiksberg (147) from 2 January 2020, moved to Gentofte (157) on 25 February, then
  closed back-dated to 20 February: as d, in Frederiksberg; Gentofte never has it to do."""

from datetime import date

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.obligations.projection import ObligationsProjection
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.stream import Delivery

AS_OF = date(2020, 3, 1)
CASES = [("a", "case.opened", {"date": "2020-01-02", "municipality": "851", "citizen": "a"}),
         ("a", "benefit.started", {"date": "2020-01-02", "benefit": "ledighedsydelse"}),
         ("a", "case.assigned", {"date": "2020-01-02", "caseworker": "cw-7"}),
         ("b", "case.opened", {"date": "2020-01-30", "municipality": "851", "citizen": "b"}),
         ("b", "benefit.started", {"date": "2020-01-30", "benefit": "ledighedsydelse"}),
         ("c", "case.opened", {"date": "2020-01-02", "municipality": "751", "citizen": "c"}),
         ("c", "benefit.started", {"date": "2020-01-02", "benefit": "ledighedsydelse"}),
         ("d", "case.opened", {"date": "2020-01-02", "municipality": "101", "citizen": "d"}),
         ("d", "benefit.started", {"date": "2020-01-02", "benefit": "ledighedsydelse"}),
         ("d", "case.closed", {"date": "2020-02-20", "reason": "job"}),
         ("e", "case.opened", {"date": "2020-01-02", "municipality": "147", "citizen": "e"}),
         ("e", "benefit.started", {"date": "2020-01-02", "benefit": "ledighedsydelse"}),
         ("e", "case.moved", {"date": "2020-02-25", "municipality": "157"}),
         ("e", "case.closed", {"date": "2020-02-20", "reason": "job"})]


@pytest.fixture(params=["sqlite", "postgresql"])
def projection(request) -> ObligationsProjection:
    if request.param == "sqlite":
        engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        url = request.getfixturevalue("database_url")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    projection = ObligationsProjection(engine, Catalog.load(), today=lambda: AS_OF)
    sequence: dict[str, int] = {}
    events = []
    for position, (case_id, name, data) in enumerate(CASES):
        sequence[case_id] = sequence.get(case_id, 0) + 1
        events.append(StreamEvent(f"e{position}", "s", f"dk.frisag.{name}", case_id, None, data,
                                  sequence[case_id], position))
    projection.store([Delivery(0, e.position, e) for e in events])
    yield projection
    engine.dispose()


def listed(projection: ObligationsProjection, **filters) -> list[tuple[str, str, str]]:
    items, total = projection.worklist(as_of=AS_OF, limit=500, **filters)
    assert total == len(items)
    return [(o["case_id"], o["rule"], o["due"]) for o in items]


def test_the_worklist_by_rule_and_by_trial(projection):
    assert listed(projection, municipality="851", rule="LAB-jobsamtale") == [
        ("a", "LAB-jobsamtale", "2020-02-16"), ("b", "LAB-jobsamtale", "2020-03-15"), ("a", "LAB-jobsamtale", "2020-04-02")]
    assert listed(projection, municipality="851", trial="T11") == [
        ("a", "LAS-74c", "2021-01-01"), ("b", "LAS-74c", "2021-01-29")]
    assert listed(projection, municipality="751", trial="T11") == []  # Aarhus's LAS-74c is required
    assert listed(projection, municipality="751", rule="LAS-74c") == [("c", "LAS-74c", "2021-01-01")]
    assert listed(projection, municipality="851", rule="LAS-74c", trial="T10") == []
    assert listed(projection, municipality="851", rule="LAB-jobsamtale", caseworker="cw-7", statuses=["overdue"]) == [
        ("a", "LAB-jobsamtale", "2020-02-16")]


def test_counts_per_caseworker_and_status(projection):
    assert projection.tally(as_of=AS_OF, municipality="851") == {
        "cw-7": {"overdue": 1, "upcoming": 1, "waived": 1}, None: {"due": 1, "waived": 1}}
    assert projection.tally(as_of=AS_OF, municipality="851", trial="T11") == {"cw-7": {"waived": 1}, None: {"waived": 1}}
    assert projection.tally(as_of=AS_OF, municipality="851", caseworker="cw-7", rule="LAB-jobsamtale") == {
        "cw-7": {"overdue": 1, "upcoming": 1}}
    assert projection.tally(as_of=AS_OF, municipality="751") == {None: {"overdue": 1, "upcoming": 2}}
    # b's jobsamtale the day before its last day on time, on it (its next one is listed from its
    # due date on, upcoming: more than 14 days off), and the day after (overdue)
    assert projection.tally(as_of=date(2020, 3, 14), municipality="851", rule="LAB-jobsamtale")[None] == {"due": 1}
    assert projection.tally(as_of=date(2020, 3, 15), municipality="851", rule="LAB-jobsamtale")[None] == {
        "due": 1, "upcoming": 1}
    assert projection.tally(as_of=date(2020, 3, 16), municipality="851", rule="LAB-jobsamtale")[None] == {
        "overdue": 1, "upcoming": 1}


@pytest.mark.parametrize("case_id, municipality", [("d", "101"), ("e", "147")])
def test_a_closed_case_leaves_the_worklist_the_day_after_its_closing_day(projection, case_id, municipality):
    """Its task can no longer be done (nothing is posted after case.closed): listed to the
    closing day, not after, in the list and in the counts; its case page still shows it."""
    jobsamtale = [(case_id, "LAB-jobsamtale", "2020-02-16")]
    for day, expected in ((date(2020, 2, 19), jobsamtale), (date(2020, 2, 20), jobsamtale), (date(2020, 2, 21), [])):
        items, total = projection.worklist(as_of=day, municipality=municipality)
        assert [(o["case_id"], o["rule"], o["due"]) for o in items] == expected and total == len(expected), day
        assert projection.tally(as_of=day, municipality=municipality) == ({None: {"overdue": 1}} if expected else {}), day
    _, page, _ = projection.for_case(case_id, date(2020, 2, 21))
    assert [(o["rule"], o["due"], o["status"]) for o in page] == [("LAB-jobsamtale", "2020-02-16", "overdue")]


def test_a_move_dated_after_a_back_dated_closing_lists_nothing_yet_keeps_the_case_known_there(projection):
    """Gentofte was responsible for e from 25 February by its events, after the closing day:
    nothing on its worklist then, yet its change feed and a catalog change there still reach e."""
    for day in (date(2020, 2, 24), date(2020, 2, 25), date(2020, 2, 26)):
        assert projection.worklist(as_of=day, municipality="157") == ([], 0), day
    assert [case_id for _, case_id in projection.changes("157", 0)[1]] == ["e"]
    assert projection.mark_stale_in(["157"]) == 1
