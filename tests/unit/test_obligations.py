"""The obligations fold, without I/O: each scenario of issue 3, with dates worked out by hand."""

import re
from datetime import date, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

import yaml

from shared.catalog import CATALOG_DIR, Catalog, Period, Rule, Trial
from shared.obligations import Exemption, Obligation, _first_reaching, _in_force, _intersection, fold
from shared.timeline import Cadence, Spell, Timeline, all_applying, applying, describe, trial_applies, trial_periods
from tests.fold_events import ended, ev, opened, started

CATALOG = Catalog.load()
AALBORG, AARHUS, HILLEROED, VESTHIMMERLAND = "851", "751", "219", "820"


def of(rule: str, events, as_of: str, *, trials: bool = True):
    return [o for o in fold(events, CATALOG, date.fromisoformat(as_of), trials=trials) if o.rule == rule]


def dues(obligations) -> list[str]:
    return [o.due.isoformat() for o in obligations]


def test_ly_reassessment_is_due_after_12_months_within_18_counting_across_gaps():
    # 181 days (Jan-Jun 2019), a gap, then again from 1 Sep: 184 more days reach 365 on 2 Mar 2020
    events = [opened(AARHUS, "2019-01-01"), started("ledighedsydelse", "2019-01-01"),
              ended("ledighedsydelse", "2019-06-30"), started("ledighedsydelse", "2019-09-01")]
    [first, *_] = of("LAS-74c", events, "2020-03-10")
    assert first.due == date(2020, 3, 3)
    assert first.deadline == date(2020, 9, 2)  # done by the end of the 18-month window
    assert first.status(date(2020, 3, 10)) == "due" and first.exemption is None
    assert "benefit.started ledighedsydelse 2019-09-01" in first.because


def test_an_obligation_carries_its_rules_title_and_legal_reference():
    """What a caseworker reads on an obligation: the rule's title and its legal reference, as
    the catalog's file of the rule gives them (LAS-74c.yaml)."""
    events = [opened(AARHUS, "2019-01-01"), started("ledighedsydelse", "2019-01-01")]
    [first, *_] = of("LAS-74c", events, "2020-03-10")
    assert (first.title, first.legal_reference) == ("Revurdering af ledighedsydelse efter 12 af 18 måneder", "LAS § 74 c")


def test_days_that_fall_out_of_the_18_month_window_no_longer_count():
    # 90 days in early 2019 are outside the window by the time the 2020 spell has 275 days
    events = [opened(AARHUS, "2019-01-01"), started("ledighedsydelse", "2019-01-01"),
              ended("ledighedsydelse", "2019-03-31"), started("ledighedsydelse", "2020-01-01")]
    assert dues(of("LAS-74c", events, "2021-01-10"))[0] == "2020-12-31"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 400)), min_size=1, max_size=5))
def test_the_cumulative_count_equals_counting_day_by_day(gaps_and_lengths):
    spells, day = [], date(2019, 1, 1)
    for gap, length in gaps_and_lengths:
        start = day + timedelta(days=gap)
        spells.append(Spell(start, start + timedelta(days=length - 1), "s"))
        day = start + timedelta(days=length)
    required, window = 365, 548
    expected, d = None, spells[0].start
    while d <= spells[-1].end:
        if sum(s.days_within(d - timedelta(days=window - 1), d) for s in spells) >= required:
            expected = d + timedelta(days=1)
            break
        d += timedelta(days=1)
    assert _first_reaching(spells, spells[0].start, required, window) == expected


def ly_from_2019(municipality: str):
    return [opened(municipality, "2019-01-01"), started("ledighedsydelse", "2019-01-01")]


def test_t11_waives_the_reassessment_in_aalborg_but_not_in_aarhus():
    [aalborg] = of("LAS-74c", ly_from_2019(AALBORG), "2019-12-31")
    [aarhus] = of("LAS-74c", ly_from_2019(AARHUS), "2019-12-31")
    assert aalborg.due == aarhus.due == date(2020, 1, 1)  # as in the contract's example
    assert aalborg.status(date(2020, 2, 1)) == "waived" and aalborg.exemption.trial == "T11"
    assert any(b.startswith("T11 waives LAS-74c on 2020-01-01") for b in aalborg.because)
    assert aarhus.status(date(2020, 2, 1)) == "due" and aarhus.exemption is None


def test_the_ordinary_rule_is_due_again_the_day_after_t11_ends():
    events = [opened(AALBORG, "2018-03-15"), started("ledighedsydelse", "2018-03-15")]
    obligations = of("LAS-74c", events, "2023-01-02")
    waived = [o for o in obligations if o.basis == "waived"]
    assert waived and all(o.due <= date(2022, 12, 31) for o in waived)
    after = [o for o in obligations if o.due > date(2022, 12, 31)]
    assert after[0].due == date(2023, 1, 1) and after[0].exemption is None
    assert after[0].status(date(2023, 1, 2)) == "due"
    # without trials the same citizen would have had every one of them required
    assert all(o.basis == "required" for o in of("LAS-74c", events, "2023-01-02", trials=False))


