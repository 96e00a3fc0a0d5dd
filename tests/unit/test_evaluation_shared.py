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
  (waived by T17) and 1 August 2020 (required again: one in a row).
- at the edges, trials made for the test (`made`: like T6, for everyone from 2018) over a few
  citizens on a benefit from 1 February to 30 June 2019 (`spells`)."""

from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting import facts as facts_module
from services.reporting import form
from services.reporting.evaluation import evaluate, periods_for, series, sharing
from services.reporting.facts import FactParts
from services.reporting.store import ReportingStore
from shared.catalog import Catalog, Period, Trial
from shared.stream import Delivery
from tests.events import benefit_ended, benefit_started, event, opened
from tests.unit.test_evaluation import CATALOG, TODAY, stream_events

T6 = CATALOG.trials["T6"]
T25 = T6.model_copy(update={"id": "T25", "title": "Test: LÆ285 fritaget i Jammerbugt",
                                               "municipalities": ["849"]})
TWO_WAIVERS = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": T25})


def stored(cases: list[list[dict]], catalog: Catalog, parts: int | None = None) -> FactParts:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, catalog, today=lambda: TODAY)
    events = [e for documents in cases for e in stream_events(documents)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    return FactParts.load(engine, parts)


def citizen(case_id: str, municipality: str, serial: int, benefit: str, start: str, end: str | None,
            *extra: dict) -> list[dict]:
    documents = [opened(case_id, municipality=municipality, date=start, cpr=f"0101{60 + serial % 40:02d}-{1000 + serial}"),
                 benefit_started(case_id, benefit=benefit, date=start), *extra]
    return documents + ([benefit_ended(case_id, benefit=benefit, date=end)] if end else [])


def made(trial_id: str, municipalities: list[str], *effects: tuple[str, str]) -> Trial:
    """A trial made for a test, like T6: for everyone, from 1 January 2018, without end."""
    return Trial.model_validate({**T6.model_dump(), "id": trial_id, "title": f"Test: {trial_id}",
                                 "municipalities": municipalities,
                                 "effects": [{"rule": rule, "effect": effect} for rule, effect in effects]})


def spells(*groups: tuple[str, int, str]) -> list[list[dict]]:
    """Per (municipality, citizens, benefit): that many citizens on the benefit from 1 February
    to 30 June 2019 (sygedagpenge: LÆ285 and the first follow-up due 29 March, the next ones 26
    April, 24 May and 21 June; kontanthjælp: the first offer due 1 May)."""
    cases, serial = [], 0
    for municipality, count, benefit in groups:
        for _ in range(count):
            cases.append(citizen(f"c-{serial}", municipality, serial, benefit, "2019-02-01", "2019-06-30"))
            serial += 1
    return cases


def by_key(rows) -> dict:
    return {(r.metric, r.rule, r.group, r.period, r.municipality): r for r in rows}


@pytest.fixture(scope="module")
def sickness() -> FactParts:
    cases, serial = [], 0
    for municipality, count, end in (("849", 6, "2019-06-30"), ("773", 5, "2019-06-30"), ("849", 2, "2019-03-01"),
                                     ("751", 5, "2019-06-30")):
        for _ in range(count):
            cases.append(citizen(f"s-{serial}", municipality, serial, "sygedagpenge", "2019-02-01", end))
            serial += 1
    return stored(cases, TWO_WAIVERS)


def evaluated(facts: FactParts, catalog: Catalog, trial: str, comparison: list[str]) -> dict:
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


def test_what_trials_share_updated_by_the_changed_citizens_is_that_of_the_facts_read_afresh(monkeypatch):
    """As above, the 6 in Jammerbugt still on sygedagpenge (25 in Aarhus): 2 of them at a time end
    it on 1 March, before LÆ285 is due; then 6 others start it there. After each change the
    answers of the facts in 2 parts, updated by the changed citizens' rows alone (any share of a
    part's), are those of the facts read afresh: T25 shares 4, then 2, then 1 (named, not counted:
    fewer than 5 citizens), then none, then the 6 newcomers' 6."""
    monkeypatch.setattr(facts_module, "CHANGED_SHARE", 1.0)
    cases = [citizen(f"s-{i}", "849", i, "sygedagpenge", "2019-02-01", None) for i in range(6)]
    cases += [citizen(f"s-{i}", m, i, "sygedagpenge", "2019-02-01", "2019-06-30") for i, m in
              zip(range(6, 36), ["773"] * 5 + ["751"] * 25)]
    joining = [citizen(f"s-{i}", "849", i, "sygedagpenge", "2019-02-01", None) for i in range(36, 42)]
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, TWO_WAIVERS, today=lambda: TODAY)
    store.store([Delivery(0, i, e) for i, e in enumerate(e for documents in cases for e in stream_events(documents))])
    store.refresh()
    facts = FactParts.load(engine, parts=2)
    for trial in ("T6", "T25"):
        evaluated(facts, TWO_WAIVERS, trial, ["751"])
    waived = ("obligations_waived", "SDP-LAE285", "trial", "trial", None)
    rounds = [[stream_events(cases[i] + [benefit_ended(f"s-{i}", "sygedagpenge", "2019-03-01")])[-1] for i in ended]
              for ended in (range(2), range(2, 4), range(4, 5), range(5, 6))] + [[e for c in joining for e in stream_events(c)]]
    offsets = iter(range(1000, 2000))
    for events, shared in zip(rounds, ((("T25", None),), (("T25", None),), (("T25", None),), (), (("T25", 6),))):
        store.store([Delivery(0, next(offsets), e) for e in events])
        store.refresh()
        facts = facts.refreshed(engine)
        assert any(part.earlier for part in facts.parts)
        afresh = FactParts.load(engine, parts=2)
        for trial in ("T6", "T25"):
            assert evaluated(facts, TWO_WAIVERS, trial, ["751"]) == evaluated(afresh, TWO_WAIVERS, trial, ["751"])
        assert evaluated(facts, TWO_WAIVERS, "T6", ["751"])[waived].shared_with == shared


