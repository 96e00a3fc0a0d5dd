"""A projection's writes find a batch's cases through the primary key, whatever PostgreSQL's
statistics say (issue 21). With none (autovacuum off, or behind after a rebuild), PostgreSQL
guessed that 50 case ids match a fifth of a table and read the whole table for each batch: at a
million cases two seconds a batch, and a re-evaluation of every case took 381 s instead of 195.
The plans are read with EXPLAIN of each statement, in its own transaction, as it is sent."""

from datetime import date

import pytest
from sqlalchemy import create_engine, event

from services.obligations.projection import ObligationsProjection
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.stream import Delivery

TODAY = date(2021, 6, 1)
KEYED_BY_CASE = ("obligations", "obligations_responsibility", "obligations_case_events", "obligations_cases",
                 "obligations_failed_cases")


def case_events(case_id: str, first: int, last: int) -> list[StreamEvent]:
    documents = [("case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": f"p-{case_id}"}),
                 ("benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
                 ("plan.updated", {"date": "2019-02-01"}),
                 ("conversation.held", {"date": "2019-03-01"})]
    return [StreamEvent(f"{case_id}-{i}", "s", f"dk.frisag.{name}", case_id, None, data, i, i)
            for i, (name, data) in enumerate(documents, 1) if first <= i <= last]


@pytest.mark.integration
def test_a_batch_of_known_cases_is_never_read_by_whole_table_without_statistics(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    projection = ObligationsProjection(engine, Catalog.load(), today=lambda: TODAY)
    with engine.begin() as conn:  # no statistics, whatever the server's autovacuum
        for table in KEYED_BY_CASE:
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    offset = 0
    for start in range(0, 2000, 500):
        events = [e for i in range(start, start + 500) for e in case_events(f"c-{i}", 1, 3)]
        projection.store([Delivery(0, offset + i, e) for i, e in enumerate(events)])
        offset += len(events)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_statistic WHERE starelid = 'obligations'::regclass"
                                    ).scalar() == 0

    scans: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def explain(conn, cursor, statement, parameters, context, executemany):
        if not executemany and "= ANY (" in statement:  # a statement naming its cases
            plan = "\n".join(row[0] for row in conn.connection.driver_connection.execute(
                "EXPLAIN " + statement, parameters))
            scans.extend(f"{table}: {statement[:60]}" for table in KEYED_BY_CASE if f"Seq Scan on {table} " in plan)

    # a live batch: the next event of 50 known cases, spread over the table
    known = [e for i in range(0, 2000, 40) for e in case_events(f"c-{i}", 4, 4)]
    assert projection.store([Delivery(0, offset + i, e) for i, e in enumerate(known)]) == 50
    # a catalog change: every case derived again
    assert projection.mark_stale() == 2000
    assert projection.refresh(chunk=500) == 2000
    engine.dispose()
    assert scans == []