def test_a_back_dated_benefit_end_removes_the_obligation():
    events = [opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-01-01")]
    assert dues(of("LAB-tilbud", events, "2019-05-01")) == ["2019-07-01"]
    # posted later, dated before the deadline: the spell ended first, no offer was required
    assert of("LAB-tilbud", [*events, ended("dagpenge", "2019-05-31", "job")], "2019-08-01") == []


def test_the_jobsamtale_parameters_change_on_2020_01_01():
    events = [opened(AARHUS, "2019-10-01"), started("dagpenge", "2019-10-01")]
    events += [ev("conversation.held", d, kind="jobsamtale") for d in ("2019-10-30", "2019-11-28", "2020-02-10", "2020-03-30")]
    obligations = of("LAB-jobsamtale", events, "2020-12-31")
    # old rules: monthly in months 1-6 (Nov, Dec); from 2020: 4 in the first 6 months, counted
    # from the spell's start (day 136 and 182 fall in 2020), then as individually agreed
    assert dues(obligations) == ["2019-11-01", "2019-12-01", "2020-02-14", "2020-03-31"]
    assert [o.status(date(2020, 12, 31)) for o in obligations] == ["done"] * 4
    assert any(b.startswith("LAB-jobsamtale.schedule = first at 1m, 2m, 3m, 4m, 5m, 6m, then every 3m "
                            "(in force from 2015-01-01") for b in obligations[0].because)
    assert any(b.startswith("LAB-jobsamtale.schedule = first at 45d, 91d, 136d, 182d, then as agreed "
                            "(in force from 2020-01-01") for b in obligations[2].because)


def test_a_schedule_a_trial_sets_is_cited_with_its_value_and_the_trial_named_with_its_note():
    # T19 makes the follow-ups of a wage-subsidy job every 30 months in Vesthimmerland (its file)
    events = [opened(VESTHIMMERLAND, "2019-01-01"), started("foertidspension", "2019-01-01"),
              ev("offer.started", "2019-01-01", offer="loentilskud"), ev("conversation.held", "2019-06-20", kind="opfoelgningssamtale")]
    obligations = of("FP-loentilskud-opfoelgning", events, "2020-01-01")
    assert dues(obligations) == ["2019-07-01", "2021-12-20"]
    assert "T19 sets FP-loentilskud-opfoelgning.schedule = first at 6m, then every 30m" in obligations[1].because
    # the exemption names the trial by its title, and the effect's note
    assert obligations[1].exemption == Exemption("T19", "Færre opfølgninger for førtidspensionister i job med løntilskud",
                                                 "modify", "Every 2½ years, as for flexjob.")


def test_t23_lets_hilleroed_agree_an_individual_cadence():
    events = [opened(HILLEROED, "2018-01-01"), started("kontanthjaelp", "2018-01-01"),
              ev("conversation.held", "2018-01-05", kind="jobsamtale"),
              ev("target-group.assessed", "2018-02-01", trial="T23", in_target_group=True),
              ev("cadence.agreed", "2018-02-01", rule="LAB-jobsamtale", interval_days=180)]
    obligations = of("LAB-jobsamtale", events, "2018-06-01")
    assert dues(obligations) == ["2018-01-08", "2018-07-31"]  # 7 days, then 180 days after 1 Feb
    assert obligations[1].exemption.trial == "T23" and obligations[1].exemption.effect == "modify"
    assert any(b.startswith("T23 modifies LAB-jobsamtale on 2018-07-31") for b in obligations[1].because)
    # the agreed talk of 31 July not held: the next, counted from it when held, is not listed yet
    assert dues(of("LAB-jobsamtale", events, "2019-03-01")) == ["2018-01-08", "2018-07-31"]
    # the same history in Aarhus: the agreement is void, the ordinary 3 months apply
    elsewhere = [opened(AARHUS, "2018-01-01"), *events[1:]]
    assert dues(of("LAB-jobsamtale", elsewhere, "2018-03-01")) == ["2018-01-08", "2018-04-05"]


def fp_in_wage_subsidy(municipality: str):
    return [opened(municipality, "2019-01-01"), started("foertidspension", "2019-01-01"),
            ev("offer.started", "2019-01-01", offer="loentilskud"),
            ev("conversation.held", "2019-06-20", kind="opfoelgningssamtale")]


def test_t19_follows_up_every_30_months_in_vesthimmerland_and_every_12_elsewhere():
    assert dues(of("FP-loentilskud-opfoelgning", fp_in_wage_subsidy(VESTHIMMERLAND), "2020-01-01")) == ["2019-07-01", "2021-12-20"]
    assert dues(of("FP-loentilskud-opfoelgning", fp_in_wage_subsidy(AALBORG), "2020-01-01")) == ["2019-07-01", "2020-06-20"]


def test_a_move_out_of_a_trial_municipality_brings_back_the_ordinary_rule():
    moved_before = [*ly_from_2019(AALBORG), ev("case.moved", "2019-10-01", municipality=AARHUS)]
    [o] = of("LAS-74c", moved_before, "2019-12-31")
    assert o.due == date(2020, 1, 1) and o.basis == "required" and o.municipality == AARHUS
    moved_after = [*ly_from_2019(AALBORG), ev("case.moved", "2020-06-01", municipality=AARHUS)]
    waived, again, *_ = of("LAS-74c", moved_after, "2020-06-02")
    assert (waived.due, waived.basis) == (date(2020, 1, 1), "waived")
    assert (again.due, again.basis, again.municipality) == (date(2020, 6, 1), "required", AARHUS)
    moved_in = [*ly_from_2019(AARHUS), ev("case.moved", "2019-10-01", municipality=AALBORG)]
    assert of("LAS-74c", moved_in, "2019-12-31")[0].basis == "waived"


def test_events_after_the_as_of_date_are_ignored():
    events = [*ly_from_2019(AARHUS), ev("assessment.completed", "2020-02-01", kind="revurdering-ledighedsydelse")]
    assert of("LAS-74c", events, "2020-01-15")[0].status(date(2020, 1, 15)) == "due"
    assert of("LAS-74c", events, "2020-02-01")[0].status(date(2020, 2, 1)) == "done"


def test_a_closed_case_has_no_obligations_after_it_closed():
    events = [*ly_from_2019(AARHUS), ev("case.closed", "2019-06-30", reason="job")]
    assert of("LAS-74c", events, "2020-06-01") == []


def test_t6_waives_the_medical_certificate_and_2020_made_it_optional():
    sick = lambda m, d: [opened(m, d), started("sygedagpenge", d)]
    [morsoe] = of("SDP-LAE285", sick("773", "2019-03-01"), "2019-06-01")
    assert morsoe.due == date(2019, 4, 26) and morsoe.basis == "waived" and morsoe.exemption.trial == "T6"
    [aarhus] = of("SDP-LAE285", sick(AARHUS, "2019-03-01"), "2019-06-01")
    assert aarhus.basis == "required"
    assert of("SDP-LAE285", sick(AARHUS, "2020-03-01"), "2020-06-01") == []


def test_t22_suspends_the_offer_duty_and_it_is_due_again_when_resumed():
    events = [opened(HILLEROED, "2018-01-01"), started("kontanthjaelp", "2018-01-01"),
              ev("target-group.assessed", "2018-02-01", trial="T22", in_target_group=True),
              ev("offer-duty.suspended", "2018-02-01"), ev("offer-duty.resumed", "2018-09-01")]
    suspended, resumed = of("LAB-tilbud", events, "2018-10-01")
    assert (suspended.due, suspended.status(date(2018, 10, 1)), suspended.exemption.trial) == (date(2018, 4, 1), "suspended", "T22")
    assert (resumed.due, resumed.status(date(2018, 10, 1))) == (date(2018, 9, 1), "overdue")


def test_a_rule_counts_a_spell_from_the_day_the_rule_took_effect():
    """LAS § 74 c has values from 2013-01-01: a ledighedsydelse spell from 2012 counts from
    then, as a spell that began that day would."""
    from_2013 = of("LAS-74c", [opened(AARHUS, "2012-06-01"), started("ledighedsydelse", "2013-01-01")], "2014-01-10")
    assert dues(from_2013) == ["2014-01-01", "2015-01-01"]  # 365 days from 2013-01-01, 2013-12-31 the 365th
    for start, due in (("2012-06-01", "2014-01-01"), ("2012-12-31", "2014-01-01"), ("2013-01-02", "2014-01-02")):
        events = [opened(AARHUS, "2012-06-01"), started("ledighedsydelse", start)]
        [first, *_] = of("LAS-74c", events, "2014-01-10")
        assert first.due.isoformat() == due, start
        if start < "2013-01-01":
            assert any("LAS-74c in force from 2013-01-01: counted from then" in b for b in first.because), first.because
            assert dues(of("LAS-74c", events, "2012-12-31")) == [due]  # only the next one, as on any day before it


def test_a_recurring_rule_counts_a_spell_from_the_day_the_rule_took_effect():
    """The jobsamtale schedule has values from 2015-01-01: dagpenge from mid-2014 has the
    conversations of a spell that began on 2015-01-01, not none at all."""
    back_dated = [opened(AARHUS, "2014-06-01"), started("dagpenge", "2014-06-01")]
    on_the_day = [opened(AARHUS, "2014-06-01"), started("dagpenge", "2015-01-01")]
    obligations = of("LAB-jobsamtale", back_dated, "2015-04-15")
    assert dues(obligations) == dues(of("LAB-jobsamtale", on_the_day, "2015-04-15")) == \
        ["2015-02-01", "2015-03-01", "2015-04-01", "2015-05-01"]
    assert any("in force from 2015-01-01: counted from then" in b for b in obligations[0].because)
    # a spell that ended before the rule existed counts not at all
    earlier = [opened(AARHUS, "2011-01-01"), started("ledighedsydelse", "2011-01-01"), ended("ledighedsydelse", "2012-12-31")]
    assert of("LAS-74c", earlier, "2014-01-10") == []


def test_a_rule_a_null_value_ended_has_no_obligations_from_then():
    rule = CATALOG.rules["LAS-74c"].model_dump()
    rule["parameters"]["required_months"]["values"][date(2016, 1, 1)] = {"value": None, "reference": "repealed"}
    ended_2016 = Catalog({**CATALOG.rules, "LAS-74c": Rule.model_validate(rule)}, CATALOG.trials)
    events = [opened(AARHUS, "2013-01-01"), started("ledighedsydelse", "2013-01-01")]
    found = [o for o in fold(events, ended_2016, date(2018, 1, 1)) if o.rule == "LAS-74c"]
    assert dues(found) == ["2014-01-01", "2015-01-01"]  # the next, 2016-01-01, would fall under the null
    # a spell that starts after the null has nothing to count
    after = [opened(AARHUS, "2017-01-01"), started("ledighedsydelse", "2017-01-01")]
    assert [o for o in fold(after, ended_2016, date(2019, 1, 1)) if o.rule == "LAS-74c"] == []


def test_a_one_day_stay_in_a_t11_municipality_waives_the_reassessment_due_that_day_and_it_is_due_the_next():
    # 365 days in Aarhus reach the re-assessment on 2020-01-01, the day spent in Aalborg (T11): waived;
    # back in Aarhus the next day T11 no longer applies, the 365 days still lie within the window
    events = [opened(AARHUS, "2019-01-01"), started("ledighedsydelse", "2019-01-01"),
              ev("case.moved", "2020-01-01", municipality=AALBORG), ev("case.moved", "2020-01-02", municipality=AARHUS)]
    assert [(o.due.isoformat(), o.basis, o.exemption and o.exemption.trial) for o in of("LAS-74c", events, "2020-02-01")] == [
        ("2020-01-01", "waived", "T11"), ("2020-01-02", "required", None), ("2021-01-01", "required", None)]
    assert of("LAS-74c", events, "2020-02-01")[1].because[-1] == "exemption ended the day before 2020-01-02"


def test_a_reassessment_due_anyway_the_day_t11_ends_is_not_a_catch_up():
    # 365 days from 2022-01-01 in Aalborg reach it on 2023-01-01, the first day after T11
    [first, *_] = of("LAS-74c", [opened(AALBORG, "2022-01-01"), started("ledighedsydelse", "2022-01-01")], "2023-01-02")
    assert (first.due, first.basis, first.exemption) == (date(2023, 1, 1), "required", None)
    assert not any(b.startswith("exemption ended") for b in first.because)


def test_a_reassessment_a_day_short_of_it_when_t11_ends_is_no_catch_up():
    # 364 days from 2022-01-02 in Aalborg by T11's last day (2022-12-31): no catch-up on
    # 2023-01-01; the 365th day is that day, and it falls due the day after
    [first, *_] = of("LAS-74c", [opened(AALBORG, "2022-01-02"), started("ledighedsydelse", "2022-01-02")], "2023-01-03")
    assert (first.due, first.basis, first.exemption) == (date(2023, 1, 2), "required", None)
    assert not any(b.startswith("exemption ended") for b in first.because)


def test_an_obligation_as_json_shows_it_done_only_from_the_day_it_was_done():
    waived_by = Exemption("T11", "Forsøg", "modify", None)
    o = Obligation("LAS-74c", "Revurdering", "LAS § 74 c", date(2020, 1, 1), date(2020, 6, 30), date(2019, 1, 1),
                   "required", "851", date(2020, 2, 1), waived_by, ("a", "b"))
    expected = {"case_id": "case-1", "rule": "LAS-74c", "title": "Revurdering", "legal_reference": "LAS § 74 c",
                "due": "2020-01-01", "deadline": "2020-06-30", "status": "due", "done_on": None, "municipality": "851",
                "exemption": {"trial": "T11", "title": "Forsøg", "effect": "modify"}, "because": ["a", "b"]}
    assert o.as_json("case-1", date(2020, 1, 31)) == expected
    assert o.as_json("case-1", date(2020, 2, 1)) == {**expected, "status": "done", "done_on": "2020-02-01"}
    assert Exemption("T11", "Forsøg", "waive", "n").as_json() == {"trial": "T11", "title": "Forsøg", "effect": "waive",
                                                                 "note": "n"}


def _waiving_extensions(trial_id: str, municipalities: list[str], in_a_row: int) -> Trial:
    """A trial written as T17's file is (T17 waives the rehabilitation team's extension, 1 in a
    row), with its own id, municipalities and `in_a_row`."""
    document = yaml.safe_load((CATALOG_DIR / "trials" / "T17.yaml").read_text(encoding="utf-8"))
    document.update(id=trial_id, municipalities=municipalities)
    [effect] = document["effects"]
    effect["in_a_row"] = in_a_row
    return Trial.model_validate(document)


def _extensions(trials: list[Trial], events, as_of: str) -> list[tuple[str, str, str | None]]:
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, **{t.id: t for t in trials}})
    return [(o.due.isoformat(), o.basis, o.exemption and o.exemption.trial)
            for o in fold(events, catalog, date.fromisoformat(as_of)) if o.rule == "RF-rehabteam-forlaengelse"]


