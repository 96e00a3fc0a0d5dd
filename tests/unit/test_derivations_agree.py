"""The obligations service and the reporting service derive a case's obligations with the trials
from the same events by the same fold (`shared.obligations.fold_timeline`, as of the same
horizon). They differ in one documented way only: the worklist stops a rolling chain at an open
occurrence (the next date depends on when it is done), the evaluation's full count goes on as if
a missed one was held on its due date (README, Reporting: "Obligations are the full count").
So reporting lists every obligation the obligations service stores, and more only after an
occurrence of the same rule that is required and never done, each of them not done either."""

from collections import Counter
from datetime import date

from services.obligations.projection import ObligationsDerivation
from services.obligations.projection import obligations as stored_obligations
from services.reporting.store import HORIZON, ReportingDerivation
from services.reporting.store import obligations as reporting_obligations
from shared.catalog import Catalog
from shared.obligations import fold_timeline
from shared.population import Population
from shared.projection import StoredEvent
from shared.timeline import Timeline
from tests.fold_events import ended, ev, opened, started
from tests.unit.test_evaluation import stream_events

CATALOG = Catalog.load()
TODAY = date(2023, 6, 1)
AARHUS = "751"  # no trial touches the sickness-benefit follow-ups here


def derived(events, case_id: str = "case-1") -> tuple[Counter, Counter]:
    """(the obligations service's rows, reporting's rows with the trials), as comparable keys."""
    history = [StoredEvent(e.name, e.data) for e in events]
    key = lambda r: (r["rule"], r["due"], r["deadline"], r["basis"], r["done_on"], r["municipality"])
    worklist = ObligationsDerivation(CATALOG, lambda: TODAY).derive(case_id, history)[stored_obligations]
    evaluation = ReportingDerivation(CATALOG, lambda: TODAY).derive(case_id, history)[reporting_obligations]
    return (Counter(key(r) for r in worklist),
            Counter(key(r) for r in evaluation if r["regime"] != "ordinary"))  # trials, or both


def sick_until(last_day: str) -> list:
    # follow-ups every 4 weeks after the first by the end of week 8 (2017-02-27): the first is
    # held early (2017-02-20), the next (2017-03-20) never
    return [opened(AARHUS, "2017-01-02"), started("sygedagpenge", "2017-01-02"),
            ev("conversation.held", "2017-02-20", kind="opfoelgningssamtale"),
            ended("sygedagpenge", last_day)]


def follow_ups(rows: Counter) -> list[tuple[str, str | None]]:
    return sorted((str(due), done_on and str(done_on)) for rule, due, _, _, done_on, _ in rows
                  if rule == "SDP-opfoelgning")


def test_the_full_count_goes_on_after_a_missed_follow_up_to_the_spell_end():
    # hand-computed: 02-20 + 4w = 03-20 (missed), then 04-17 and 05-15 counted from the due dates
    worklist, evaluation = derived(sick_until("2017-05-15"))
    assert follow_ups(worklist) == [("2017-02-27", "2017-02-20"), ("2017-03-20", None)]
    assert follow_ups(evaluation) == [("2017-02-27", "2017-02-20"), ("2017-03-20", None),
                                      ("2017-04-17", None), ("2017-05-15", None)]
    _, day_before = derived(sick_until("2017-05-14"))  # the spell ends the day before the last one
    assert follow_ups(day_before)[-1] == ("2017-04-17", None)
    _, day_after = derived(sick_until("2017-05-16"))
    assert follow_ups(day_after)[-1] == ("2017-05-15", None)


def test_both_services_list_the_same_obligations_but_the_full_counts_missed_chain():
    differing = 0
    for docs in Population(seed=7).cases(300):
        worklist, evaluation = derived(stream_events(docs), docs[0]["subject"])
        assert not worklist - evaluation, docs[0]["subject"]  # reporting lacks nothing the worklist has
        extra = evaluation - worklist
        differing += bool(extra)
        for rule, due, _, _, done_on, _ in extra:
            assert done_on is None, (docs[0]["subject"], rule, due)
            # only after an occurrence of the rule the worklist shows required and never done
            assert any(r == rule and basis == "required" and done is None and d < due
                       for r, d, _, basis, done, _ in worklist), (docs[0]["subject"], rule, due)
    assert differing  # the population has such chains: the comparison is not empty


def test_reporting_folds_under_the_trials_only_the_rules_a_trial_touches_where_the_case_has_been():
    """The oracle: both regimes as two whole folds of the catalog, the ordinary rules and with
    the trials, numbered in the fold's order, stored once as "both" where the two are the same.
    Over a population moving between municipalities with and without trials, every row the
    same, in the same order."""
    derivation = ReportingDerivation(CATALOG, lambda: TODAY)
    # on ledighedsydelse in Aarhus (no trial), then in Aalborg under T11 (LAS-74c waived there)
    moved = [opened(AARHUS, "2017-01-02"), started("ledighedsydelse", "2017-01-02"),
             ev("case.moved", "2019-01-01", municipality="851")]
    cases = [("moved", [StoredEvent(e.name, e.data) for e in moved])] + [
        (docs[0]["subject"], [StoredEvent(e.name, e.data) for e in stream_events(docs)])
        for docs in Population(seed=11).cases(400)]
    tried = alike = 0
    for case_id, history in cases:
        timeline = Timeline.build(history)
        horizon = max(timeline.last_date or TODAY, TODAY) + HORIZON
        folds = {regime: fold_timeline(timeline, CATALOG, horizon, trials=trials, complete=True)
                 for regime, trials in (("ordinary", False), ("trials", True))}
        if folds["ordinary"] == folds["trials"]:
            folds = {"both": folds["ordinary"]}
        expected = [(regime, n, o.rule, o.due, o.deadline, o.basis, o.done_on, o.exemption and o.exemption.trial,
                     o.municipality) for regime, folded in folds.items() for n, o in enumerate(folded)]
        rows = derivation.derive(case_id, history)[reporting_obligations]
        assert [(r["regime"], r["n"], r["rule"], r["due"], r["deadline"], r["basis"], r["done_on"], r["trial"],
                 r["municipality"]) for r in rows] == expected, case_id
        tried += any(r[7] for r in expected)
        alike += "both" in folds
        if case_id == "moved":
            assert {r[7] for r in expected} == {None, "T11"}
    assert 10 < tried < 390  # cases with a trial's exemption, and cases without
    assert 10 < alike < 390  # cases stored once, and cases stored under each regime
