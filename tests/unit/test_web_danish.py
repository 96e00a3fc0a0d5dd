"""What the web pages show in Danish (services/web/danish.py), against hand-written answers."""

from datetime import date

from services.web import danish
from services.web.danish import amount, days_overdue, describe_event, interval_words, kommune, long_date, number
from services.web.operations import gauge_total


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


def test_evaluation_numbers_have_a_decimal_comma_and_shares_are_percent():
    assert amount(1234.5, "timer") == "1.234,5"
    assert amount(6, "borgere") == "6" and amount(0, "pligter") == "0"
    assert amount(12.345, "dage") == "12,3" and amount(12.36, "dage") == "12,4"
    assert amount(0.5, "andel") == "50 %" and amount(0.0126, "andel") == "1,3 %"
    assert amount(-2.26, "borgere") == "−2,3" and amount(-0.01, "timer") == "0"  # never "−0"
    assert amount(None, "borgere") == "–"  # no data: nothing to compute


def test_a_difference_in_differences_and_its_interval_in_words():
    assert interval_words("Borgere over 18 måneder", "borgere", 1.5, 0.26, 2.74) == (
        "Borgere over 18 måneder: forskel-i-forskelle 1,5 borgere (95 %-konfidensinterval fra 0,3 til 2,7 borgere). "
        "Hele intervallet ligger over 0: målet steg mere, eller faldt mindre, i forsøgskommunerne end i "
        "sammenligningsgruppen.")
    assert interval_words("Andel afgået til job", "andel", -0.05, -0.08, -0.02) == (
        "Andel afgået til job: forskel-i-forskelle −5 procentpoint (95 %-konfidensinterval fra −8 til −2 "
        "procentpoint). Hele intervallet ligger under 0: målet faldt mere, eller steg mindre, i forsøgskommunerne end "
        "i sammenligningsgruppen.")
    for low, high in ((-1, 1), (0, 1), (-1, 0)):  # 0 inside, and on either edge
        assert interval_words("Dage", "dage", 0.5, low, high).endswith(
            "Intervallet omfatter 0: forskellen er ikke statistisk sikker."), (low, high)
    assert interval_words("Dage", "dage", None, None, None) == (
        "Dage: forskel-i-forskelle kan ikke beregnes (undertrykt: for få borgere, eller ingen sammenligningsgruppe).")


def test_a_moment_is_danish_time_summer_and_winter():
    assert danish.moment("2026-12-02T14:55:03+00:00") == "2. december 2026 kl. 15.55.03"  # CET, UTC+1
    assert danish.moment("2026-07-01T22:30:00+00:00") == "2. juli 2026 kl. 00.30.00"  # CEST, UTC+2: the next day


def test_a_gauge_is_summed_over_its_labels_and_no_other_gauge_counts():
    exposition = ("# HELP frisag_consumer_lag Events\n# TYPE frisag_consumer_lag gauge\n"
                  'frisag_consumer_lag{group="obligations",partition="0"} 3\n'
                  'frisag_consumer_lag{group="obligations",partition="1"} 4\n'
                  'frisag_consumer_lag_other{partition="0"} 100\nfrisag_relay_lag 7\n')
    assert gauge_total(exposition, "frisag_consumer_lag") == 7
    assert gauge_total(exposition, "frisag_relay_lag") == 7
    assert gauge_total(exposition, "frisag_events_stored") is None