def _ressourceforloeb(municipality: str, *later) -> list:
    return [opened(municipality, "2019-01-01"), started("ressourceforloeb", "2019-01-01"),
            ev("target-group.assessed", "2019-01-01", trial="T17", in_target_group=True), *later]


def test_a_trial_that_waives_at_most_two_in_a_row_requires_the_third_and_then_waives_two_again():
    # every 12 months from 1 Jan 2019: two waived, the third required; held on time, the count
    # starts again from it: the next two (counted from the meeting) are waived again
    t17 = _waiving_extensions("T17", ["813"], in_a_row=2)
    events = _ressourceforloeb("813")
    assert _extensions([t17], events, "2022-01-10") == [
        ("2020-01-01", "waived", "T17"), ("2021-01-01", "waived", "T17"), ("2022-01-01", "required", None)]
    held = [*events, ev("rehab-team.meeting-held", "2021-12-20")]
    assert _extensions([t17], held, "2025-01-10") == [
        ("2020-01-01", "waived", "T17"), ("2021-01-01", "waived", "T17"), ("2022-01-01", "required", None),
        ("2022-12-20", "waived", "T17"), ("2023-12-20", "waived", "T17"), ("2024-12-20", "required", None)]


def test_a_rolling_extension_arises_when_the_last_fell_due_or_was_done_and_the_limit_in_a_row_is_cited():
    # the first counts from the spell's start; each next one from the last one's due date, or
    # the meeting held (2021-12-20); the one required again says why
    t17 = _waiving_extensions("T17", ["813"], in_a_row=2)
    events = [*_ressourceforloeb("813"), ev("rehab-team.meeting-held", "2021-12-20")]
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T17": t17})
    extensions = [o for o in fold(events, catalog, date(2025, 1, 10)) if o.rule == "RF-rehabteam-forlaengelse"]
    assert [(o.due.isoformat(), o.arises_on.isoformat()) for o in extensions] == [
        ("2020-01-01", "2019-01-01"), ("2021-01-01", "2020-01-01"), ("2022-01-01", "2021-01-01"),
        ("2022-12-20", "2021-12-20"), ("2023-12-20", "2022-12-20"), ("2024-12-20", "2023-12-20")]
    assert "T17 waives at most 2 in a row: required again" in extensions[2].because


def test_what_another_trial_waived_does_not_count_towards_a_trials_limit_in_a_row():
    # T17 waives 2020's extension in Frederikshavn; after a move to Aarhus, T17b (the same,
    # there) has waived none yet, so 2021's is waived too, and 2022's required
    t17 = _waiving_extensions("T17", ["813"], in_a_row=1)
    t17b = _waiving_extensions("T17b", [AARHUS], in_a_row=1)
    events = _ressourceforloeb("813", ev("case.moved", "2020-06-01", municipality=AARHUS),
                               ev("target-group.assessed", "2020-06-01", trial="T17b", in_target_group=True))
    assert _extensions([t17, t17b], events, "2022-01-10") == [
        ("2020-01-01", "waived", "T17"), ("2021-01-01", "waived", "T17b"), ("2022-01-01", "required", None)]