def test_a_total_shared_in_two_municipalities_updated_when_one_of_them_has_none_left(monkeypatch):
    """T25 made to waive LÆ285 in both of T6's municipalities here (Jammerbugt 849, Morsø 773):
    T6's total shares 11 with it, 6 and 5. Morsø's 5 end their sygedagpenge before it is due: the
    total, updated by their rows alone, still names T25 for Jammerbugt's 6, as read afresh."""
    monkeypatch.setattr(facts_module, "CHANGED_SHARE", 1.0)
    both = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": T25.model_copy(update={"municipalities": ["849", "773"]})})
    cases = [citizen(f"s-{i}", m, i, "sygedagpenge", "2019-02-01", None) for i, m in
             zip(range(11), ["849"] * 6 + ["773"] * 5)]
    cases += [citizen(f"s-{i}", "751", i, "sygedagpenge", "2019-02-01", "2019-06-30") for i in range(11, 36)]
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, both, today=lambda: TODAY)
    store.store([Delivery(0, i, e) for i, e in enumerate(e for documents in cases for e in stream_events(documents))])
    store.refresh()
    facts = FactParts.load(engine, parts=1)
    waived = ("obligations_waived", "SDP-LAE285", "trial", "trial", None)
    assert evaluated(facts, both, "T6", ["751"])[waived].shared_with == (("T25", 11),)
    store.store([Delivery(0, 1000 + i, stream_events(cases[i] + [benefit_ended(f"s-{i}", "sygedagpenge", "2019-03-01")])[-1])
                 for i in range(6, 11)])
    store.refresh()
    facts = facts.refreshed(engine)
    assert facts.parts[0].earlier
    updated = evaluated(facts, both, "T6", ["751"])
    assert updated == evaluated(FactParts.load(engine, parts=1), both, "T6", ["751"])
    assert updated[waived].shared_with == (("T25", 6),)


