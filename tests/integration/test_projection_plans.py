"""A projection's writes, the reporting service reading the facts of the cases changed since it
last read, and a what-if reading its chunk of cases find those cases through the keys, whatever
PostgreSQL's statistics say (issue 21). With none (autovacuum off, or behind a rebuild),
PostgreSQL guessed that 50 case ids match a fifth of a table and read the whole table for each
batch: at a million cases two seconds a batch, and a re-evaluation of every case took 381 s
instead of 195. The plans are read with EXPLAIN of each statement, in its own transaction, as it
is sent.

The same transactions turn the planner's table scans off, which prices a statement that has no
other way in (the clock's tick: a table of one row) at ten billion, past PostgreSQL's JIT
thresholds: each such statement was compiled to machine code first, about 0.1 s of a core, in
every transaction that stored or derived cases (about half of PostgreSQL's CPU time in a
rebuild). No statement in them is compiled."""

from datetime import date

import pytest
from sqlalchemy import create_engine, event

from services.obligations.projection import ObligationsProjection
from services.reporting.facts import FactParts
from services.reporting.store import ReportingStore
from services.reporting.whatif import Run, fold_cases
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.stream import Delivery

TODAY = date(2021, 6, 1)
KEYED_BY_CASE = ("obligations", "obligations_responsibility", "obligations_case_events", "obligations_cases",
                 "obligations_failed_cases")
REPORTING_KEYED = ("reporting_obligations", "reporting_spells", "reporting_occurrences", "reporting_responsibility",
                   "reporting_citizens")


def case_events(case_id: str, first: int, last: int) -> list[StreamEvent]:
    documents = [("case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": f"p-{case_id}"}),
                 ("benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
                 ("plan.updated", {"date": "2019-02-01"}),
                 ("conversation.held", {"date": "2019-03-01"})]
    return [StreamEvent(f"{case_id}-{i}", "s", f"dk.frisag.{name}", case_id, None, data, i, i)
            for i, (name, data) in enumerate(documents, 1) if first <= i <= last]


def without_statistics(engine, tables) -> None:
    with engine.begin() as conn:  # whatever the server's autovacuum
        for table in tables:
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")


def store_cases(projection, cases: range, offset: int) -> int:
    """Cases `c-{i}` opened with their benefit and plan, 500 a batch; the next offset."""
    for start in range(cases.start, cases.stop, 500):
        events = [e for i in range(start, min(start + 500, cases.stop)) for e in case_events(f"c-{i}", 1, 3)]
        projection.store([Delivery(0, offset + i, e) for i, e in enumerate(events)])
        offset += len(events)
    return offset


def unkeyed_or_compiled(engine, tables) -> list[str]:
    """Filled, as statements are sent, with the tables a statement naming its cases reads from
    end to end, and with the statements PostgreSQL would compile first (JIT)."""
    amiss: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def explain(conn, cursor, statement, parameters, context, executemany):
        if executemany or not statement.startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            return
        plan = "\n".join(row[0] for row in conn.connection.driver_connection.execute(
            "EXPLAIN " + statement, parameters))
        if "JIT:" in plan:
            amiss.append(f"compiled: {statement[:60]}")
        if "= ANY (" in statement or ".case_id IN (" in statement:
            amiss.extend(f"{table}: {statement[:60]}" for table in tables if f"Seq Scan on {table} " in plan)

    return amiss


@pytest.mark.integration
def test_a_batch_of_known_cases_is_never_read_by_whole_table_without_statistics(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    projection = ObligationsProjection(engine, Catalog.load(), today=lambda: TODAY)
    without_statistics(engine, KEYED_BY_CASE)
    offset = store_cases(projection, range(2000), 0)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_statistic WHERE starelid = 'obligations'::regclass"
                                    ).scalar() == 0
    amiss = unkeyed_or_compiled(engine, KEYED_BY_CASE)

    # a live batch: the next event of 50 known cases, spread over the table
    known = [e for i in range(0, 2000, 40) for e in case_events(f"c-{i}", 4, 4)]
    assert projection.store([Delivery(0, offset + i, e) for i, e in enumerate(known)]) == 50
    # a catalog change: every case derived again
    assert projection.mark_stale() == 2000
    assert projection.refresh(chunk=500) == 2000
    engine.dispose()
    assert amiss == []


@pytest.mark.integration
def test_the_facts_of_changed_cases_are_read_through_the_keys_without_statistics(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    store = ReportingStore(engine, Catalog.load())
    without_statistics(engine, REPORTING_KEYED)
    offset = store_cases(store, range(3000), 0)
    facts = FactParts.load(engine)
    amiss = unkeyed_or_compiled(engine, REPORTING_KEYED)
    # 100 of the cases had a conversation since the facts were read: theirs are read again
    changed = [e for i in range(0, 3000, 30) for e in case_events(f"c-{i}", 4, 4)]
    assert store.store([Delivery(0, offset + i, e) for i, e in enumerate(changed)]) == 100
    refreshed = facts.refreshed(engine)
    assert refreshed.tick > facts.tick
    engine.dispose()
    assert amiss == []


@pytest.mark.integration
def test_a_what_if_folds_its_cases_read_through_the_keys_without_statistics(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    catalog = Catalog.load()
    store = ReportingStore(engine, catalog)
    without_statistics(engine, (*REPORTING_KEYED, "reporting_case_events"))
    store_cases(store, range(3000), 0)
    amiss = unkeyed_or_compiled(engine, (*REPORTING_KEYED, "reporting_case_events"))
    cells = fold_cases(engine, Run(catalog, catalog, date(2019, 1, 1), date(2019, 12, 31), TODAY),
                       [f"c-{i}" for i in range(1000, 3000)])  # a what-if's chunk of 2,000 cases
    assert cells.cases == 2000  # every one folded
    engine.dispose()
    assert amiss == []