PLACES = ["851", "219", "820", "813", "773", "210", "751", "791"]  # trial municipalities, and two in none
BENEFITS = ["dagpenge", "kontanthjaelp", "ledighedsydelse", "ressourceforloeb", "sygedagpenge", "revalidering", "foertidspension"]
DAY = st.integers(0, 4 * 365).map(lambda n: date(2017, 6, 1) + timedelta(days=n))
CHANGING = ["T2", "T6", "T10", "T11", "T14", "T16", "T17", "T18", "T19", "T22", "T23"]
EVENT = st.one_of(
    st.builds(lambda d, m: ev("case.moved", d.isoformat(), municipality=m), DAY, st.sampled_from(PLACES)),
    st.builds(lambda d, t, b: ev("target-group.assessed", d.isoformat(), trial=t, in_target_group=b),
              DAY, st.sampled_from(["T14", "T17", "T22", "T23"]), st.booleans()),
    st.builds(lambda d, r, n: ev("cadence.agreed", d.isoformat(), rule=r, interval_days=n),
              DAY, st.sampled_from(["LAB-jobsamtale", "LAB-mentor-kontakt"]), st.integers(20, 400)),
    st.builds(lambda d: ev("offer-duty.suspended", d.isoformat()), DAY),
    st.builds(lambda d: ev("offer-duty.resumed", d.isoformat()), DAY),
    st.builds(lambda d, b: started(b, d.isoformat()), DAY, st.sampled_from(BENEFITS)),
    st.builds(lambda d, b: ended(b, d.isoformat()), DAY, st.sampled_from(["dagpenge", "kontanthjaelp", "ledighedsydelse"])),
    st.builds(lambda d, o: ev("offer.started", d.isoformat(), offer=o), DAY, st.sampled_from(["mentor", "loentilskud"])),
)
PERIOD = st.tuples(DAY, st.one_of(st.none(), st.integers(0, 4 * 365)))


@settings(max_examples=300, deadline=None)
@example(AALBORG, "dagpenge", [ev("conversation.held", "2017-07-01", kind="jobsamtale"),  # issue 14.1
                               ev("cadence.agreed", "2017-07-10", rule="LAB-jobsamtale", interval_days=180),
                               ev("case.moved", "2017-08-15", municipality="791")], {}, date(2017, 12, 15))
@example(HILLEROED, "kontanthjaelp", [ended("kontanthjaelp", "2017-09-30"), started("kontanthjaelp", "2017-11-01"),  # 14.2
                                      ev("target-group.assessed", "2017-11-01", trial="T22", in_target_group=True),
                                      ev("offer-duty.suspended", "2017-11-01")], {}, date(2020, 12, 1))
@example("820", "dagpenge", [ev("cadence.agreed", "2017-06-01", rule="LAB-jobsamtale", interval_days=20),  # issue 16: an
                             ev("benefit.started", "2018-06-01", benefit="dagpenge"),  # agreement made under T2 was
                             ev("benefit.ended", "2017-06-01", benefit="dagpenge", reason="other")],  # revived by T16
         {"T2": (date(2017, 6, 1), 0)}, date(2018, 6, 1))
@example("820", "dagpenge", [started("dagpenge", "2018-06-01"),  # an agreement made under T16 in Vesthimmerland,
                             ev("cadence.agreed", "2018-07-01", rule="LAB-jobsamtale", interval_days=20),  # carried
                             ev("case.moved", "2018-07-05", municipality=AALBORG),  # on by T2 in Aalborg
                             ev("conversation.held", "2018-07-21", kind="jobsamtale")], {}, date(2018, 7, 25))
@given(st.sampled_from(PLACES), st.sampled_from(BENEFITS), st.lists(EVENT, max_size=12),
       st.dictionaries(st.sampled_from(CHANGING), PERIOD), DAY)
def test_no_trial_changes_an_obligation_on_a_day_it_does_not_apply(place, benefit, events, periods, as_of):
    trials = dict(CATALOG.trials)
    for trial, (start, length) in periods.items():
        end = None if length is None else start + timedelta(days=length)
        trials[trial] = trials[trial].model_copy(update={"period": Period(start=start, end=end)})
    catalog = Catalog(CATALOG.rules, trials)
    history = [opened(place, "2017-06-01"), started(benefit, "2017-06-01"), *events]
    timeline = Timeline.build(history, as_of)
    obligations = fold(history, catalog, as_of)
    for o in obligations:
        # whatever a trial did to it (waived, suspended, the date set by its schedule or by a
        # cadence it let be agreed) it did on a day the trial applies; a cadence agreed under
        # one trial goes on while some trial that lets it be agreed applies, every day since
        changed_by = {m.group(1) for b in o.because for m in CHANGED_BY.finditer(b)}
        agreeing = [t for t in catalog.trials.values()
                    if any(e.rule == o.rule and e.individually_agreed for e in t.effects)]
        for agreed_on, trial in (m.groups() for b in o.because for m in AGREED_UNDER.finditer(b)):
            day = date.fromisoformat(agreed_on)
            assert trial_applies(catalog.trials[trial], timeline, day), (trial, o)
            for d in _days(day, o.due):
                assert any(trial_applies(t, timeline, d) for t in agreeing), (d, o)
        if o.basis != "required":
            assert o.exemption is not None, o
        if o.exemption is not None:
            changed_by.add(o.exemption.trial)
        for trial in changed_by:
            assert trial_applies(catalog.trials[trial], timeline, o.due), (trial, o)
        if o.basis == "suspended":  # and a suspension lasts no longer than the trial applies
            lapsed = next((d for d in _days(o.due, as_of) if not trial_applies(catalog.trials[o.exemption.trial], timeline, d)), None)
            if lapsed is not None:
                assert any(p.rule == o.rule and o.due < p.due <= lapsed and p.basis == "required" for p in obligations), o


CHANGED_BY = re.compile(r"(T\d+) (?:sets|waives|suspends|modifies)")
AGREED_UNDER = re.compile(r"cadence\.agreed \S+ every \d+ days (\d{4}-\d\d-\d\d) under (T\d+)")


def _days(after: date, upto: date):
    day = after + timedelta(days=1)
    while day <= upto:
        yield day
        day += timedelta(days=1)


# the timeline the fold reads, by itself

def test_an_event_is_cited_by_its_name_its_details_in_a_fixed_order_and_its_date():
    assert describe("benefit.started", {"benefit": "ledighedsydelse", "date": "2019-01-01"}) == \
        "benefit.started ledighedsydelse 2019-01-01"
    assert describe("x", {"date": "d", "rule": "R", "trial": "T", "municipality": "851", "form": "F", "kind": "K",
                          "offer": "O", "benefit": "B"}) == "x B O K F 851 T R d"
    assert describe("target-group.assessed", {"trial": "T17", "in_target_group": True, "date": "d"}) == \
        "target-group.assessed T17 in d"
    assert describe("target-group.assessed", {"trial": "T17", "in_target_group": False, "date": "d"}) == \
        "target-group.assessed T17 out d"
    assert describe("cadence.agreed", {"rule": "LAB-jobsamtale", "interval_days": 180, "date": "d"}) == \
        "cadence.agreed LAB-jobsamtale every 180 days d"


def test_a_spell_covers_counts_and_is_cut_off_at_its_first_and_last_day():
    spell = Spell(date(2019, 1, 10), date(2019, 1, 20), "started", "ended", "job")
    assert [spell.covers(date(2019, 1, d)) for d in (9, 10, 20, 21)] == [False, True, True, False]
    assert Spell(date(2019, 1, 10), None, "s").covers(date(2030, 1, 1))
    assert spell.days_within(date(2019, 1, 1), date(2019, 1, 15)) == 6
    assert spell.days_within(date(2019, 1, 20), date(2019, 2, 1)) == 1
    assert spell.days_within(date(2019, 1, 21), date(2019, 2, 1)) == 0
    assert Spell(date(2019, 1, 10), None, "s").days_within(date(2019, 1, 1), date(2019, 1, 31)) == 22
    assert spell.clipped(None) is spell and spell.clipped(date(2019, 1, 20)) is spell
    assert spell.clipped(date(2019, 1, 9)) is None
    assert spell.clipped(date(2019, 1, 10)) == Spell(date(2019, 1, 10), date(2019, 1, 10), "started", "ended")
    assert Spell(date(2019, 1, 10), None, "s").clipped(date(2019, 1, 15)) == \
        Spell(date(2019, 1, 10), date(2019, 1, 15), "s", "case closed 2019-01-15")


