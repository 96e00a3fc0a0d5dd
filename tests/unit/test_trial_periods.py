"""Which trials apply to a case on which dates (the case page shows it), against hand-computed
periods: a trial applies while its period runs, the case is the responsibility of one of its
municipalities and, for a trial with an assessed target group, the citizen is assessed into it;
from the case's opening to its closing day.

T11: Aalborg (851), Jammerbugt (849), Thisted (787), Rebild (840), 1 July 2018 to 31 December
2022, every citizen. T12: Jammerbugt (849) and Frederikshavn (813), from 1 July 2018, open-ended,
those assessed into its target group."""

from datetime import date
from typing import NamedTuple

from shared.catalog import Catalog
from shared.timeline import Timeline, trial_periods

CATALOG = Catalog.load()
T11, T12 = CATALOG.trials["T11"], CATALOG.trials["T12"]


class Event(NamedTuple):
    name: str
    data: dict


def periods(*events: tuple[str, str, dict], as_of: date | None = None) -> list[tuple[str, date, date | None]]:
    timeline = Timeline.build([Event(name, {"date": day, **data}) for name, day, data in events], as_of)
    return [(trial.id, start, end) for trial, start, end in trial_periods([T11, T12], timeline)]


def opened(day: str, municipality: str) -> tuple[str, str, dict]:
    return ("case.opened", day, {"municipality": municipality, "citizen": "p"})


def test_from_the_opening_or_the_trials_start_to_its_end():
    assert periods(opened("2019-01-02", "851")) == [("T11", date(2019, 1, 2), date(2022, 12, 31))]
    assert periods(opened("2018-01-01", "851")) == [("T11", date(2018, 7, 1), date(2022, 12, 31))]
    assert periods(opened("2018-07-01", "851")) == [("T11", date(2018, 7, 1), date(2022, 12, 31))]
    assert periods(opened("2023-01-01", "851")) == []  # opened the day after it ended
    assert periods(opened("2019-01-02", "751")) == []  # Aarhus is in neither


def test_a_move_out_and_back_and_the_closing_day():
    moves = [opened("2019-01-02", "851"), ("case.moved", "2020-06-01", {"municipality": "751"}),
             ("case.moved", "2021-01-01", {"municipality": "787"})]
    assert periods(*moves) == [("T11", date(2019, 1, 2), date(2020, 5, 31)), ("T11", date(2021, 1, 1), date(2022, 12, 31))]
    # as of the day before the move back, the move back is not known yet
    assert periods(*moves, as_of=date(2020, 12, 31)) == [("T11", date(2019, 1, 2), date(2020, 5, 31))]
    closed = [opened("2019-01-02", "851"), ("case.closed", "2020-03-01", {"reason": "job"})]
    assert periods(*closed) == [("T11", date(2019, 1, 2), date(2020, 3, 1))]
    one_day = [opened("2019-01-02", "851"), ("case.closed", "2019-01-02", {"reason": "job"})]
    assert periods(*one_day) == [("T11", date(2019, 1, 2), date(2019, 1, 2))]


def test_an_assessed_target_group_from_the_assessment_in_to_the_day_before_the_one_out():
    case = [opened("2019-01-02", "849"),
            ("target-group.assessed", "2019-03-01", {"trial": "T12", "in_target_group": True}),
            ("target-group.assessed", "2019-09-01", {"trial": "T12", "in_target_group": False})]
    assert periods(*case) == [("T11", date(2019, 1, 2), date(2022, 12, 31)), ("T12", date(2019, 3, 1), date(2019, 8, 31))]
    assert periods(*case[:2]) == [("T11", date(2019, 1, 2), date(2022, 12, 31)), ("T12", date(2019, 3, 1), None)]
