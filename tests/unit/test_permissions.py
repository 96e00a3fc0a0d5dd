"""Events that only a trial permits: refused outside it with the rule and the reason."""

from datetime import date

import pytest

from shared.catalog import Catalog
from shared.permissions import decide
from tests.fold_events import ev, opened, started

CATALOG = Catalog.load()
BORN_1970 = date(1970, 5, 1)


def check(history, event, birth_date=BORN_1970):
    return decide(history, event, CATALOG, birth_date).refusal


def permitted_by(history, event, birth_date=BORN_1970):
    return decide(history, event, CATALOG, birth_date).permitted_by


def assert_refused(problem, rule):
    assert problem is not None and problem.status == 422 and problem.extra == {"rule": rule}
    assert problem.errors[0].reason


HILLEROED_T22 = [opened("219", "2018-01-01"), started("kontanthjaelp", "2018-01-01"),
                 ev("target-group.assessed", "2018-01-15", trial="T22", in_target_group=True)]


def test_offer_duty_may_be_suspended_only_under_t22():
    assert check(HILLEROED_T22, ev("offer-duty.suspended", "2018-02-01")) is None
    assert permitted_by(HILLEROED_T22, ev("offer-duty.suspended", "2018-02-01")) == "T22"
    assert_refused(check(HILLEROED_T22, ev("offer-duty.suspended", "2020-08-01")), "LAB-tilbud")  # after T22 ended
    assert_refused(check(HILLEROED_T22[:2], ev("offer-duty.suspended", "2018-02-01")), "LAB-tilbud")  # not in its target group
    aarhus = [opened("751", "2018-01-01"), started("kontanthjaelp", "2018-01-01")]
    assert_refused(check(aarhus, ev("offer-duty.suspended", "2018-02-01")), "LAB-tilbud")


@pytest.mark.parametrize("municipality, assessed, allowed", [
    ("219", "T23", True),    # Hillerød, in T23's target group
    ("219", None, False),    # Hillerød, not assessed
    ("851", None, True),     # Aalborg: T2 applies to all
    ("751", None, False),    # Aarhus: no trial
])
def test_a_cadence_may_be_agreed_only_where_a_trial_modifies_it(municipality, assessed, allowed):
    history = [opened(municipality, "2018-01-01"), started("kontanthjaelp", "2018-01-01")]
    if assessed:
        history.append(ev("target-group.assessed", "2018-01-15", trial=assessed, in_target_group=True))
    problem = check(history, ev("cadence.agreed", "2018-02-01", rule="LAB-jobsamtale", interval_days=90))
    assert (problem is None) == allowed
    if not allowed:
        assert_refused(problem, "LAB-jobsamtale")


def test_igu_over_40_only_under_t15():
    offer = ev("offer.started", "2019-03-01", offer="igu")
    assert_refused(check([opened("751", "2019-01-01")], offer), "IGU-alder")
    assert check([opened("849", "2019-01-01")], offer) is None  # Jammerbugt, T15
    assert permitted_by([opened("849", "2019-01-01")], offer) == "T15"
    assert check([opened("751", "2019-01-01")], offer, birth_date=date(1990, 1, 1)) is None  # 29
    assert permitted_by([opened("849", "2019-01-01")], offer, birth_date=date(1990, 1, 1)) is None  # no trial needed


def test_wage_subsidy_before_26_weeks_only_for_t12s_groups():
    history = [opened("751", "2019-01-01"), started("dagpenge", "2019-01-01")]
    early, later = ev("offer.started", "2019-03-01", offer="loentilskud"), ev("offer.started", "2019-07-02", offer="loentilskud")
    assert_refused(check(history, early), "LAB-loentilskud-26uger")
    assert check(history, later) is None
    assert check(history, early, birth_date=date(1960, 1, 1)) is None  # over 50: exempt
    jammerbugt = [opened("849", "2019-01-01"), started("dagpenge", "2019-01-01")]
    assert_refused(check(jammerbugt, early), "LAB-loentilskud-26uger")  # T12 needs its target group
    assessed = [*jammerbugt, ev("target-group.assessed", "2019-02-01", trial="T12", in_target_group=True)]
    assert check(assessed, early) is None


def test_psychologist_treatment_only_under_t7():
    offer = ev("offer.started", "2019-03-01", offer="psykologbehandling")
    assert check([opened("787", "2019-01-01")], offer) is None  # Thisted
    assert_refused(check([opened("851", "2019-01-01")], offer), "LAB-tilbudstyper")  # Aalborg has T1, not T7


def test_psychologist_treatment_in_jammerbugt_where_t4_touches_the_same_rule_first():
    # T4 (education, permits nothing the events carry) and T7 both apply in Jammerbugt: T7 decides
    offer = ev("offer.started", "2019-03-01", offer="psykologbehandling")
    assert check([opened("849", "2019-01-01")], offer) is None
    assert permitted_by([opened("849", "2019-01-01")], offer) == "T7"
    assert_refused(check([opened("849", "2017-12-01")], ev("offer.started", "2017-12-31", offer="psykologbehandling")),
                   "LAB-tilbudstyper")  # the day before T7 starts


@pytest.mark.parametrize("municipality", ["751", "849"])  # Aarhus; Jammerbugt, where T15 lifts only the upper limit
def test_igu_for_a_17_year_old_is_refused_everywhere(municipality):
    offer = ev("offer.started", "2019-03-01", offer="igu")
    assert_refused(check([opened(municipality, "2019-01-01")], offer, birth_date=date(2001, 3, 2)), "IGU-alder")  # 17
    assert check([opened(municipality, "2019-01-01")], offer, birth_date=date(2001, 3, 1)) is None  # 18 that day