def test_the_timeline_orders_events_by_their_date_then_as_stored_and_leaves_out_later_ones():
    events = [opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-03-01"),
              ev("case.moved", "2019-02-01", municipality=AALBORG), ev("case.moved", "2019-02-01", municipality=HILLEROED),
              ev("case.assigned", "2019-01-02", caseworker="cw"),
              started("dagpenge", "2019-04-01"),  # already running: no second spell
              ended("dagpenge", "2019-05-31", "job"), ended("dagpenge", "2019-06-30"),  # already ended: ignored
              ev("offer.started", "2019-03-01", offer="mentor"), ev("offer.ended", "2019-03-31", offer="mentor"),
              ev("offer-duty.suspended", "2019-03-01"), ev("offer-duty.suspended", "2019-03-05"),
              ev("offer-duty.resumed", "2019-04-01"), ev("offer-duty.resumed", "2019-04-05"),
              ev("target-group.assessed", "2019-03-01", trial="T22", in_target_group=True),
              ev("conversation.held", "2019-03-10", kind="jobsamtale"),
              ev("case.closed", "2019-07-01", reason="moved abroad"), ev("case.moved", "2019-08-01", municipality=AARHUS)]
    t = Timeline.build(events, as_of=date(2019, 7, 31))
    assert (t.opened, t.closed, t.closed_reason, t.citizen, t.caseworker, t.last_date) == (
        date(2019, 1, 1), date(2019, 7, 1), "moved abroad", "pseudonym", "cw", date(2019, 7, 1))
    assert t.municipalities == [(date(2019, 1, 1), AARHUS), (date(2019, 2, 1), AALBORG), (date(2019, 2, 1), HILLEROED)]
    # of two changes on one day the later one counts
    assert t.responsibility() == [(date(2019, 1, 1), date(2019, 2, 1), AARHUS), (date(2019, 2, 1), None, HILLEROED)]
    assert [t.municipality_on(date(2018, 12, 31)), t.municipality_on(date(2019, 1, 31)),
            t.municipality_on(date(2019, 2, 1))] == [None, AARHUS, HILLEROED]
    assert t.spells("dagpenge") == [Spell(date(2019, 3, 1), date(2019, 5, 31), "benefit.started dagpenge 2019-03-01",
                                          "benefit.ended dagpenge 2019-05-31", "job")]
    assert t.spells("mentor") == [Spell(date(2019, 3, 1), date(2019, 3, 31), "offer.started mentor 2019-03-01",
                                        "offer.ended mentor 2019-03-31")]
    assert t.spells("kontanthjaelp") == []
    assert t.suspensions == [Spell(date(2019, 3, 1), date(2019, 4, 1), "offer-duty.suspended 2019-03-01",
                                   "offer-duty.resumed 2019-04-01")]
    assert [t.in_target_group("T22", date(2019, d // 100, d % 100)) for d in (228, 301)] == [False, True]
    assert t.in_target_group("T17", date(2019, 3, 1)) is False
    assert t.occurrences[("conversation.held", "jobsamtale")] == [date(2019, 3, 10)]
    assert t.occurrences[("case.moved", None)] == [date(2019, 2, 1), date(2019, 2, 1)]
    # a spell still running when the case closed ends with it
    running = Timeline.build([opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-01-01"),
                              ev("case.closed", "2019-02-01", reason="r")])
    assert running.spells("dagpenge") == [Spell(date(2019, 1, 1), date(2019, 2, 1), "benefit.started dagpenge 2019-01-01",
                                                "case closed 2019-02-01")]
    assert Timeline.build(events, as_of=date(2019, 1, 31)).municipalities == [(date(2019, 1, 1), AARHUS)]
    # a start posted after the end it precedes (back-dated) still makes one spell that ends
    back_dated = Timeline.build([opened(AARHUS, "2019-01-01"), ended("dagpenge", "2019-05-31"),
                                 started("dagpenge", "2019-03-01")])
    assert [(s.start, s.end) for s in back_dated.spells("dagpenge")] == [(date(2019, 3, 1), date(2019, 5, 31))]
    assert back_dated.last_date == date(2019, 5, 31)
    agreed = Timeline.build([opened(AALBORG, "2019-01-01"),
                             ev("cadence.agreed", "2019-01-10", rule="LAB-jobsamtale", interval_days=180)])
    assert agreed.cadences == {"LAB-jobsamtale": [
        Cadence(date(2019, 1, 10), 180, "cadence.agreed LAB-jobsamtale every 180 days 2019-01-10")]}


def test_a_trial_is_cited_with_what_it_does_where_and_its_period():
    t11 = CATALOG.trials["T11"]
    t = Timeline.build(ly_from_2019(AALBORG))
    found = applying([t11], "LAS-74c", t, date(2020, 1, 1))
    assert found.cite(t, date(2020, 1, 1)) == \
        "T11 waives LAS-74c on 2020-01-01: municipality 851 in T11 2018-07-01..2022-12-31"
    open_ended = CATALOG.trials["T17"]
    assert open_ended.period.end is None
    assert applying([open_ended], "RF-rehabteam-forlaengelse", Timeline.build([opened("813", "2019-01-01")]),
                    date(2019, 6, 1)) is None  # assessed trial, citizen not assessed
    t17 = Timeline.build(_ressourceforloeb("813"))
    assert applying([open_ended], "RF-rehabteam-forlaengelse", t17, date(2019, 6, 1)).cite(t17, date(2019, 6, 1)) == \
        "T17 waives RF-rehabteam-forlaengelse on 2019-06-01: municipality 813 in T17 2018-07-01.."
    # every trial that applies, in the order given; none outside its period or municipalities
    t9 = CATALOG.trials["T9"]
    assert [a.trial.id for a in all_applying([open_ended, t9], "RF-rehabteam-forlaengelse", t17, date(2019, 6, 1))] == \
        ["T17", "T9"]
    since_2018 = Timeline.build([opened(AALBORG, "2018-01-01")])
    assert [trial_applies(t11, since_2018, d) for d in (date(2018, 6, 30), date(2018, 7, 1), date(2022, 12, 31),
                                                        date(2023, 1, 1))] == [False, True, True, False]


def test_the_days_two_spells_share_end_with_the_first_to_end_and_cite_both():
    # a rule counted only while another benefit runs too (FP-loentilskud-opfoelgning: while on
    # foertidspension) counts the days both spells cover
    wage = Spell(date(2019, 3, 1), date(2019, 8, 31), "offer.started loentilskud", "offer.ended loentilskud")
    pension = Spell(date(2019, 1, 1), None, "benefit.started foertidspension")
    assert _intersection(wage, pension) == Spell(date(2019, 3, 1), date(2019, 8, 31),
                                                 "offer.started loentilskud; benefit.started foertidspension",
                                                 "offer.ended loentilskud")
    assert _intersection(pension, wage).end == date(2019, 8, 31)
    ended = Spell(date(2019, 1, 1), date(2019, 3, 1), "benefit.started foertidspension", "benefit.ended foertidspension")
    assert _intersection(wage, ended) == Spell(date(2019, 3, 1), date(2019, 3, 1),  # one day in common
                                               "offer.started loentilskud; benefit.started foertidspension",
                                               "offer.ended loentilskud")
    assert _intersection(Spell(date(2019, 3, 2), None, "s"), ended) is None
    assert _intersection(Spell(date(2019, 3, 2), None, "s"), pension).end is None
    assert _intersection(Spell(date(2019, 1, 1), None, "a"), ended).ended_by == "benefit.ended foertidspension"


def test_a_reassessment_cites_the_last_three_spells_started_by_its_due_date_and_the_months_required():
    # 31 + 31 + 31 days, then 272 from 1 July reach 365 on 28 March 2020: due the 29th, the day a
    # fifth spell starts
    events = [opened(AARHUS, "2019-01-01")]
    for start, end in (("2019-01-01", "2019-01-31"), ("2019-03-01", "2019-03-31"), ("2019-05-01", "2019-05-31"),
                       ("2019-07-01", "2020-03-28")):
        events += [started("ledighedsydelse", start), ended("ledighedsydelse", end)]
    events.append(started("ledighedsydelse", "2020-03-29"))
    [first, *_] = of("LAS-74c", events, "2020-04-01")
    assert first.due == date(2020, 3, 29)
    assert first.because == ("benefit.started ledighedsydelse 2019-05-01", "benefit.started ledighedsydelse 2019-07-01",
                             "benefit.started ledighedsydelse 2020-03-29",
                             "LAS-74c.required_months = 12 (in force from 2013-01-01; LAS § 74 c, stk. 1)")


def lae265(day: str):
    return ev("medical-certificate.obtained", day, kind="LÆ265")


def test_a_le265_counts_from_three_months_before_the_decision_and_for_one_decision_only():
    # decided 2019-01-01 and 2019-06-01: certificates count from 2018-10-01 and 2019-03-01 on
    events = [opened(AARHUS, "2018-06-01"), lae265("2018-09-30"), lae265("2018-10-01"), lae265("2019-02-28"),
              lae265("2019-03-01"), started("revalidering", "2019-01-01"), ended("revalidering", "2019-06-01")]
    start, end = of("REV-LAE265", events, "2019-07-01")
    assert (start.due, start.done_on, end.due, end.done_on) == \
        (date(2019, 1, 1), date(2018, 10, 1), date(2019, 6, 1), date(2019, 3, 1))
    assert "REV-LAE265.due_after = 0d (in force from 2015-01-01; LAS kap. 6)" in start.because
    # one certificate within both lookbacks is used by the first decision only
    events = [opened(AARHUS, "2018-06-01"), lae265("2018-12-20"), started("revalidering", "2019-01-01"),
              ended("revalidering", "2019-03-15")]
    start, end = of("REV-LAE265", events, "2019-07-01")
    assert (start.done_on, end.done_on, end.status(date(2019, 7, 1))) == (date(2018, 12, 20), None, "overdue")


def test_a_once_per_spell_duty_due_after_the_spell_ended_or_under_a_gap_in_the_rule_is_still_due_at_the_end():
    # REV-LAE265 as if due a month into revalidering, with no value in March 2018
    rule = CATALOG.rules["REV-LAE265"].model_dump()
    rule["parameters"]["due_after"]["values"] = {
        date(2015, 1, 1): {"value": {"revalidering": "1m"}, "reference": "a"},
        date(2018, 3, 1): {"value": None, "reference": "b"},
        date(2018, 4, 1): {"value": {"revalidering": "1m"}, "reference": "c"}}
    catalog = Catalog({**CATALOG.rules, "REV-LAE265": Rule.model_validate(rule)}, CATALOG.trials)
    short = [opened(AARHUS, "2017-01-01"), started("revalidering", "2017-01-01"), ended("revalidering", "2017-01-20")]
    gap = [opened(AARHUS, "2018-02-15"), started("revalidering", "2018-02-15"), ended("revalidering", "2018-05-31")]
    for events, end in ((short, date(2017, 1, 20)), (gap, date(2018, 5, 31))):
        found = [o for o in fold(events, catalog, date(2019, 1, 1)) if o.rule == "REV-LAE265"]
        assert [o.due for o in found] == [end]  # the one a month in is not (after the end; no value on it)


def tilbud_in_t22(*more):
    return [opened(HILLEROED, "2018-01-01"), started("kontanthjaelp", "2018-01-01"),
            ev("target-group.assessed", "2018-02-01", trial="T22", in_target_group=True), *more]


def test_t22_in_the_target_group_without_a_suspension_leaves_the_offer_required():
    [due] = of("LAB-tilbud", tilbud_in_t22(), "2018-10-01")
    assert (due.due, due.basis, due.exemption, due.status(date(2018, 10, 1))) == (date(2018, 4, 1), "required", None, "overdue")


def test_a_suspended_offer_due_again_arises_on_the_suspended_due_date_and_is_done_by_the_next_offer():
    events = tilbud_in_t22(ev("offer-duty.suspended", "2018-02-01"), ev("offer-duty.resumed", "2018-09-01"),
                           ev("offer.started", "2018-09-10", offer="virksomhedspraktik"))
    suspended, resumed = of("LAB-tilbud", events, "2018-10-01")
    assert (suspended.due, suspended.arises_on, suspended.basis, suspended.done_on) == \
        (date(2018, 4, 1), date(2018, 1, 1), "suspended", None)
    assert (resumed.due, resumed.arises_on, resumed.done_on, resumed.status(date(2018, 10, 1))) == \
        (date(2018, 9, 1), date(2018, 4, 1), date(2018, 9, 10), "done")
    assert resumed.because[:2] == ("benefit.started kontanthjaelp 2018-01-01", "offer-duty.resumed 2018-09-01: due again")


def test_a_suspension_that_outlasts_t22_makes_the_offer_due_again_when_the_trial_ends():
    [_, resumed] = of("LAB-tilbud", tilbud_in_t22(ev("offer-duty.suspended", "2018-02-01")), "2020-08-01")
    assert resumed.due == date(2020, 7, 2)
    assert resumed.because[1] == "T22 no longer applies from 2020-07-02: due again"


def test_an_offer_resumed_on_or_after_the_spell_ended_is_due_again_only_on_the_last_day():
    # resumed the day the spell ends: due again that day; the day after: nothing more is due
    for resumed_on, spell_end, dues_expected in (("2018-09-01", "2018-09-01", ["2018-04-01", "2018-09-01"]),
                                                 ("2018-09-02", "2018-09-01", ["2018-04-01"])):
        events = tilbud_in_t22(ev("offer-duty.suspended", "2018-02-01"), ev("offer-duty.resumed", resumed_on),
                               ended("kontanthjaelp", spell_end))
        assert dues(of("LAB-tilbud", events, "2018-12-01")) == dues_expected, resumed_on


def test_an_offer_counts_once_the_one_late_for_a_resumed_duty_not_for_the_next_spell_too():
    # kontanthjælp suspended from the start and resumed 2018-09-01, then uddannelseshjælp from
    # 2018-10-01 (an offer due 2018-11-01): the offer of 2018-10-15 is the resumed duty's
    events = tilbud_in_t22(ev("offer-duty.suspended", "2018-02-01"), ev("offer-duty.resumed", "2018-09-01"),
                           ended("kontanthjaelp", "2018-09-30"), started("uddannelseshjaelp", "2018-10-01"),
                           ev("offer.started", "2018-10-15", offer="virksomhedspraktik"))
    found = of("LAB-tilbud", events, "2018-12-01")
    assert [(o.due, o.basis, o.done_on) for o in found] == [
        (date(2018, 4, 1), "suspended", None), (date(2018, 9, 1), "required", date(2018, 10, 15)),
        (date(2018, 11, 1), "required", None)]


def test_a_suspended_decision_resumed_leaves_the_next_decision_of_the_spell_due():
    # a trial written as T22 is, suspending REV-LAE265 (due at the start and at the end of revalidering)
    document = yaml.safe_load((CATALOG_DIR / "trials" / "T22.yaml").read_text(encoding="utf-8"))
    document.update(id="T99")
    document["effects"] = [{**document["effects"][0], "rule": "REV-LAE265"}]
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T99": Trial.model_validate(document)})
    events = [opened(HILLEROED, "2017-12-01"), ev("target-group.assessed", "2017-12-01", trial="T99", in_target_group=True),
              ev("offer-duty.suspended", "2017-12-15"), ev("offer-duty.resumed", "2018-03-01"),
              started("revalidering", "2018-01-01"), ended("revalidering", "2018-06-30")]
    found = [o for o in fold(events, catalog, date(2018, 8, 1)) if o.rule == "REV-LAE265"]
    assert [(o.due, o.basis) for o in found] == [
        (date(2018, 1, 1), "suspended"), (date(2018, 3, 1), "required"), (date(2018, 6, 30), "required")]


# Which trials apply to a case on which dates (the case page shows it), against hand-computed
# periods: a trial applies while its period runs, the case is the responsibility of one of its
# municipalities and, for a trial with an assessed target group, the citizen is assessed into it;
# from the case's opening to its closing day. T11: Aalborg (851), Jammerbugt (849), Thisted (787),
# Rebild (840), 1 July 2018 to 31 December 2022, every citizen. T12: Jammerbugt (849) and
# Frederikshavn (813), from 1 July 2018, open-ended, those assessed into its target group.

def periods(*events, as_of: date | None = None) -> list[tuple[str, date, date | None]]:
    trials = [CATALOG.trials["T11"], CATALOG.trials["T12"]]
    return [(trial.id, start, end) for trial, start, end in trial_periods(trials, Timeline.build(events, as_of))]


def test_a_trial_applies_from_the_opening_or_the_trials_start_to_its_end():
    assert periods(opened(AALBORG, "2019-01-02")) == [("T11", date(2019, 1, 2), date(2022, 12, 31))]
    assert periods(opened(AALBORG, "2018-01-01")) == [("T11", date(2018, 7, 1), date(2022, 12, 31))]
    assert periods(opened(AALBORG, "2018-07-01")) == [("T11", date(2018, 7, 1), date(2022, 12, 31))]
    assert periods(opened(AALBORG, "2023-01-01")) == []  # opened the day after it ended
    assert periods(opened(AARHUS, "2019-01-02")) == []  # Aarhus is in neither


def test_a_trial_applies_until_a_move_out_again_after_the_move_back_and_on_the_closing_day():
    moves = [opened(AALBORG, "2019-01-02"), ev("case.moved", "2020-06-01", municipality=AARHUS),
             ev("case.moved", "2021-01-01", municipality="787")]
    assert periods(*moves) == [("T11", date(2019, 1, 2), date(2020, 5, 31)), ("T11", date(2021, 1, 1), date(2022, 12, 31))]
    # as of the day before the move back, the move back is not known yet
    assert periods(*moves, as_of=date(2020, 12, 31)) == [("T11", date(2019, 1, 2), date(2020, 5, 31))]
    closed = [opened(AALBORG, "2019-01-02"), ev("case.closed", "2020-03-01", reason="job")]
    assert periods(*closed) == [("T11", date(2019, 1, 2), date(2020, 3, 1))]
    one_day = [opened(AALBORG, "2019-01-02"), ev("case.closed", "2019-01-02", reason="job")]
    assert periods(*one_day) == [("T11", date(2019, 1, 2), date(2019, 1, 2))]


def test_an_assessed_target_group_applies_from_the_assessment_in_to_the_day_before_the_one_out():
    case = [opened("849", "2019-01-02"),
            ev("target-group.assessed", "2019-03-01", trial="T12", in_target_group=True),
            ev("target-group.assessed", "2019-09-01", trial="T12", in_target_group=False)]
    assert periods(*case) == [("T11", date(2019, 1, 2), date(2022, 12, 31)), ("T12", date(2019, 3, 1), date(2019, 8, 31))]
    assert periods(*case[:2]) == [("T11", date(2019, 1, 2), date(2022, 12, 31)), ("T12", date(2019, 3, 1), None)]


# rules and trials the catalog does not have, but its model allows

def _rule(schedule: str, values: dict | None = None, *, rule_id: str = "X-samtale",
          applies_to: str = "dagpenge") -> Rule:
    """A rule about one benefit; `values` its schedule by date (None: no dated parameters)."""
    parameters = {} if values is None else {"schedule": {"description": "d", "values": {
        date.fromisoformat(day): {"value": {applies_to: value}, "reference": f"ref {day}"}
        for day, value in values.items()}}}
    return Rule.model_validate({"id": rule_id, "title": "Samtale", "kind": "obligation", "legal_reference": "§ X",
                                "confidence": "H", "schedule": schedule, "applies_to": [applies_to],
                                "completed_by": {"event": "conversation.held", "kind": "x"}, "parameters": parameters})


def _modifying(effect: dict, start: str, end: str | None = None) -> Trial:
    """A trial in Aarhus for every citizen there, with one effect on X-samtale."""
    return Trial.model_validate({"id": "T97", "title": "Forsøg", "seeds": ["000"], "municipalities": [AARHUS],
                                 "period": {"start": start, "end": end}, "target_group": "all",
                                 "effects": [{"rule": "X-samtale", "effect": "modify", **effect}]})


def _x(catalog: Catalog, events, as_of: str) -> list[tuple[str, str | None]]:
    return [(o.due.isoformat(), o.exemption and o.exemption.trial)
            for o in fold(events, catalog, date.fromisoformat(as_of)) if o.rule == "X-samtale"]


def held(day: str):
    return ev("conversation.held", day, kind="x")


def dagpenge_in_aarhus(*more):
    return [opened(AARHUS, "2018-01-01"), started("dagpenge", "2018-01-01"), *more]


def test_a_schedule_with_no_fixed_first_dates_rolls_from_the_spells_start():
    # every 3 months: from the start (2019-04-01), then from the talk held 2019-03-20 (2019-06-20);
    # that one open, the next depends on when it is held
    catalog = Catalog({"X-samtale": _rule("recurring", {"2015-01-01": {"then_every": "3m"}})}, {})
    events = [opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-01-01"), held("2019-03-20")]
    found = fold(events, catalog, date(2019, 7, 1))
    assert [(o.due.isoformat(), o.done_on) for o in found] == [("2019-04-01", date(2019, 3, 20)), ("2019-06-20", None)]


def test_a_rule_with_an_unobserved_schedule_or_no_dated_values_yields_nothing():
    # unobserved: the fold has no generator for it; no values: always in force, nothing to count by
    for rule in (_rule("unobserved", rule_id="U"), _rule("cumulative", rule_id="C", applies_to="ledighedsydelse"),
                 _rule("recurring", rule_id="R")):
        catalog = Catalog({**CATALOG.rules, rule.id: rule}, CATALOG.trials)
        for events in ([opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-01-01")], ly_from_2019(AARHUS)):
            assert fold(events, catalog, date(2021, 1, 1)) == fold(events, CATALOG, date(2021, 1, 1)), rule.id


def test_a_recurring_rule_lists_the_occurrences_of_every_spell():
    # the 2015 jobsamtale schedule for dagpenge (1m, 2m, ... from each spell's start): the first
    # spell has 2019-02-01 and 2019-03-01 (2019-04-01 is after it ended), the second 2019-07-01
    events = [opened(AARHUS, "2019-01-01"), started("dagpenge", "2019-01-01"), ended("dagpenge", "2019-03-15"),
              started("dagpenge", "2019-06-01")]
    assert dues(of("LAB-jobsamtale", events, "2019-06-15")) == ["2019-02-01", "2019-03-01", "2019-07-01"]


def test_a_spell_running_when_the_rule_took_effect_counts_from_then_to_its_end_and_a_later_one_from_its_start():
    # LAS § 74 c from 2013-01-01: 90 days of the 2012 spell (Jan-Mar 2013), then 275 of the one
    # from 2013-06-01 (June 30, July-Dec 184, Jan 31, Feb 28, 2 March): the 365th day is
    # 2014-03-02, due the day after
    events = [opened(AARHUS, "2012-06-01"), started("ledighedsydelse", "2012-06-01"),
              ended("ledighedsydelse", "2013-03-31"), started("ledighedsydelse", "2013-06-01")]
    [first, *_] = of("LAS-74c", events, "2014-03-10")
    assert first.due == date(2014, 3, 3)
    assert first.because == ("benefit.started ledighedsydelse 2012-06-01; "
                             "LAS-74c in force from 2013-01-01: counted from then",
                             "benefit.started ledighedsydelse 2013-06-01",
                             "LAS-74c.required_months = 12 (in force from 2013-01-01; LAS § 74 c, stk. 1)")


def test_a_spell_that_starts_the_day_the_rule_took_effect_is_cited_as_it_started():
    # the spell before ended 2012-12-31, before LAS § 74 c existed: it counts not at all; the
    # one from 2013-01-01 has its 365th day on 2013-12-31
    events = [opened(AARHUS, "2012-06-01"), started("ledighedsydelse", "2012-06-01"),
              ended("ledighedsydelse", "2012-12-31"), started("ledighedsydelse", "2013-01-01")]
    [first, *_] = of("LAS-74c", events, "2014-01-10")
    assert first.due == date(2014, 1, 1)
    assert first.because == ("benefit.started ledighedsydelse 2013-01-01",
                             "LAS-74c.required_months = 12 (in force from 2013-01-01; LAS § 74 c, stk. 1)")


def test_a_spell_running_when_the_rule_took_effect_is_due_at_its_end_cited_by_the_event_that_ended_it():
    # REV-LAE265 from 2015-01-01: revalidering from mid-2014 is decided on that day, and at its end
    events = [opened(AARHUS, "2014-06-01"), started("revalidering", "2014-06-01"), ended("revalidering", "2015-06-30")]
    start, end = of("REV-LAE265", events, "2015-08-01")
    assert (start.due, end.due) == (date(2015, 1, 1), date(2015, 6, 30))
    assert end.because == ("benefit.ended revalidering 2015-06-30",
                           "REV-LAE265.due_after = 0d (in force from 2015-01-01; LAS kap. 6)")


def test_a_trials_schedule_is_cited_only_on_the_occurrences_where_it_gives_another_date_than_the_laws():
    # the law: 1, 2 and 3 months in, then every 3 months; T97: 1 and 2 months in, then every 2.
    # 2018-02-01 and 2018-03-01 are the law's dates too; then the law's is 2018-04-01, T97's two
    # months after the talk of 2018-03-01: 2018-05-01
    law = _rule("recurring", {"2015-01-01": {"first": ["1m", "2m", "3m"], "then_every": "3m"}})
    t97 = _modifying({"parameter": "schedule", "value": {"dagpenge": {"first": ["1m", "2m"], "then_every": "2m"}}},
                     "2018-01-01")
    catalog = Catalog({"X-samtale": law}, {"T97": t97})
    events = dagpenge_in_aarhus(held("2018-02-01"), held("2018-03-01"))
    assert _x(catalog, events, "2018-03-15") == [("2018-02-01", None), ("2018-03-01", None), ("2018-05-01", "T97")]


def _agreeable(schedule: dict, until: str) -> Catalog:
    """X-samtale under `schedule`, and T97 letting its cadence be agreed in 2018 until `until`."""
    return Catalog({"X-samtale": _rule("recurring", {"2015-01-01": schedule})},
                   {"T97": _modifying({"individually_agreed": True}, "2018-01-01", until)})


def agreed(day: str, interval_days: int):
    return ev("cadence.agreed", day, rule="X-samtale", interval_days=interval_days)


def test_a_fixed_date_on_the_day_an_agreed_cadence_ends_is_due_although_the_last_one_is_open():
    # agreed every 30 days: 2018-01-01 + 30 = 2018-01-31 (open); the next, 30 days on
    # (2018-03-02), falls after T97 ended (2018-02-28): the law restarts on 2018-03-01, which is
    # its fixed date 2 months in, listed as fixed dates are though the last one is open
    catalog = _agreeable({"first": ["1m", "2m"], "then_every": "1m"}, "2018-02-28")
    assert _x(catalog, dagpenge_in_aarhus(agreed("2018-01-01", 30)), "2018-02-15") == [("2018-01-31", "T97"),
                                                                                     ("2018-03-01", None)]


def test_a_rolling_date_before_an_agreed_cadence_ended_is_due_the_day_it_ended_once_the_last_one_is_held():
    # agreed every 100 days: 2018-01-01 + 100 (Jan 31, Feb 28, Mar 31, 10) = 2018-04-11; the
    # next, 100 days on (2018-07-20, or later from a talk) falls after T97 ended (2018-06-30):
    # the law's month from the last talk (2018-05-11, or 2018-05-15 from the talk of 2018-04-15)
    # comes before the law restarts on 2018-07-01: due that day. While 2018-04-11 is open, the
    # rolling date depends on when it is held: not listed yet
    catalog = _agreeable({"first": ["1m", "2m"], "then_every": "1m"}, "2018-06-30")
    events = dagpenge_in_aarhus(agreed("2018-01-01", 100))
    assert _x(catalog, events, "2018-04-20") == [("2018-04-11", "T97")]
    assert _x(catalog, [*events, held("2018-04-15")], "2018-04-20") == [("2018-04-11", "T97"), ("2018-07-01", None)]


def test_a_rolling_date_counted_from_an_early_talk_does_not_list_the_fixed_one_after_it_again():
    # the law: 6 months in (2018-07-01), then a month after the last talk. The talk of
    # 2018-01-10 does 2018-07-01 early; from it a month on is 2018-02-10, where the cadence agreed
    # on 2018-02-01 (+180 days: 2018-07-31) applies; T97 ends before that (2018-06-15), so the law
    # restarts on 2018-06-16, the month from the talk long past: due that day. 2018-07-01 is
    # listed once.
    catalog = _agreeable({"first": ["6m"], "then_every": "1m"}, "2018-06-15")
    events = dagpenge_in_aarhus(held("2018-01-10"), agreed("2018-02-01", 180))
    assert _x(catalog, events, "2018-07-02") == [("2018-06-16", None), ("2018-07-01", None)]


def test_a_spell_that_ends_the_day_the_rule_took_effect_counts_for_that_day():
    # REV-LAE265 from 2015-01-01: revalidering from mid-2014 ending on that very day is a
    # one-day spell under the rule, decided at its start and at its end, both that day; one
    # ending the day before lies wholly before the rule: nothing due
    on_the_day = [opened(AARHUS, "2014-06-01"), started("revalidering", "2014-06-01"), ended("revalidering", "2015-01-01")]
    start, end = of("REV-LAE265", on_the_day, "2015-02-01")
    cited = "REV-LAE265.due_after = 0d (in force from 2015-01-01; LAS kap. 6)"
    assert (start.due, start.because) == (date(2015, 1, 1), (
        "benefit.started revalidering 2014-06-01; REV-LAE265 in force from 2015-01-01: counted from then", cited))
    assert (end.due, end.because) == (date(2015, 1, 1), ("benefit.ended revalidering 2015-01-01", cited))
    day_before = [opened(AARHUS, "2014-06-01"), started("revalidering", "2014-06-01"), ended("revalidering", "2014-12-31")]
    assert of("REV-LAE265", day_before, "2015-02-01") == []


def test_a_spell_counted_from_the_day_the_rule_took_effect_keeps_its_end_and_why_it_ended():
    # LAS § 74 c from 2013-01-01: only the start of the spell running then changes; a spell
    # from that day on is the same spell
    rule = CATALOG.rules["LAS-74c"]
    running = Spell(date(2012, 6, 1), date(2013, 3, 31), "benefit.started ledighedsydelse 2012-06-01",
                    "benefit.ended ledighedsydelse 2013-03-31", "job")
    later = Spell(date(2013, 6, 1), None, "benefit.started ledighedsydelse 2013-06-01")
    assert _in_force(rule, [running, later]) == [
        Spell(date(2013, 1, 1), date(2013, 3, 31),
              "benefit.started ledighedsydelse 2012-06-01; LAS-74c in force from 2013-01-01: counted from then",
              "benefit.ended ledighedsydelse 2013-03-31", "job"),
        later]