@pytest.fixture(scope="module")
def rehab() -> FactParts:
    return stored([citizen(f"r-{i}", "849", i, "ressourceforloeb", "2018-08-01", None,
                           event("target-group.assessed", f"r-{i}", trial="T17", in_target_group=True, date="2018-08-01"))
                   for i in range(6)], CATALOG)


def test_t17s_waivers_are_not_t9s_savings_and_each_names_the_other(rehab):
    facts, rule = rehab, "RF-rehabteam-forlaengelse"
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
    t26 = made("T26", T6.municipalities, ("SDP-LAE285", "permit"))
    t27 = made("T27", T6.municipalities, ("SDP-LAE285", "permit"), ("SDP-opfoelgning", "waive"))
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": T25, "T26": t26, "T27": t27})
    assert [t.id for t in sharing(catalog, CATALOG.trials["T6"])] == ["T25"]
    assert [t.id for t in sharing(catalog, t26)] == []
    assert [t.id for t in sharing(catalog, t27)] == []


def test_every_row_counting_obligations_another_trial_changes_names_it(rehab):
    """T9 modifies the rehab-team extension rule for everyone in Jammerbugt, so each of T17's
    obligations of that rule there is one T9 changes too: besides the waived ones, T17's rows of
    them under the ordinary rules (12), required (6) and the share of those done on time (a row
    for all rules) name T9, without a number (only a group's waived obligations and hours freed
    get one). T9 waives nothing, so its hours freed (0) share nothing with T17, though T17
    waives some of the obligations T9's rows count."""
    rule = "RF-rehabteam-forlaengelse"
    t17 = evaluated(rehab, CATALOG, "T17", ["751"])
    for municipality in (None, "849"):
        assert t17[("obligations_required_ordinary", rule, "trial", "trial", municipality)].shared_with == (("T9", None),)
        assert t17[("obligations_required", rule, "trial", "trial", municipality)].shared_with == (("T9", None),)
        on_time = t17[("obligations_on_time_share", None, "trial", "trial", municipality)]
        assert (on_time.n, on_time.shared_with) == (6, (("T9", None),))

    t9 = evaluated(rehab, CATALOG, "T9", ["751"])
    hours = t9[("caseworker_hours_freed", None, "trial", "trial", None)]
    assert (hours.value, hours.shared_with) == (0, ())


def test_a_comparison_municipality_where_another_trial_waives_the_rule_names_it(sickness):
    """T25 (Jammerbugt) compared with Morsø, where T6 waives LÆ285: the 5 due there are required
    under T25's effects (T6's waiver is not T25's) and that row names T6, though in Jammerbugt
    no required one is left to share (T25 waives all 6 there)."""
    t25 = evaluated(sickness, TWO_WAIVERS, "T25", ["773"])
    required = t25[("obligations_required", "SDP-LAE285", "comparison", "trial", None)]
    assert (required.value, required.shared_with) == (5, (("T6", None),))
    own = t25[("obligations_required", "SDP-LAE285", "trial", "trial", None)]
    assert (own.value, own.shared_with) == (0, ())


