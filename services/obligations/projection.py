"""The obligations projection: SQL tables derived from the stream, with exactly-once effect.

Each batch of deliveries is stored in one transaction together with the consumer's position
per partition, so a redelivered batch is recognised. Within a case, an event whose sequence
was already stored is skipped: redelivery and a relay's republishing change nothing.
Obligations are derived from the stored events by the pure fold; a case whose events changed
gets a new version in the same transaction and is re-folded afterwards, by another loop,
possibly in worker processes (`refresh`).
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.obligations import DUE_SOON, Obligation, fold
from shared.stream import Delivery

HORIZON = timedelta(days=400)  # stored obligations reach this far past today and the last event

metadata = MetaData()
positions = Table(
    "obligations_positions", metadata,
    Column("consumer_group", String(100), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", Integer, nullable=False),
)
case_events = Table(
    "obligations_case_events", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("data", JSON, nullable=False),
)
cases = Table(
    "obligations_cases", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("last_sequence", Integer, nullable=False),
    # bumped by every change (new events, a catalog change); the obligations are current when
    # they were folded at the case's version
    Column("version", Integer, nullable=False),
    Column("folded_version", Integer, nullable=False),
)
STALE = cases.c.version > cases.c.folded_version
responsibility = Table(  # which municipality is responsible for a case, from when
    "obligations_responsibility", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),  # exclusive; None while it lasts
    Column("municipality", String(3), nullable=False, index=True),
)
obligations = Table(
    "obligations", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("rule", String(64), nullable=False),
    Column("due", Date, nullable=False, index=True),
    Column("deadline", Date, nullable=False),
    Column("arises_on", Date, nullable=False),
    Column("basis", String(16), nullable=False),
    Column("done_on", Date),
    Column("municipality", String(3)),
    Column("caseworker", String(64)),
    Column("document", JSON, nullable=False),  # title, legal reference, exemption, because
)


class StoredEvent:
    """A stored event as the fold reads it."""

    __slots__ = ("name", "data")

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name, self.data = name, data


class ObligationsProjection:
    def __init__(self, engine: Engine, catalog: Catalog, group: str = "obligations", today=date.today) -> None:
        self.engine = engine
        self.catalog = catalog
        self.group = group
        self.today = today
        metadata.create_all(engine)

    # -- consuming -------------------------------------------------------------------------

    def resume_from(self, partition: int) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(positions.c.next_offset).where(
                    positions.c.consumer_group == self.group, positions.c.partition == partition)
            ).scalar()

    def store(self, deliveries: Sequence[Delivery]) -> int:
        """Store a batch exactly once, with the positions it advances; return how many events
        were new. The cases it changed are marked stale."""
        if not deliveries:
            return 0
        with self.engine.begin() as conn:
            offsets = self._positions(conn)
            fresh = [d for d in deliveries if d.offset >= offsets.get(d.partition, 0)]
            by_case: dict[str, list[StreamEvent]] = defaultdict(list)
            for d in fresh:
                by_case[d.event.subject].append(d.event)
            known = dict(conn.execute(
                select(cases.c.case_id, cases.c.last_sequence).where(cases.c.case_id.in_(list(by_case)))
            ).all()) if by_case else {}
            rows, changed = [], {}
            for case_id, events in by_case.items():
                last = known.get(case_id, 0)
                for e in sorted(events, key=lambda e: e.sequence):
                    if e.sequence > last:  # earlier sequences were applied already
                        rows.append({"case_id": case_id, "sequence": e.sequence, "name": e.name, "data": e.data})
                        last = e.sequence
                if last != known.get(case_id, 0):
                    changed[case_id] = last
            _insert_many(conn, case_events, rows)
            updated = [{"id": c, "last": s} for c, s in changed.items() if c in known]
            if updated:
                conn.execute(update(cases).where(cases.c.case_id == bindparam("id"))
                             .values(last_sequence=bindparam("last"), version=cases.c.version + 1), updated)
            new_cases = [{"case_id": c, "last_sequence": s, "version": 1, "folded_version": 0}
                         for c, s in changed.items() if c not in known]
            _insert_many(conn, cases, new_cases)
            advanced = {}
            for d in deliveries:
                advanced[d.partition] = max(advanced.get(d.partition, 0), d.offset + 1)
            self._save_positions(conn, offsets, advanced)
            return len(rows)

    def _positions(self, conn) -> dict[int, int]:
        return dict(conn.execute(
            select(positions.c.partition, positions.c.next_offset).where(positions.c.consumer_group == self.group)
        ).all())

    def _save_positions(self, conn, current: dict[int, int], advanced: dict[int, int]) -> None:
        for partition, next_offset in advanced.items():
            if partition not in current:
                conn.execute(insert(positions).values(consumer_group=self.group, partition=partition, next_offset=next_offset))
            elif next_offset > current[partition]:
                conn.execute(update(positions).where(
                    positions.c.consumer_group == self.group, positions.c.partition == partition
                ).values(next_offset=next_offset))

    # -- deriving obligations --------------------------------------------------------------

    def refresh(self, chunk: int = 2000, pool: Executor | None = None) -> int:
        """Re-fold stale cases, `chunk` to a transaction, in `pool`'s worker processes when
        given (cases are independent: the fold is pure); return how many were re-folded."""
        total = 0
        width = chunk * (getattr(pool, "_max_workers", 1) if pool else 1)
        while True:
            with self.engine.connect() as conn:
                stale = [tuple(r) for r in conn.execute(select(cases.c.case_id, cases.c.version).where(STALE).limit(width))]
            if not stale:
                return total
            chunks = [stale[i:i + chunk] for i in range(0, len(stale), chunk)]
            today = self.today()
            if pool is None:
                for part in chunks:
                    refold(self.engine, self.catalog, today, part)
            else:
                url = self.engine.url.render_as_string(hide_password=False)
                list(pool.map(refold_in_worker, [(url, self.catalog, today, part) for part in chunks]))
            total += len(stale)

    def mark_stale(self, municipalities: Iterable[str] | None = None) -> int:
        """Mark cases for re-folding after a catalog change: those ever responsible in one of
        `municipalities`, or all of them."""
        with self.engine.begin() as conn:
            statement = update(cases).values(version=cases.c.version + 1)
            if municipalities is not None:
                statement = statement.where(cases.c.case_id.in_(
                    select(responsibility.c.case_id).where(responsibility.c.municipality.in_(list(municipalities)))))
            return conn.execute(statement).rowcount

    # -- reading ---------------------------------------------------------------------------

    def history(self, case_id: str) -> list[StoredEvent] | None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(case_events.c.name, case_events.c.data)
                                .where(case_events.c.case_id == case_id).order_by(case_events.c.sequence)).all()
        return [StoredEvent(name, data) for name, data in rows] or None

    def for_case(self, case_id: str, as_of: date) -> list[dict[str, Any]] | None:
        """Exact: folded from the case's stored events as of that date."""
        events = self.history(case_id)
        if events is None:
            return None
        return [o.as_json(case_id, as_of) for o in fold(events, self.catalog, as_of)]

    def worklist(self, *, as_of: date, municipality: str | None = None, caseworker: str | None = None,
                 status: str | None = None, due_before: date | None = None, due_after: date | None = None,
                 limit: int = 100, after: tuple[date, str, int] | None = None) -> list[dict[str, Any]]:
        """Obligations of the cases a municipality is responsible for on `as_of`, by due date."""
        o, r = obligations, responsibility
        query = select(o).where(o.c.arises_on <= as_of)
        if municipality is not None:
            query = query.join(r, and_(r.c.case_id == o.c.case_id, r.c.valid_from <= as_of,
                                       or_(r.c.valid_to.is_(None), r.c.valid_to > as_of))).where(r.c.municipality == municipality)
        if caseworker is not None:
            query = query.where(o.c.caseworker == caseworker)
        if due_before is not None:
            query = query.where(o.c.due <= due_before)
        if due_after is not None:
            query = query.where(o.c.due >= due_after)
        if status is not None:
            query = query.where(_status_is(status, as_of))
        if after is not None:
            due, case_id, n = after
            query = query.where(or_(o.c.due > due, and_(o.c.due == due, or_(
                o.c.case_id > case_id, and_(o.c.case_id == case_id, o.c.n > n)))))
        query = query.order_by(o.c.due, o.c.case_id, o.c.n).limit(limit)
        with self.engine.connect() as conn:
            return [_from_row(row, as_of) for row in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "cases": conn.execute(select(func.count()).select_from(cases)).scalar(),
                "stale": conn.execute(select(func.count()).select_from(cases).where(STALE)).scalar(),
                "obligations": conn.execute(select(func.count()).select_from(obligations)).scalar(),
            }

    def snapshot(self) -> list[tuple]:
        """Everything derived, in a stable order: to compare a projection with a rebuild."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(obligations).order_by(obligations.c.case_id, obligations.c.n)).all()
            events = conn.execute(select(case_events).order_by(case_events.c.case_id, case_events.c.sequence)).all()
        return [tuple(r) for r in rows] + [tuple(e) for e in events]


def refold(engine: Engine, catalog: Catalog, today: date, stale: Sequence[tuple[str, int]]) -> None:
    """Fold these cases again from their stored events, in one transaction. A case changed
    after its version was read stays stale and is folded again in a later round."""
    case_ids = [case_id for case_id, _ in stale]
    with engine.begin() as conn:
        histories: dict[str, list[StoredEvent]] = defaultdict(list)
        for case_id, name, data in conn.execute(
            select(case_events.c.case_id, case_events.c.name, case_events.c.data)
            .where(case_events.c.case_id.in_(case_ids)).order_by(case_events.c.case_id, case_events.c.sequence)
        ):
            histories[case_id].append(StoredEvent(name, data))
        conn.execute(delete(obligations).where(obligations.c.case_id.in_(case_ids)))
        conn.execute(delete(responsibility).where(responsibility.c.case_id.in_(case_ids)))
        rows, periods = [], []
        for case_id, events in histories.items():
            last = max(date.fromisoformat(e.data["date"]) for e in events)
            caseworker = _caseworker(events)
            for n, o in enumerate(fold(events, catalog, max(last, today) + HORIZON)):
                rows.append(_row(case_id, n, o, caseworker))
            periods += _responsibility(case_id, events)
        _insert_many(conn, obligations, rows)
        _insert_many(conn, responsibility, periods)
        conn.execute(update(cases).where(cases.c.case_id == bindparam("id")).values(folded_version=bindparam("v")),
                     [{"id": case_id, "v": version} for case_id, version in stale])


_worker_engines: dict[str, Engine] = {}


def refold_in_worker(job: tuple[str, Catalog, date, Sequence[tuple[str, int]]]) -> None:
    """`refold` in a worker process, with an engine of its own per database."""
    url, catalog, today, stale = job
    if url not in _worker_engines:
        _worker_engines[url] = create_engine(url)
    refold(_worker_engines[url], catalog, today, stale)


def _insert_many(conn, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert in the open transaction: PostgreSQL's COPY (an executemany sends a statement
    per row), the driver's executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = [c.name for c in table.columns]
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row.get(c)) if c in as_json else row.get(c) for c in columns])


def _status_is(status: str, as_of: date):
    o = obligations
    open_ = and_(o.c.basis == "required", or_(o.c.done_on.is_(None), o.c.done_on > as_of))
    return {
        "waived": o.c.basis == "waived",
        "suspended": o.c.basis == "suspended",
        "done": and_(o.c.basis == "required", o.c.done_on <= as_of),
        "overdue": and_(open_, o.c.deadline < as_of),
        "due": and_(open_, o.c.deadline >= as_of, o.c.due <= as_of + DUE_SOON),
        "upcoming": and_(open_, o.c.due > as_of + DUE_SOON),
    }[status]


def _row(case_id: str, n: int, o: Obligation, caseworker: str | None) -> dict[str, Any]:
    return {
        "case_id": case_id, "n": n, "rule": o.rule, "due": o.due, "deadline": o.deadline, "arises_on": o.arises_on,
        "basis": o.basis, "done_on": o.done_on, "municipality": o.municipality, "caseworker": caseworker,
        "document": {"title": o.title, "legal_reference": o.legal_reference,
                     "exemption": o.exemption.as_json() if o.exemption else None, "because": list(o.because)},
    }


def _from_row(row, as_of: date) -> dict[str, Any]:
    o = Obligation(
        rule=row["rule"], title=row["document"]["title"], legal_reference=row["document"]["legal_reference"],
        due=row["due"], deadline=row["deadline"], arises_on=row["arises_on"], basis=row["basis"],
        municipality=row["municipality"], done_on=row["done_on"], because=tuple(row["document"]["because"]),
    )
    answer = o.as_json(row["case_id"], as_of)
    answer["exemption"] = row["document"]["exemption"]
    answer["caseworker"] = row["caseworker"]
    answer["cursor"] = f"{row['due'].isoformat()}|{row['case_id']}|{row['n']}"
    return answer


def _caseworker(events: list[StoredEvent]) -> str | None:
    assigned = [e for e in events if e.name == "case.assigned"]
    return max(assigned, key=lambda e: e.data["date"]).data["caseworker"] if assigned else None


def _responsibility(case_id: str, events: list[StoredEvent]) -> list[dict[str, Any]]:
    moves = sorted((e.data["date"], i, e.data["municipality"]) for i, e in enumerate(events)
                   if e.name in ("case.opened", "case.moved"))
    periods: list[dict[str, Any]] = []
    for day, _, municipality in moves:
        start = date.fromisoformat(day)
        if periods and periods[-1]["valid_from"] == start:
            periods[-1]["municipality"] = municipality  # two on one day: the later one counts
            continue
        if periods:
            periods[-1]["valid_to"] = start
        periods.append({"case_id": case_id, "valid_from": start, "valid_to": None, "municipality": municipality})
    return periods
