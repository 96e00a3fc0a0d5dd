"""Issue 15.3: trials whose effects change the same rule for the same citizens at the same time
(`evaluation.SHARED_RULE`). Each is credited with what its own effect would do, and each row that
counts a shared obligation names the other trial, with how many are shared on a group's waived
obligations and hours freed. Hand-computed populations (the reporting store in SQLite in
memory):

- two trials waiving LÆ285 (SDP-LAE285, due 8 weeks into a sygedagpenge spell, 20 minutes):
  T6 (Morsø 773, Jammerbugt 849, ...) and a test trial T25 that waives it in Jammerbugt only. 6
  citizens in 849 and 5 in 773 start sygedagpenge on 1 February 2019 and are still on it on
  29 March (the due date); 2 more in 849 end on 1 March (nothing due); 5 in Aarhus (751) are the
  comparison group. The fold names T6 (first in the catalog) for all 11 waivers.
- the real catalog's overlap: T17 waives one rehab-team extension in a row (target group:
  those assessed into it) and T9 modifies the same rule (nothing computable) in Jammerbugt. 6
  citizens there on ressourceforløb from 1 August 2018, assessed into T17: due 1 August 2019
  (waived by T17) and 1 August 2020 (required again: one in a row)."""

from datetime import date

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting import form
from services.reporting.evaluation import evaluate, periods_for, sharing
from services.reporting.facts import Facts
from services.reporting.store import ReportingStore
from shared.catalog import Catalog, Trial
from shared.stream import Delivery
from tests.events import benefit_ended, benefit_started, event, opened
from tests.unit.test_evaluation import CATALOG, TODAY, stream_events

T25 = CATALOG.trials["T6"].model_copy(update={"id": "T25", "title": "Test: LÆ285 fritaget i Jammerbugt",
                                               "municipalities": ["849"]})
TWO_WAIVERS = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": T25})


