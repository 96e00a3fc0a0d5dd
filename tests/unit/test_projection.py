"""Property: folding a case's events in one go equals folding them one at a time through the
projection, whatever is redelivered on the way; and a catalog change waits for what derives
with the old catalog. (SQLite in memory; no files, no network.)"""

import threading
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.obligations.projection import HORIZON, ObligationsProjection, obligations
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.obligations import fold
from shared.projection import Derivations
from shared.stream import Delivery

CATALOG = Catalog.load()
TODAY = date(2021, 6, 1)
MUNICIPALITIES = ["851", "751", "219", "820", "849"]
BENEFITS = ["dagpenge", "kontanthjaelp", "ledighedsydelse", "sygedagpenge", "ressourceforloeb"]


@st.composite
def histories(draw):
    """A plausible case history: opened, then benefits, conversations, moves and more, with
    dates that may go back in time (back-dated events)."""
    day = date(2018, 1, 1).toordinal() + draw(st.integers(0, 600))
    events = [("case.opened", {"date": date.fromordinal(day).isoformat(), "municipality": draw(st.sampled_from(MUNICIPALITIES)), "citizen": "p"})]
    running = set()
    for _ in range(draw(st.integers(0, 14))):
        day += draw(st.integers(-20, 120))
        when = date.fromordinal(max(day, date(2018, 1, 1).toordinal())).isoformat()
        kind = draw(st.sampled_from(["start", "end", "talk", "move", "assess", "contact", "plan"]))
        benefit = draw(st.sampled_from(BENEFITS))
        if kind == "start" and benefit not in running:
            running.add(benefit)
            events.append(("benefit.started", {"date": when, "benefit": benefit}))
        elif kind == "end" and running:
            ended = sorted(running)[0]
            running.discard(ended)
            events.append(("benefit.ended", {"date": when, "benefit": ended, "reason": "job"}))
        elif kind == "talk":
            events.append(("conversation.held", {"date": when, "kind": draw(st.sampled_from(["jobsamtale", "opfoelgningssamtale"]))}))
        elif kind == "move":
            events.append(("case.moved", {"date": when, "municipality": draw(st.sampled_from(MUNICIPALITIES))}))
        elif kind == "assess":
            events.append(("assessment.completed", {"date": when, "kind": "revurdering-ledighedsydelse"}))
        elif kind == "plan":
            events.append(("plan.updated", {"date": when}))
    return [StreamEvent(id=f"e{i}", source="s", type=f"dk.frisag.{name}", subject="case-1", time=None, data=data,
                        sequence=i + 1, position=i + 1) for i, (name, data) in enumerate(events)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.integers(0, 3), min_size=20, max_size=20))
def test_one_at_a_time_with_redeliveries_equals_one_go(events, redeliver):
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    projection = ObligationsProjection(engine, CATALOG, today=lambda: TODAY)
    offset = 0
    for i, event in enumerate(events):
        batch = [Delivery(0, offset, event)]
        # a redelivery of up to three earlier events (a consumer restart, a relay republishing)
        batch += [Delivery(0, offset + 1 + k, events[max(0, i - k - 1)]) for k in range(redeliver[i % 20])]
        projection.store(batch)
        offset += len(batch)
        assert projection.refresh() == 0  # derived in the transaction that stored them
    horizon = max(max(date.fromisoformat(e.data["date"]) for e in events), TODAY) + HORIZON
    expected = fold(events, CATALOG, horizon)
    with engine.connect() as conn:
        stored = conn.execute(obligations.select().order_by(obligations.c.n)).mappings().all()
    assert [(o["rule"], o["due"], o["basis"], o["done_on"], o["municipality"]) for o in stored] == \
        [(o.rule, o.due, o.basis, o.done_on, o.municipality) for o in expected]
    municipality, found, _ = projection.for_case("case-1", TODAY)
    assert found == [o.as_json("case-1", TODAY) for o in fold(events, CATALOG, TODAY)]
    # responsible on that day: the last opening or move dated by then (of one day's, the later)
    changes = sorted((e.data["date"], i, e.data["municipality"]) for i, e in enumerate(events)
                     if "municipality" in e.data and e.data["date"] <= TODAY.isoformat())
    assert municipality == (changes[-1][2] if changes else None)


def test_a_new_derivation_waits_until_nothing_derives_with_the_old_one():
    """So that the cases a catalog change marks stale afterwards include every case derived the
    old way: a store that began with the old catalog has committed by then."""
    derivations = Derivations("old")
    replaced = threading.Event()
    with derivations.use() as first:
        replacing = threading.Thread(target=lambda: (derivations.replace("new"), replaced.set()))
        replacing.start()
        assert not replaced.wait(0.3)  # the store that began with the old one is still deriving
        with derivations.use() as meanwhile:
            assert (first, meanwhile) == ("old", "new")  # what starts now derives the new way
        assert not replaced.is_set()
    assert replaced.wait(5)
    replacing.join()
    with derivations.use() as later:
        assert later == "new"


def test_idle_open_cases_are_folded_again_before_their_stored_obligations_run_out():
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    today = [date(2020, 1, 1)]
    projection = ObligationsProjection(engine, CATALOG, today=lambda: today[0])
    stream = [StreamEvent(f"{case}-{n}", "s", f"dk.frisag.{name}", case, None, data, n, offset)
              for offset, (case, n, name, data) in enumerate([
                  ("open", 1, "case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": "a"}),
                  ("open", 2, "benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
                  ("closed", 1, "case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": "b"}),
                  ("closed", 2, "case.closed", {"date": "2019-06-01", "reason": "job"})])]
    projection.store([Delivery(0, e.position, e) for e in stream])

    def stored_until():
        return projection.stored_until("751", date(2020, 1, 1))

    assert stored_until() == date(2021, 2, 4)  # 400 days past the day it was folded; the closed case: for ever
    today[0] = date(2020, 7, 19)  # 200 days later: still within half the horizon
    assert projection.refresh() == 0
    today[0] = date(2020, 7, 20)
    assert projection.refresh() == 1 and stored_until() == date(2021, 8, 24)


def test_a_batch_of_events_applied_before_still_moves_the_positions_on():
    """A relay's republished events (already applied, at later offsets) change nothing derived,
    but the positions must pass them, or the lag never clears and they are read again on every
    restart."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    projection = ObligationsProjection(engine, CATALOG, group="g")
    events = [StreamEvent("e1", "s", "dk.frisag.case.opened", "case-1", None,
                          {"date": "2019-01-01", "municipality": "851", "citizen": "p"}, 1, 1),
              StreamEvent("e2", "s", "dk.frisag.benefit.started", "case-1", None,
                          {"date": "2019-01-01", "benefit": "dagpenge"}, 2, 2)]
    assert projection.store([Delivery(0, offset, e) for offset, e in enumerate(events)]) == 2
    assert projection.stored_positions() == {0: 2}
    derived = projection.snapshot()
    assert projection.store([Delivery(0, 2 + offset, e) for offset, e in enumerate(events)]) == 0
    assert projection.stored_positions() == {0: 4}
    assert projection.snapshot() == derived