@pytest.mark.parametrize("shared", [4, 5, 6])
@pytest.mark.parametrize("rest", [0, 1, 4, 5])
def test_a_shared_count_is_published_from_5_shared_citizens_and_a_rest_of_none_or_5(shared, rest):
    """T6's waivers of LÆ285: `shared` citizens in Jammerbugt, where T25 waives it too, and `rest`
    in Morsø, where only T6 does. The number shared with T25 (one waiver each) is published only
    if it is of 5 citizens or more and the rest (T6's total minus it) of none or 5 or more: a
    number of 1-4 citizens, as either, is not published (SUPPRESS_BELOW)."""
    facts = stored(spells(("849", shared, "sygedagpenge"), ("773", rest, "sygedagpenge")), TWO_WAIVERS)
    t6 = evaluated(facts, TWO_WAIVERS, "T6", ["751"])
    published = shared if shared >= 5 and rest in (0, 5) else None
    assert t6[("obligations_waived", "SDP-LAE285", "trial", "trial", None)].shared_with == (("T25", published),)
    assert t6[("caseworker_hours_freed", None, "trial", "trial", None)].shared_with == (("T25", published),)


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_the_number_shared_counts_obligations_per_rule_and_for_hours_all_rules(parts):
    """T25 waives LÆ285 and the sygedagpenge follow-ups in Jammerbugt and Morsø, T26 both in
    Jammerbugt only. 6 citizens in Jammerbugt and 5 in Morsø, sick 1 February to 30 June 2019:
    each has 1 LÆ285 (29 March) and 4 follow-ups (29 March, 26 April, 24 May, 21 June). Shared
    with T26: the 6 LÆ285 and 24 follow-ups of Jammerbugt (6 citizens; the rest, Morsø's, 5), 30
    for hours freed: obligations, not citizens, each rule's its own. The same with the facts in
    3 or 7 parts, the citizens of each municipality spread over them (some part then holds Morsø's
    citizens alone: none shared, yet counted in the rest)."""
    t25 = made("T25", ["849", "773"], ("SDP-LAE285", "waive"), ("SDP-opfoelgning", "waive"))
    t26 = made("T26", ["849"], ("SDP-LAE285", "waive"), ("SDP-opfoelgning", "waive"))
    catalog = Catalog(CATALOG.rules, {"T25": t25, "T26": t26})
    facts = stored(spells(("849", 6, "sygedagpenge"), ("773", 5, "sygedagpenge")), catalog, parts)
    rows = evaluated(facts, catalog, "T25", ["751"])
    waived = ("obligations_waived", "SDP-opfoelgning", "trial", "trial")
    assert (rows[(*waived, None)].value, rows[(*waived, "849")].value, rows[(*waived, "773")].value) == (44, 24, 20)
    assert rows[(*waived, None)].shared_with == (("T26", 24),)
    assert rows[("obligations_waived", "SDP-LAE285", "trial", "trial", None)].shared_with == (("T26", 6),)
    assert rows[("caseworker_hours_freed", None, "trial", "trial", None)].shared_with == (("T26", 30),)
    assert rows[(*waived, "849")].shared_with == (("T26", None),) and rows[(*waived, "773")].shared_with == ()


def test_hours_freed_shared_are_not_published_where_a_rules_share_would_reveal_a_few():
    """T25 waives LÆ285 and the first offer (LAB-tilbud) in Jammerbugt and Morsø, T26 both in
    Jammerbugt only. In Jammerbugt 6 sick and 2 on kontanthjælp, in Morsø 5 and 5. T26 shares
    6 LÆ285 (published: 6 citizens, a rest of 5) and 2 offers (2 citizens: not published); the 8
    hours freed would be of 8 citizens and a rest of 10, but less the 6 LÆ285 they give the 2
    offers: not published either. The others' numbers of a rule are their own."""
    t25 = made("T25", ["849", "773"], ("SDP-LAE285", "waive"), ("LAB-tilbud", "waive"))
    t26 = made("T26", ["849"], ("SDP-LAE285", "waive"), ("LAB-tilbud", "waive"))
    catalog = Catalog(CATALOG.rules, {"T25": t25, "T26": t26})
    facts = stored(spells(("849", 6, "sygedagpenge"), ("849", 2, "kontanthjaelp"), ("773", 5, "sygedagpenge"),
                          ("773", 5, "kontanthjaelp")), catalog)
    rows = evaluated(facts, catalog, "T25", ["751"])
    offers = rows[("obligations_waived", "LAB-tilbud", "trial", "trial", None)]
    assert (offers.value, offers.n, offers.shared_with) == (7, 7, (("T26", None),))
    assert rows[("obligations_waived", "SDP-LAE285", "trial", "trial", None)].shared_with == (("T26", 6),)
    hours = rows[("caseworker_hours_freed", None, "trial", "trial", None)]
    assert (hours.value, hours.shared_with) == (pytest.approx(11 * 20 / 60 + 7 * 60 / 60, abs=0.01), (("T26", None),))


