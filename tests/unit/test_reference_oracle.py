"""The fold against an independent, day-by-day reference (tests/reference.py) on generated case
histories (issue 16): for every as-of day tried, the fold's occurrences of LAS-74c and of
LAB-jobsamtale (dagpenge, 2015 parameters) have the due dates, deadlines, statuses, done dates,
waivers and responsible municipalities the reference says."""

from datetime import date, timedelta
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.catalog import Catalog
from shared.obligations import fold
from tests.reference import T11_END, T11_START, Occurrence, jobsamtale_dagpenge, las_74c

CATALOG = Catalog.load()
# T11 municipalities (Aalborg, Jammerbugt) and others (Aarhus; Vesthimmerland, which applied for T11
# but is not in it); for the talks, T2's Aalborg (which changes nothing without an agreement)
PLACES = ["851", "849", "751", "820"]
DAY = timedelta(days=1)


def ev(name: str, day: date, **data) -> SimpleNamespace:
    return SimpleNamespace(name=name, data={"date": day.isoformat(), **data})


def seen(o: Occurrence, as_of: date) -> tuple:
    """What the worklist shows of an occurrence the reference lists."""
    return o.rule, o.due, o.deadline, o.status(as_of), o.done_on, o.waived_by, o.municipality


def folded(events, rule: str, as_of: date, **kw) -> list[tuple]:
    """The same of the fold's obligations of `rule`."""
    return [(o.rule, o.due, o.deadline, o.status(as_of), o.done_on,
             o.exemption.trial if o.basis == "waived" else None, o.municipality)
            for o in fold(events, CATALOG, as_of, **kw) if o.rule == rule]


def offsets(draw, n: int, lo: int, hi: int) -> list[int]:
    return sorted(set(draw(st.lists(st.integers(lo, hi), max_size=n))))


@st.composite
def ly_histories(draw):
    """A case on ledighedsydelse in spells with gaps, moving between T11 and other
    municipalities, re-assessed now and then, opened around T11's start or before its end."""
    opened = draw(st.sampled_from([T11_START, T11_END])) - timedelta(days=draw(st.integers(0, 900)))
    events = [ev("case.opened", opened, municipality=draw(st.sampled_from(PLACES)), citizen="c")]
    day = opened + timedelta(days=draw(st.integers(0, 30)))
    for n in range(draw(st.integers(1, 3))):
        events.append(ev("benefit.started", day, benefit="ledighedsydelse"))
        length = draw(st.one_of(st.integers(30, 400), st.integers(360, 900), st.none() if n else st.just(700)))
        if length is None:
            break  # still running
        day += timedelta(days=length)
        events.append(ev("benefit.ended", day, benefit="ledighedsydelse", reason="other"))
        # a gap of 183 days puts the first day of a shorter spell before it on the edge of the 548 days
        day += timedelta(days=draw(st.one_of(st.integers(1, 200), st.integers(182, 186))))
    for k in offsets(draw, 3, 1, 1800):
        events.append(ev("case.moved", opened + timedelta(days=k), municipality=draw(st.sampled_from(PLACES))))
    for k in offsets(draw, 4, 200, 1800):
        events.append(ev("assessment.completed", opened + timedelta(days=k), kind="revurdering-ledighedsydelse"))
    if draw(st.booleans()):
        events.append(ev("case.closed", opened + timedelta(days=draw(st.integers(300, 2000))), reason="other"))
    return sorted(events, key=lambda e: (e.data["date"], e.name != "case.opened"))


@st.composite
def dagpenge_histories(draw):
    """A case on dagpenge for 20 days to two years, all before 2020, with conversations (early,
    late, missed, after the spell) and moves between T2's Aalborg and Aarhus."""
    opened = date(2016, 1, 1) + timedelta(days=draw(st.integers(0, 1000)))
    events = [ev("case.opened", opened, municipality=draw(st.sampled_from(["851", "751"])), citizen="c")]
    start = opened + timedelta(days=draw(st.integers(0, 30)))
    end = min(start + timedelta(days=draw(st.integers(20, 730))), date(2019, 12, 31))
    events += [ev("benefit.started", start, benefit="dagpenge"),
               ev("benefit.ended", end, benefit="dagpenge", reason="job")]
    for k in offsets(draw, 16, -20, (end - start).days + 60):
        events.append(ev("conversation.held", start + timedelta(days=k), kind="jobsamtale"))
    for k in offsets(draw, 2, 1, (end - opened).days + 30):
        events.append(ev("case.moved", opened + timedelta(days=k), municipality=draw(st.sampled_from(["851", "751"]))))
    if draw(st.booleans()):
        events.append(ev("case.closed", start + timedelta(days=draw(st.integers(0, 800))), reason="job"))
    return sorted(events, key=lambda e: (e.data["date"], e.name != "case.opened"))


def as_of_days(draw, events, occurrences, extra=()) -> list[date]:
    """Days where something may change: the day before, on and after each event, due date, the
    14 days before it, deadline, and `extra`; a sample of them."""
    edges = {date.fromisoformat(e.data["date"]) for e in events} | set(extra)
    for o in occurrences:
        edges |= {o.due, o.due - timedelta(days=14), o.deadline}
    days = sorted({d + k * DAY for d in edges for k in (-1, 0, 1)})
    return draw(st.lists(st.sampled_from(days), min_size=1, max_size=12, unique=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=ly_histories())
def test_las_74c_as_the_reference_says(data, events):
    horizon = max(date.fromisoformat(e.data["date"]) for e in events) + timedelta(days=800)
    every = las_74c(events, horizon, every=True)
    for as_of in as_of_days(data.draw, events, every, (T11_START, T11_END + DAY)):
        expected = [seen(o, as_of) for o in las_74c(events, as_of)]
        assert folded(events, "LAS-74c", as_of) == expected, (as_of, [(e.name, e.data) for e in events])
    as_of = data.draw(st.sampled_from(sorted({o.due for o in every} or {horizon})))
    assert folded(events, "LAS-74c", as_of, trials=False) == [seen(o, as_of) for o in las_74c(events, as_of, trials=False)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=dagpenge_histories())
def test_dagpenge_talks_as_the_reference_says(data, events):
    horizon = date(2020, 6, 1)
    everything = jobsamtale_dagpenge(events, horizon, complete=True)
    for as_of in as_of_days(data.draw, events, everything):
        expected = [seen(o, as_of) for o in jobsamtale_dagpenge(events, as_of)]
        assert folded(events, "LAB-jobsamtale", as_of) == expected, (as_of, [(e.name, e.data) for e in events])
    assert folded(events, "LAB-jobsamtale", horizon, complete=True) == [seen(o, horizon) for o in everything]
