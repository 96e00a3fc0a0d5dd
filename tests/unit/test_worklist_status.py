"""One definition of an obligation's status: the worklist's SQL (`status_is`), on SQLite and on
PostgreSQL, says of a stored row exactly what `Obligation.status` says of the obligation, on
every day around its dates."""

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select

from services.obligations.projection import metadata, obligations, status_is
from shared.obligations import Obligation

DAY = st.integers(0, 60).map(lambda n: date(2020, 1, 1) + timedelta(days=n))
STATUSES = ("upcoming", "due", "overdue", "done", "waived", "suspended")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    """The worklist runs on both: SQLite embedded, PostgreSQL in production (its date
    comparisons and NULL handling are its own)."""
    if request.param == "sqlite":
        engine = create_engine("sqlite://")
    else:
        url = request.getfixturevalue("database_url")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(due=DAY, window=st.integers(0, 30), basis=st.sampled_from(["required", "waived", "suspended"]),
       done_on=st.one_of(st.none(), DAY), as_of=DAY)
def test_the_worklist_and_the_case_page_give_an_obligation_the_same_status(engine, due, window, basis, done_on, as_of):
    o = Obligation(rule="R", title="t", legal_reference="l", due=due, deadline=due + timedelta(days=window),
                   arises_on=due, basis=basis, municipality="851", done_on=done_on)
    with engine.begin() as conn:
        conn.execute(obligations.delete())
        conn.execute(insert(obligations).values(case_id="c", n=0, rule="R", due=o.due, deadline=o.deadline, arises_on=o.arises_on,
                                                basis=basis, done_on=done_on, municipality="851", document={}))
        matching = [s for s in STATUSES if conn.execute(select(obligations.c.n).where(status_is(s, as_of))).first()]
    assert matching == [o.status(as_of)]
