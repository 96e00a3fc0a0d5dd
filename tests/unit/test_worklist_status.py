"""One definition of an obligation's status: the worklist's SQL (`status_is`) says of a stored
row exactly what `Obligation.status` says of the obligation, on every day around its dates."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select

from services.obligations.projection import metadata, obligations, status_is
from shared.obligations import Obligation

DAY = st.integers(0, 60).map(lambda n: date(2020, 1, 1) + timedelta(days=n))
STATUSES = ("upcoming", "due", "overdue", "done", "waived", "suspended")
ENGINE = create_engine("sqlite://")
metadata.create_all(ENGINE)


@settings(max_examples=300, deadline=None)
@given(DAY, st.integers(0, 30), st.sampled_from(["required", "waived", "suspended"]), st.one_of(st.none(), DAY), DAY)
def test_the_worklist_and_the_case_page_give_an_obligation_the_same_status(due, window, basis, done_on, as_of):
    o = Obligation(rule="R", title="t", legal_reference="l", due=due, deadline=due + timedelta(days=window),
                   arises_on=due, basis=basis, municipality="851", done_on=done_on)
    with ENGINE.begin() as conn:
        conn.execute(obligations.delete())
        conn.execute(insert(obligations).values(case_id="c", n=0, rule="R", due=o.due, deadline=o.deadline, arises_on=o.arises_on,
                                                basis=basis, done_on=done_on, municipality="851", document={}))
        matching = [s for s in STATUSES if conn.execute(select(obligations.c.n).where(status_is(s, as_of))).first()]
    assert matching == [o.status(as_of)]
