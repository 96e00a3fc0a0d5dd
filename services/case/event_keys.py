"""The idempotency keys of all cases: which case each (source, id) was stored in.

The contract makes (source, id) the key of an event whatever its subject, so a key is checked
across cases, not only within one. `cases_event_keys` holds one row per stored event, unique on
(source, id), written by the event store's recorder in the transaction that stores the events:
a key and its event are stored together or not at all, and two replicas storing one key for two
cases cannot both commit (the second gets the store's IntegrityError, and the ingest retries).
The rows hold no personal data: a source, an id (neither may hold a CPR number) and the case's
uuid; what the event said stays in the case's encrypted events.

Events stored before this table existed get their rows from `Cases.backfill_event_keys` (services.case.cases); a row
under `BACKFILLED` marks that done.
"""

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

TABLE = "cases_event_keys"
Key = tuple[str, str]
Row = tuple[str, str, UUID]  # source, id, case uuid
BACKFILLED: Row = ("urn:frisag:case-service", "event-keys-backfilled", UUID(int=0))
PAGE = 400  # keys per query: SQLite takes at most 999 parameters in a statement


class PostgresCaseRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.keys_table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(TABLE))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {} (source text NOT NULL, id text NOT NULL, case_uuid uuid NOT NULL, "
            "PRIMARY KEY (source, id))").format(self.keys_table))

    def _insert_stored_events(self, curs, stored_events: Sequence[StoredEvent], *, event_keys: Iterable[Row] = (),
                              **kwargs: Any) -> None:
        # after the events, under the library's table lock (writers one at a time: no deadlock),
        # where a unique violation is handled as the events' own; a cursor of its own, as the
        # library reads the notification ids from `curs`
        super()._insert_stored_events(curs, stored_events, **kwargs)
        rows = list(event_keys)
        if rows:
            # the events' own unique violation (another writer stored this case's version) is
            # raised here, as the library expects of its insert; queued behind it, the keys'
            # insert would turn it into an aborted pipeline, which is not retried
            curs.connection._pipeline.sync()  # the library's pipeline; psycopg names no other way to it
            with curs.connection.cursor() as keys_curs:
                keys_curs.executemany(
                    SQL("INSERT INTO {} (source, id, case_uuid) VALUES (%s, %s, %s)").format(self.keys_table), rows)

    def key_owners(self, keys: Iterable[Key]) -> dict[Key, UUID]:
        """The case each of these keys was stored in, for those stored."""
        keys, owners = list(keys), {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            for i in range(0, len(keys), PAGE * 10):
                page = keys[i:i + PAGE * 10]
                curs.execute(SQL("SELECT k.source, k.id, k.case_uuid FROM {} k JOIN unnest(%s::text[], %s::text[]) "
                                 "AS w(source, id) USING (source, id)").format(self.keys_table),
                             ([s for s, _ in page], [i for _, i in page]))
                owners.update({(r["source"], r["id"]): r["case_uuid"] for r in curs.fetchall()})
        return owners

    def add_keys(self, rows: Sequence[Row]) -> None:
        """Rows for events already stored (the backfill): those present stay."""
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(SQL("INSERT INTO {} (source, id, case_uuid) VALUES (%s, %s, %s) "
                                 "ON CONFLICT DO NOTHING").format(self.keys_table), sorted(rows))


class SQLiteCaseRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {TABLE} (source TEXT NOT NULL, id TEXT NOT NULL, "
                "case_uuid TEXT NOT NULL, PRIMARY KEY (source, id))"]

    def _insert_events(self, c, stored_events: Sequence[StoredEvent], *, event_keys: Iterable[Row] = (),
                       **kwargs: Any) -> Sequence[int] | None:
        c.executemany(f"INSERT INTO {TABLE} (source, id, case_uuid) VALUES (?, ?, ?)",
                      [(s, i, u.hex) for s, i, u in event_keys])
        return super()._insert_events(c, stored_events, **kwargs)

    def key_owners(self, keys: Iterable[Key]) -> dict[Key, UUID]:
        keys, owners = list(keys), {}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(keys), PAGE):
                page = keys[i:i + PAGE]
                c.execute(f"SELECT source, id, case_uuid FROM {TABLE} WHERE (source, id) IN "
                          f"(VALUES {', '.join(['(?, ?)'] * len(page))})", [v for key in page for v in key])
                owners.update({(r["source"], r["id"]): UUID(r["case_uuid"]) for r in c.fetchall()})
        return owners

    def add_keys(self, rows: Sequence[Row]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"INSERT OR IGNORE INTO {TABLE} (source, id, case_uuid) VALUES (?, ?, ?)",
                          [(s, i, u.hex) for s, i, u in rows])


RECORDERS = {"eventsourcing.postgres": PostgresCaseRecorder, "eventsourcing.sqlite": SQLiteCaseRecorder}