@pytest.mark.parametrize("parts", [1, 4])
def test_hours_freed_shared_with_each_trial_count_the_rules_it_shares(parts):
    """T25 waives LÆ285 and the first offer in Jammerbugt and Morsø; T26 waives LÆ285 and T27 the
    offer, in Jammerbugt only. In Jammerbugt 6 sick and 5 on kontanthjælp, in Morsø 5 sick. Of
    T25's hours freed, T26 shares the 6 LÆ285 (6 citizens, a rest of 10) and T27 the 5 offers
    (5, a rest of 11): each published, a rule the other trial does not share no hindrance. The
    same with the facts in 4 parts."""
    t25 = made("T25", ["849", "773"], ("SDP-LAE285", "waive"), ("LAB-tilbud", "waive"))
    t26 = made("T26", ["849"], ("SDP-LAE285", "waive"))
    t27 = made("T27", ["849"], ("LAB-tilbud", "waive"))
    catalog = Catalog(CATALOG.rules, {"T25": t25, "T26": t26, "T27": t27})
    facts = stored(spells(("849", 6, "sygedagpenge"), ("849", 5, "kontanthjaelp"), ("773", 5, "sygedagpenge")),
                   catalog, parts)
    assert len(facts.parts) == parts
    rows = evaluated(facts, catalog, "T25", ["751"])
    assert rows[("obligations_waived", "SDP-LAE285", "trial", "trial", None)].shared_with == (("T26", 6),)
    assert rows[("obligations_waived", "LAB-tilbud", "trial", "trial", None)].shared_with == (("T27", 5),)
    assert rows[("caseworker_hours_freed", None, "trial", "trial", None)].shared_with == (("T26", 6), ("T27", 5))


def test_the_other_trials_are_named_in_catalog_order_t6_before_t25():
    """A trial (T26) that waives LÆ285 in Jammerbugt and modifies the rehab-team extensions shares
    them with T6 and T25, and with T9 and T17: listed by number (T6, T9, T17, T25), not as text
    (T17, T25, T6, T9), by `sharing` and on the rows."""
    t26 = made("T26", ["849"], ("SDP-LAE285", "waive"), ("RF-rehabteam-forlaengelse", "modify"))
    catalog = Catalog(CATALOG.rules, {**TWO_WAIVERS.trials, "T26": t26})
    assert [t.id for t in sharing(catalog, t26)] == ["T6", "T9", "T17", "T25"]
    facts = stored(spells(("849", 6, "sygedagpenge")), catalog)
    rows = evaluated(facts, catalog, "T26", ["751"])
    waived = rows[("obligations_waived", "SDP-LAE285", "trial", "trial", None)]
    assert (waived.value, waived.shared_with) == (6, (("T6", 6), ("T25", 6)))


def test_a_suspending_trial_with_nothing_suspended_says_0_suspended():
    """T22 suspends the first offer (LAB-tilbud) for those assessed into its target group; in
    Allerød 5 on kontanthjælp from 1 February 2019, none assessed: their 5 offers due 1 May are
    required, and the row of those the trial waived or suspended says 0 (a published zero, not a
    missing number), as does the comparison group's."""
    facts = stored(spells(("201", 5, "kontanthjaelp")), CATALOG)
    t22 = CATALOG.trials["T22"]
    periods = periods_for(t22, date(2019, 1, 1), date(2019, 12, 31), TODAY)
    rows = by_key(evaluate(facts, CATALOG, t22, periods, ["751"]))
    assert rows[("obligations_required", "LAB-tilbud", "trial", "trial", None)].value == 5
    for group in ("trial", "comparison"):
        suspended = rows[("obligations_waived", "LAB-tilbud", group, "trial", None)]
        assert (suspended.value, suspended.n, suspended.suppressed) == (0, 0, False)


