"""Events that only a trial permits: refused outside it with the rule and the reason."""

from datetime import date

import pytest

from shared.catalog import Catalog
from shared.permissions import Decision, decide
from shared.refusals import InvalidEvent, NotPermitted
from tests.fold_events import ev, opened, started

CATALOG = Catalog.load()
BORN_1970 = date(1970, 5, 1)


def check(history, event, birth_date=BORN_1970):
    return decide(history, event, CATALOG, birth_date).refusal


def permitted_by(history, event, birth_date=BORN_1970):
    return decide(history, event, CATALOG, birth_date).permitted_by


def assert_refused(refusal, rule):
    assert isinstance(refusal, NotPermitted) and refusal.rule == rule
    assert refusal.reason


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
    refusal = check(history, ev("cadence.agreed", "2018-02-01", rule="LAB-jobsamtale", interval_days=90))
    assert (refusal is None) == allowed
    if not allowed:
        assert_refused(refusal, "LAB-jobsamtale")


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


def refusal(rule, field, reason):
    return NotPermitted(rule, field, reason)


AARHUS_ON_DAGPENGE = [opened("751", "2019-01-01"), started("dagpenge", "2019-01-01")]


# Each refusal in full, written from the rule and trial files: the field, the reason with the
# rule's legal reference, and the trials that touch the rule (in the catalog's file order).
@pytest.mark.parametrize("history, event, birth_date, expected", [
    ([opened("751", "2018-01-01")], ev("offer-duty.suspended", "2018-02-01"), BORN_1970, refusal(
        "LAB-tilbud", "type", "no trial lets this case's right-and-duty offers be suspended on 2018-02-01 "
                              "(LAB kap. 16-17 (old); LAB 2019 § 102; trials that permit it: T22)")),
    ([opened("751", "2018-01-01")], ev("offer-duty.resumed", "2018-02-01"), BORN_1970, refusal(
        "LAB-tilbud", "type", "no trial lets this case's right-and-duty offers be suspended on 2018-02-01 "
                              "(LAB kap. 16-17 (old); LAB 2019 § 102; trials that permit it: T22)")),
    ([opened("751", "2018-01-01")], ev("cadence.agreed", "2018-02-01", rule="LAB-jobsamtale", interval_days=90),
     BORN_1970, refusal("LAB-jobsamtale", "data.rule",
                        "no trial lets LAB-jobsamtale's cadence be agreed individually for this case on 2018-02-01 "
                        "(LAB (LBK 1342/2016) kontaktforløb; LAB 2019 §§ 31-32; trials that permit it: T16, T2, T23)")),
    # T19 applies in Vesthimmerland and modifies the schedule, but lets no cadence be agreed
    ([opened("820", "2019-01-01")],
     ev("cadence.agreed", "2019-02-01", rule="FP-loentilskud-opfoelgning", interval_days=90), BORN_1970,
     refusal("FP-loentilskud-opfoelgning", "data.rule",
             "no trial lets FP-loentilskud-opfoelgning's cadence be agreed individually for this case on 2019-02-01 "
             "(LAB; trials that permit it: T19)")),
    ([opened("751", "2019-01-01")], ev("cadence.agreed", "2019-02-01", rule="SDP-opfoelgning", interval_days=90),
     BORN_1970, refusal("SDP-opfoelgning", "data.rule",
                        "no trial lets SDP-opfoelgning's cadence be agreed individually for this case on 2019-02-01 "
                        "(SDP § 13 b; trials that permit it: none)")),
    ([opened("751", "2019-01-01")], ev("cadence.agreed", "2019-02-01", rule="NO-SUCH-RULE", interval_days=90),
     BORN_1970, InvalidEvent("data.rule", "is not a rule in the catalog")),
    ([opened("751", "2019-01-01")], ev("offer.started", "2019-03-01", offer="igu"), date(2001, 3, 2), refusal(
        "IGU-alder", "data.offer", "the citizen is 17 at the start; IGU is for ages from 18 (IGU-loven; no trial permits it)")),
    ([opened("751", "2019-01-01")], ev("offer.started", "2019-03-01", offer="igu"), BORN_1970, refusal(
        "IGU-alder", "data.offer",
        "the citizen is 48 at the start; IGU is for ages up to 40 (IGU-loven; trials that permit it: T15)")),
    (AARHUS_ON_DAGPENGE, ev("offer.started", "2019-03-01", offer="loentilskud"), BORN_1970, refusal(
        "LAB-loentilskud-26uger", "data.offer", "loentilskud needs 26 weeks of unemployment; the citizen has been "
                                                "unemployed since 2019-01-01 (LAB; trials that permit it: T12)")),
    (AARHUS_ON_DAGPENGE, ev("offer.started", "2019-03-01", offer="jobrotation"), BORN_1970, refusal(
        "LAB-loentilskud-26uger", "data.offer", "jobrotation needs 26 weeks of unemployment; the citizen has been "
                                                "unemployed since 2019-01-01 (LAB; trials that permit it: T12)")),
    ([opened("851", "2019-01-01")], ev("offer.started", "2019-03-01", offer="psykologbehandling"), BORN_1970, refusal(
        "LAB-tilbudstyper", "data.offer",
        "psychologist treatment is not an offer the law knows (LAB; trials that permit it: T1, T4, T5, T7)")),
], ids=["suspended", "resumed", "cadence", "cadence-modified-not-agreed", "cadence-no-trial", "cadence-unknown-rule",
        "igu-17", "igu-48", "loentilskud", "jobrotation", "psykologbehandling"])
def test_each_refusal_names_the_field_the_reason_and_the_trials_that_could_permit_it(history, event, birth_date,
                                                                                    expected):
    assert decide(history, event, CATALOG, birth_date) == Decision(expected)
