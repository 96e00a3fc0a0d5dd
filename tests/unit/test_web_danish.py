"""What the web pages show in Danish (services/web/danish.py), against hand-written answers."""

from datetime import date

from services.web.danish import days_overdue, describe_event, kommune, long_date, number


def test_dates_are_written_the_danish_way():
    assert long_date("2019-03-01") == "1. marts 2019"
    assert long_date(date(2020, 12, 31)) == "31. december 2020"
    assert long_date("2021-01-09") == "9. januar 2021"


def test_days_overdue_count_from_the_last_day_on_time():
    deadline = date(2020, 2, 16)
    assert days_overdue(deadline, date(2020, 2, 15)) == 0  # the day before
    assert days_overdue(deadline, date(2020, 2, 16)) == 0  # the last day on time
    assert days_overdue("2020-02-16", date(2020, 2, 17)) == 1  # the day after
    assert days_overdue(deadline, date(2020, 3, 1)) == 14  # across 29 February


def test_numbers_and_kommune_names():
    assert [number(n) for n in (0, 999, 1000, 1234567)] == ["0", "999", "1.000", "1.234.567"]
    assert kommune("851") == "Aalborg (851)" and kommune("101") == "København (101)"


def test_events_are_described_in_danish_with_the_kommune_named():
    assert describe_event("dk.frisag.case.opened", {"municipality": "851", "cpr": "010190-****", "date": "2020-01-02"}) == (
        "Sag oprettet", "Aalborg (851), CPR-nr. 010190-****")
    assert describe_event("dk.frisag.case.moved", {"municipality": "751", "date": "2020-06-01"}) == (
        "Sag flyttet", "til Aarhus (751)")
    assert describe_event("dk.frisag.benefit.started", {"benefit": "kontanthjaelp", "date": "2020-01-02"}) == (
        "Ydelse startet", "kontanthjælp")
    assert describe_event("dk.frisag.case.closed", {"reason": "moved_abroad", "date": "2020-01-02"}) == (
        "Sag afsluttet", "flyttet til udlandet")
    assert describe_event("dk.frisag.target-group.assessed", {"trial": "T12", "in_target_group": False, "date": "x"}) == (
        "Målgruppe vurderet", "T12: ikke i målgruppen")
    assert describe_event("dk.frisag.cadence.agreed", {"rule": "LAB-jobsamtale", "interval_days": 90, "date": "x"}) == (
        "Kadence aftalt", "LAB-jobsamtale: hver 90. dag")
    assert describe_event("dk.frisag.something.new", {"date": "x", "a": "b"}) == ("something.new", "a: b")