def test_a_permission_changes_no_obligation_only_the_rule_a_trial_waives_is_counted():
    """A trial made for the test that permits LÆ285 and waives the sygedagpenge follow-ups in
    Morsø (T27) counts the follow-ups only: 4 for each of 5 citizens (due 29 March, 26 April,
    24 May and 21 June), all waived. LÆ285, due there too, is in none of its rows."""
    t27 = made("T27", ["773"], ("SDP-LAE285", "permit"), ("SDP-opfoelgning", "waive"))
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T27": t27})
    rows = evaluated(stored(spells(("773", 5, "sygedagpenge"), ("751", 5, "sygedagpenge")), catalog), catalog, "T27",
                     ["751"])
    assert {rule for (_, rule, *_) in rows} == {None, "SDP-opfoelgning"}
    for metric in ("obligations_required_ordinary", "obligations_waived"):
        assert rows[(metric, "SDP-opfoelgning", "trial", "trial", None)].value == 20


def test_a_trial_for_an_assessed_target_group_shares_only_the_obligations_of_those_assessed():
    """T17 waives a rehab-team extension in Jammerbugt only for those assessed into its target
    group; here no one is. T9's rows of that rule there (12: 2 each for 6 citizens, due 1 August
    2019 and 2020) then name no other trial, though T17 runs in Jammerbugt then: the store does
    not know who is in a narrower target group, so only the obligations the fold names T17 for
    are T17's (`covers`)."""
    rule = "RF-rehabteam-forlaengelse"
    facts = stored([citizen(f"r-{i}", "849", i, "ressourceforloeb", "2018-08-01", None) for i in range(6)], CATALOG)
    t9 = evaluated(facts, CATALOG, "T9", ["751"])
    for metric in ("obligations_required_ordinary", "obligations_required"):
        for municipality in (None, "849"):
            row = t9[(metric, rule, "trial", "trial", municipality)]
            assert (row.value, row.n, row.shared_with) == (12, 6, ())


def test_another_trial_shares_a_waiver_due_on_its_first_or_last_day_not_one_due_after_it_ended():
    """T6's 11 LÆ285 waivers in Jammerbugt (6) and Morsø (5) are due on 29 March 2019. A second
    waiver of LÆ285 in Jammerbugt (T25, made for the test) shares Jammerbugt's 6 when its period
    holds that day: one starting on it, one ending on it; not one that ended the day before."""
    due = date(2019, 3, 29)

    def shared_with(start: date, end: date | None) -> tuple:
        t25 = T25.model_copy(update={"period": Period(start=start, end=end)})
        catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T25": t25})
        facts = stored(spells(("849", 6, "sygedagpenge"), ("773", 5, "sygedagpenge")), catalog)
        return evaluated(facts, catalog, "T6", ["751"])[("obligations_waived", "SDP-LAE285", "trial", "trial", None)].shared_with

    assert shared_with(due, None) == (("T25", 6),)
    assert shared_with(date(2018, 1, 1), due) == (("T25", 6),)
    assert shared_with(date(2018, 1, 1), due - timedelta(days=1)) == ()


def test_the_hours_freed_of_a_rule_the_catalog_no_longer_has_are_0():
    """The store keeps the obligations of a rule that a later catalog may not have; its minutes
    are then unknown and its waivers free 0 hours (not an error). T27, made for the test, waives
    the 20 follow-ups of 5 citizens in Morsø: 15 hours at 45 minutes each; 0 without the rule."""
    t27 = made("T27", ["773"], ("SDP-opfoelgning", "waive"))
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, "T27": t27})
    facts = stored(spells(("773", 5, "sygedagpenge"), ("751", 5, "sygedagpenge")), catalog)
    without = Catalog({rule: r for rule, r in CATALOG.rules.items() if rule != "SDP-opfoelgning"}, catalog.trials)
    for evaluated_with, hours in ((catalog, 15.0), (without, 0.0)):
        rows = evaluated(facts, evaluated_with, "T27", ["751"])
        assert rows[("obligations_waived", "SDP-opfoelgning", "trial", "trial", None)].value == 20
        assert rows[("caseworker_hours_freed", None, "trial", "trial", None)].value == hours
        months = series(facts, evaluated_with, t27, "caseworker_hours_freed", date(2019, 1, 1), date(2019, 12, 31),
                        ["751"])
        assert sum(r.value for r in months if r.group == "trial") == hours