def stored(cases: list[list[dict]], catalog: Catalog) -> Facts:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, catalog, today=lambda: TODAY)
    events = [e for documents in cases for e in stream_events(documents)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    return Facts.load(engine)


def citizen(case_id: str, municipality: str, serial: int, benefit: str, start: str, end: str | None,
            *extra: dict) -> list[dict]:
    documents = [opened(case_id, municipality=municipality, date=start, cpr=f"0101{60 + serial % 40:02d}-{1000 + serial}"),
                 benefit_started(case_id, benefit=benefit, date=start), *extra]
    return documents + ([benefit_ended(case_id, benefit=benefit, date=end)] if end else [])


def by_key(rows) -> dict:
    return {(r.metric, r.rule, r.group, r.period, r.municipality): r for r in rows}


@pytest.fixture(scope="module")
def sickness() -> Facts:
    cases, serial = [], 0
    for municipality, count, end in (("849", 6, "2019-06-30"), ("773", 5, "2019-06-30"), ("849", 2, "2019-03-01"),
                                     ("751", 5, "2019-06-30")):
        for _ in range(count):
            cases.append(citizen(f"s-{serial}", municipality, serial, "sygedagpenge", "2019-02-01", end))
            serial += 1
    return stored(cases, TWO_WAIVERS)


def evaluated(facts: Facts, catalog: Catalog, trial: str, comparison: list[str]) -> dict:
    t = catalog.trials[trial]
    periods = periods_for(t, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    return by_key(evaluate(facts, catalog, t, periods, comparison))


def test_a_waiver_two_trials_would_each_make_is_credited_to_each_and_flagged(sickness):
    t6 = evaluated(sickness, TWO_WAIVERS, "T6", ["751"])
    waived, hours = ("obligations_waived", "SDP-LAE285", "trial", "trial"), ("caseworker_hours_freed", None, "trial", "trial")
    assert (t6[(*waived, None)].value, t6[(*waived, None)].n) == (11, 11)
    assert (t6[(*waived, "849")].value, t6[(*waived, "773")].value) == (6, 5)
    assert t6[(*hours, None)].value == pytest.approx(11 * 20 / 60, abs=0.01)
    # 6 of the 11 shared with T25 (6 citizens; the other 5 are 5 citizens: the number is published)
    assert t6[(*waived, None)].shared_with == (("T25", 6),) and t6[(*hours, None)].shared_with == (("T25", 6),)
    assert t6[(*waived, "849")].shared_with == (("T25", None),)  # a municipality's cell: named, not counted
    assert t6[(*waived, "773")].shared_with == ()  # T25 does not run in Morsø
    assert t6[("obligations_required", "SDP-LAE285", "trial", "trial", None)].value == 0
    assert t6[(*waived, None)].as_json()["shared_with"] == {"T25": 6}

    t25 = evaluated(sickness, TWO_WAIVERS, "T25", ["751"])
    # the fold named T6 for them, yet T25's own waiver was in force: credited to T25 as well
    assert (t25[(*waived, None)].value, t25[(*waived, None)].n) == (6, 6)
    assert t25[(*hours, None)].value == pytest.approx(6 * 20 / 60, abs=0.01)
    assert t25[(*waived, None)].shared_with == (("T6", 6),) and t25[(*hours, None)].shared_with == (("T6", 6),)
    assert t25[("obligations_required", "SDP-LAE285", "trial", "trial", None)].value == 0
    assert t25[("obligations_required_ordinary", "SDP-LAE285", "trial", "trial", None)].value == 6
    assert t25[("obligations_required", "SDP-LAE285", "comparison", "trial", None)].value == 5
    assert t25[("obligations_waived", "SDP-LAE285", "comparison", "trial", None)].value == 0


def test_a_shared_count_that_would_reveal_fewer_than_5_citizens_is_not_published(sickness):
    """With 4 in Morsø the 6 shared waivers of T6's total leave 4 citizens' waivers: named only."""
    cases = []
    for serial, municipality in enumerate(["849"] * 6 + ["773"] * 4):
        cases.append(citizen(f"s-{serial}", municipality, serial, "sygedagpenge", "2019-02-01", "2019-06-30"))
    t6 = evaluated(stored(cases, TWO_WAIVERS), TWO_WAIVERS, "T6", ["751"])
    total = t6[("obligations_waived", "SDP-LAE285", "trial", "trial", None)]
    assert (total.value, total.shared_with) == (10, (("T25", None),))
    assert t6[("obligations_waived", "SDP-LAE285", "trial", "trial", "773")].suppressed


def test_t17s_waivers_are_not_t9s_savings_and_each_names_the_other():
    cases = [citizen(f"r-{i}", "849", i, "ressourceforloeb", "2018-08-01", None,
                     event("target-group.assessed", f"r-{i}", trial="T17", in_target_group=True, date="2018-08-01"))
             for i in range(6)]
    facts = stored(cases, CATALOG)
    rule = "RF-rehabteam-forlaengelse"
    t17 = evaluated(facts, CATALOG, "T17", ["751"])
    assert t17[("obligations_waived", rule, "trial", "trial", None)].value == 6  # 1 August 2019
    assert t17[("obligations_waived", rule, "trial", "trial", None)].shared_with == (("T9", 6),)
    assert t17[("caseworker_hours_freed", None, "trial", "trial", None)].value == pytest.approx(6 * 1.5)
    assert t17[("obligations_required", rule, "trial", "trial", None)].value == 6  # 1 August 2020
    assert t17[("obligations_required_ordinary", rule, "trial", "trial", None)].value == 12

    t9 = evaluated(facts, CATALOG, "T9", ["751"])
    # under T9's own effect (which changes nothing computable) all 12 are required: T17's
    # waivers are not T9's savings, and the row says T17 changes some of them
    required = t9[("obligations_required", rule, "trial", "trial", None)]
    assert (required.value, required.shared_with) == (12, (("T17", None),))
    assert not any(key[0] == "obligations_waived" for key in t9)  # T9 waives nothing: no such rule to count
    assert t9[("caseworker_hours_freed", None, "trial", "trial", None)].value == 0


def test_the_form_says_which_numbers_are_shared(sickness):
    t = TWO_WAIVERS.trials["T25"]
    periods = periods_for(t, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    answer = form.Answer(t, TWO_WAIVERS, periods, ["751"], {"chosen_by": "request", "contaminated": {}},
                         evaluate(sickness, TWO_WAIVERS, t, periods, ["751"]), [])
    page = form.markdown(answer)
    assert ("Delt med andre forsøg: Pligter fritaget af forsøget, SDP-LAE285 (forsøgskommuner, under forsøget) tæller "
            "pligter, som også T6 (6 pligter) ændrer for de samme borgere på samme tid; de tilskrives hvert af "
            "forsøgene og er ikke dette forsøgs virkning alene.") in page
    assert "Delt med andre forsøg: Frigjorte sagsbehandlertimer (forsøgskommuner, under forsøget)" in page
    assert "Valgt af brugeren" in page and "Advarsel" not in page


def test_only_trials_that_change_the_same_rule_share_it_a_permission_is_no_change():
    """`sharing`, at its edges: a trial that only permits LÆ285 (T26) shares nothing with T6,
    which waives it, either way round; nor does one that permits LÆ285 and waives another rule
    (T27, SDP-opfoelgning); a second waiver of LÆ285 (T25) does share it. The real catalog has
    no permission on a rule another trial changes, so these trials are made for the test."""
    def made(trial_id: str, *effects: tuple[str, str]) -> Trial:
        return Trial.model_validate({**CATALOG.trials["T6"].model_dump(), "id": trial_id, "title": f"Test: {trial_id}",
                                     "effects": [{"rule": rule, "effect": effect} for rule, effect in effects]})

    t26 = made("T26", ("SDP-LAE285", "permit"))
    t27 = made("T27", ("SDP-LAE285", "permit"), ("SDP-opfoelgning", "waive"))
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": T25, "T26": t26, "T27": t27})
    assert [t.id for t in sharing(catalog, CATALOG.trials["T6"])] == ["T25"]
    assert [t.id for t in sharing(catalog, t26)] == []
    assert [t.id for t in sharing(catalog, t27)] == []
