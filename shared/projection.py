"""Projections of the case-event stream into SQL, with exactly-once effect; the obligations and
reporting services each keep one.

Each batch of deliveries is stored in one transaction together with the consumer's position
per partition, so a redelivered batch is recognised. Within a case, an event whose sequence was
already stored is skipped: redelivery and a relay's republishing change nothing. What a service
derives from a case (its `Derivation`) is derived in the same transaction from the case's events,
so what is derived always matches what is stored. Each transaction that derives cases ticks the
projection's clock and marks its cases with the tick, so a reader of what is derived can ask for
what changed since the tick it saw (`tick`). A catalog change makes cases stale (`mark_stale`):
they are derived again afterwards (`refresh`), possibly in worker processes, since cases are
independent. When a case is erased (`case.erased`), its events are deleted once derived; what
the derivation keeps of it is up to the derivation (`Derivation.erased`).

A derivation that fails for a case stops nothing else: the case keeps its events but no derived
rows (they would be stale), and is recorded in `<prefix>_failed_cases` with the error and the
release it failed under, in the same transaction; the batch's other cases are derived and the
positions move on. A failed case is derived again after its next event, when the projection
starts under another release or gets another catalog, or when an operator retries
(`retry_failed`); once it succeeds, its record goes.
"""

import gc
import hashlib
import importlib.metadata
import logging
import sys
import threading
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import orjson
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from shared.migrations import upgrade
from shared.stream import Delivery

log = logging.getLogger(__name__)


class StoredEvent:
    """A stored event as a derivation reads it."""

    __slots__ = ("name", "data", "permitted_by")

    def __init__(self, name: str, data: dict[str, Any], permitted_by: str | None = None) -> None:
        self.name, self.data, self.permitted_by = name, data, permitted_by


ERASED = "case.erased"  # the case service erased the case: drop its events (`derive`)


class CaseErasedError(Exception):
    """The case was erased: the projection keeps none of its events."""


class CaseNotDerivedError(Exception):
    """The derivation failed for the case (`failure`: its record, as `CaseProjection.failed`
    lists them); `municipality`: the one responsible for it, as far as its events tell."""

    def __init__(self, case_id: str, failure: dict[str, Any], municipality: str | None) -> None:
        super().__init__(case_id)
        self.case_id, self.failure, self.municipality = case_id, failure, municipality


class Failure(NamedTuple):
    error: str  # the exception's type and message
    municipality: str | None  # responsible by the case's latest opening or move, for worklists


ERROR_LENGTH = 500  # of a failure's text, kept


class Derivation(ABC):
    """What a projection derives from one case's events: rows of its own tables, each with a
    `case_id` column. Instances travel to worker processes, so they hold only picklable data."""

    tables: ClassVar[tuple[Table, ...]]

    @abstractmethod
    def derive(self, case_id: str, events: list[StoredEvent]) -> dict[Table, list[dict[str, Any]]]: ...

    def erased(self, case_id: str, events: list[StoredEvent]) -> dict[Table, list[dict[str, Any]]]:
        """What is kept of an erased case (`events` ends with its erasure): by default nothing."""
        return {}

    def inputs(self) -> bytes:
        """What it derives from besides the code, e.g. a catalog: see `release`."""
        return b""

    @cached_property
    def release(self) -> str:
        """What a failed case failed under: the package's version and a digest of the code (the
        shared package and the derivation's own modules) and of `inputs`. A failed case is
        derived again under another: a fix may be in it."""
        digest = hashlib.sha256(_code_digest(type(self)) + self.inputs()).hexdigest()[:12]
        return f"{_package_version()}+{digest}"


@cache
def _code_digest(derivation: type) -> bytes:
    files = set(Path(__file__).parent.rglob("*.py"))
    files.update(Path(module.__file__) for c in derivation.__mro__ if issubclass(c, Derivation)
                 and (module := sys.modules.get(c.__module__)) is not None and getattr(module, "__file__", None))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.digest()


@cache
def _package_version() -> str:
    try:
        return importlib.metadata.version("frisag")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def store_tables(prefix: str) -> tuple[MetaData, Table, Table, Table, Table]:
    """The tables every projection keeps: positions, the cases' events, the cases, and the
    clock that numbers what was derived."""
    metadata = MetaData()
    positions = Table(
        f"{prefix}_positions", metadata,
        Column("consumer_group", String(100), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("next_offset", Integer, nullable=False),
    )
    case_events = Table(
        f"{prefix}_case_events", metadata,
        Column("case_id", String(64), primary_key=True),
        Column("sequence", Integer, primary_key=True, autoincrement=False),
        Column("name", String(64), nullable=False),
        Column("data", JSON, nullable=False),
        Column("permitted_by", String(8)),
    )
    cases = Table(
        f"{prefix}_cases", metadata,
        Column("case_id", String(64), primary_key=True),
        Column("last_sequence", Integer, nullable=False),
        # bumped by every change (new events, a catalog change); what is derived is current
        # when it was derived at the case's version
        Column("version", Integer, nullable=False),
        Column("derived_version", Integer, nullable=False),
        # the clock's tick when last derived: what changed since a reader looked (migration 0003)
        Column("derived_tick", BigInteger, nullable=False, server_default="0", index=True),
    )
    # one row, ticked by each transaction that derives cases; it is locked from the tick to the
    # commit, so ticks are committed in order: a reader that sees tick T sees all before it.
    # The epoch moves when everything derived is dropped (`clear`): a reader starts over
    clock = Table(
        f"{prefix}_clock", metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("tick", BigInteger, nullable=False),
        Column("epoch", Integer, nullable=False, server_default="0"),
    )
    # the few stale cases among many, for refresh (migration 0002)
    stale = cases.c.version > cases.c.derived_version
    Index(f"ix_{prefix}_cases_stale", cases.c.case_id, postgresql_where=stale, sqlite_where=stale)
    # cases the derivation failed for, with why, when and under which release (migration 0004;
    # `failed_cases_table`)
    Table(
        f"{prefix}_failed_cases", metadata,
        Column("case_id", String(64), primary_key=True),
        Column("last_sequence", Integer, nullable=False),  # the case's events up to this one failed
        Column("error", String(ERROR_LENGTH), nullable=False),
        Column("failed_at", DateTime(timezone=True), nullable=False),
        Column("release", String(100), nullable=False),
        Column("municipality", String(3), index=True),
    )
    return metadata, positions, case_events, cases, clock


def failed_cases_table(prefix: str) -> Table:
    return store_tables(prefix)[0].tables[f"{prefix}_failed_cases"]


def service_metadata(prefix: str, derived: MetaData) -> MetaData:
    """All of a projection's tables in one MetaData, as its migrations describe them: the store
    tables and the derived ones."""
    metadata = MetaData()
    for part in (store_tables(prefix)[0], derived):
        for table in part.tables.values():
            table.to_metadata(metadata)
    return metadata


class Derivations:
    """A projection's derivation, and its replacement after a catalog change. Replacing waits
    until no transaction still derives with the old one, so the cases a catalog change then marks
    stale include every case derived the old way."""

    def __init__(self, derivation: Derivation) -> None:
        self.current = derivation
        self._generation, self._changed = 0, threading.Condition()
        self._users: Counter[int] = Counter()  # transactions deriving, by generation

    @contextmanager
    def use(self) -> Iterator[Derivation]:
        with self._changed:
            generation, derivation = self._generation, self.current
            self._users[generation] += 1
        try:
            yield derivation
        finally:
            with self._changed:
                self._users[generation] -= 1
                if not self._users[generation]:
                    del self._users[generation]
                self._changed.notify_all()

    def replace(self, derivation: Derivation) -> None:
        with self._changed:
            self._generation += 1
            self.current, generation = derivation, self._generation
            self._changed.wait_for(lambda: all(g >= generation for g in self._users))


class CaseProjection:
    def __init__(self, engine: Engine, prefix: str, group: str, derivation: Derivation) -> None:
        self.engine, self.prefix, self.group = engine, prefix, group
        self.derivations = Derivations(derivation)
        _, self.positions, self.case_events, self.cases, self.clock = store_tables(prefix)
        self.failed_cases = failed_cases_table(prefix)
        upgrade(engine, prefix)  # the service's tables are the projection's, named by its prefix
        self.retry_failed(other_releases=True)  # a new release, or catalog, may derive them

    @property
    def derivation(self) -> Derivation:
        return self.derivations.current

    @derivation.setter
    def derivation(self, derivation: Derivation) -> None:
        """Derive with this from now on; returns once nothing derives with the one before. The
        cases that failed under another release are tried again."""
        self.derivations.replace(derivation)
        self.retry_failed(other_releases=True)

    @property
    def stale(self):
        return self.cases.c.version > self.cases.c.derived_version

    def resume_from(self, partition: int) -> int | None:
        p = self.positions
        with self.engine.connect() as conn:
            return conn.execute(select(p.c.next_offset).where(p.c.consumer_group == self.group,
                                                              p.c.partition == partition)).scalar()

    def store(self, deliveries: Sequence[Delivery]) -> int:
        """Store a batch exactly once, with the positions it advances, and derive the cases it
        changed, in one transaction; return how many events were new."""
        if not deliveries:
            return 0
        cases = self.cases
        with self.derivations.use() as derivation, self.engine.begin() as conn:
            through_keys(conn)
            offsets = self._positions(conn)
            by_case: dict[str, list] = defaultdict(list)
            for d in deliveries:
                if d.offset >= offsets.get(d.partition, 0):
                    by_case[d.event.subject].append(d.event)
            # locked, in one order: a refresh deriving one of them (it skips locked cases)
            # commits first, and a catalog change's mark_stale waits for this commit
            known = {case_id: (last, version, had_failed) for case_id, last, version, had_failed in conn.execute(
                select(cases.c.case_id, cases.c.last_sequence, cases.c.version, _has_failed(self.failed_cases, cases))
                .where(_among(conn, cases.c.case_id, list(by_case))).order_by(cases.c.case_id)
                .with_for_update(of=cases)
            )} if by_case else {}
            rows: list[dict[str, Any]] = []
            new: dict[str, list[StoredEvent]] = defaultdict(list)
            for case_id, events in by_case.items():
                last = known[case_id][0] if case_id in known else 0
                for e in sorted(events, key=lambda e: e.sequence) if len(events) > 1 else events:
                    if e.sequence > last:  # earlier sequences were applied already
                        name = e.name
                        rows.append({"case_id": case_id, "sequence": e.sequence, "name": name, "data": e.data,
                                     "permitted_by": e.permitted_by})
                        new[case_id].append(StoredEvent(name, e.data, e.permitted_by))
                        last = e.sequence
            advanced: dict[int, int] = {}
            for d in deliveries:
                advanced[d.partition] = max(advanced.get(d.partition, 0), d.offset + 1)
            self._save_positions(conn, offsets, advanced)
            if not new:
                return 0
            histories = stored_histories(conn, self.case_events, [case_id for case_id in new if case_id in known])
            insert_many(conn, self.case_events, rows)
            for case_id, events in new.items():
                histories[case_id] += events
            failed = _derive(conn, derivation, histories, self.case_events, [c for c in new if c in known])
            last_sequence = {row["case_id"]: row["sequence"] for row in rows}
            had_failed = [case_id for case_id in new if case_id in known and known[case_id][2]]
            _record_failures(conn, self.failed_cases, had_failed, failed, last_sequence, derivation.release)
            changed = [{"id": case_id, "last": last_sequence[case_id], "v": known[case_id][1] + 1}
                       for case_id in new if case_id in known]
            if changed:
                conn.execute(update(cases).where(cases.c.case_id == bindparam("id")).values(
                    last_sequence=bindparam("last"), version=bindparam("v"), derived_version=bindparam("v")), changed)
            # last (see `derive`): new cases are inserted with their tick, known ones marked
            tick = _tick(conn, self.clock)
            insert_many(conn, cases, [{"case_id": case_id, "last_sequence": last_sequence[case_id], "version": 1,
                                       "derived_version": 1, "derived_tick": tick}
                                      for case_id in new if case_id not in known])
            if changed:
                conn.execute(update(cases).where(_among(conn, cases.c.case_id, [c["id"] for c in changed]))
                             .values(derived_tick=tick))
            return len(rows)

    def stored_positions(self) -> dict[int, int]:
        """Per partition, the next offset to read."""
        with self.engine.connect() as conn:
            return self._positions(conn)

    def _positions(self, conn) -> dict[int, int]:
        p = self.positions
        return dict(conn.execute(select(p.c.partition, p.c.next_offset).where(p.c.consumer_group == self.group)).all())

    def _save_positions(self, conn, current: dict[int, int], advanced: dict[int, int]) -> None:
        p = self.positions
        for partition, next_offset in advanced.items():
            if partition not in current:
                conn.execute(insert(p).values(consumer_group=self.group, partition=partition, next_offset=next_offset))
            elif next_offset > current[partition]:
                conn.execute(update(p).where(p.c.consumer_group == self.group, p.c.partition == partition)
                             .values(next_offset=next_offset))

    def refresh(self, chunk: int = 2000, pool: Executor | None = None) -> int:
        """Derive stale cases again, `chunk` to a transaction, in `pool`'s worker processes when
        given; return how many were derived."""
        self.refresh_marks()
        total = 0
        width = chunk * (getattr(pool, "_max_workers", 1) if pool else 1)
        while True:
            with self.derivations.use() as derivation:
                with self.engine.connect() as conn:
                    stale = list(conn.execute(select(self.cases.c.case_id).where(self.stale).limit(width)).scalars())
                chunks = [stale[i:i + chunk] for i in range(0, len(stale), chunk)]
                if pool is None:
                    derived = sum(derive(self.engine, self.prefix, derivation, part) for part in chunks)
                else:
                    url = self.engine.url.render_as_string(hide_password=False)
                    derived = sum(pool.map(derive_in_worker, [(url, self.prefix, derivation, part) for part in chunks]))
            if not derived:  # none stale, or another replica is deriving them
                return total
            total += derived

    def refresh_marks(self) -> int:
        """Mark what a projection wants derived again before each refresh (none by default);
        how many were marked."""
        return 0

    def mark_stale(self, case_ids: Select | None = None) -> int:
        """Have these cases (all, by default) derived again, e.g. after a catalog change."""
        statement = update(self.cases).values(version=self.cases.c.version + 1)
        if case_ids is not None:
            statement = statement.where(self.cases.c.case_id.in_(case_ids))
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    def history(self, case_id: str) -> list[StoredEvent] | None:
        """The case's stored events; None for no such case; CaseErasedError for an erased one."""
        e = self.case_events
        with self.engine.connect() as conn:
            rows = conn.execute(select(e.c.name, e.c.data, e.c.permitted_by)
                                .where(e.c.case_id == case_id).order_by(e.c.sequence)).all()
            known = bool(rows) or conn.execute(select(self.cases.c.case_id).where(self.cases.c.case_id == case_id)).first()
        if (rows and rows[-1].name == ERASED) or (known and not rows):  # erased: soon, or already, without events
            raise CaseErasedError(case_id)
        return [StoredEvent(*row) for row in rows] or None

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "cases": conn.execute(select(func.count()).select_from(self.cases)).scalar(),
                "stale": conn.execute(select(func.count()).select_from(self.cases).where(self.stale)).scalar(),
                "failed": conn.execute(select(func.count()).select_from(self.failed_cases)).scalar(),
            }

    def failed(self, limit: int | None = None, *, municipality: str | None = None) -> list[dict[str, Any]]:
        """The cases the derivation failed for, oldest failure first (of `municipality`'s only:
        responsible by their latest opening or move)."""
        f = self.failed_cases
        query = select(f).order_by(f.c.failed_at, f.c.case_id).limit(limit)
        if municipality is not None:
            query = query.where(f.c.municipality == municipality)
        with self.engine.connect() as conn:
            return [_failure_json(row) for row in conn.execute(query).mappings()]

    def failure(self, case_id: str) -> dict[str, Any] | None:
        """The case's failure record, if the derivation failed for it."""
        f = self.failed_cases
        with self.engine.connect() as conn:
            row = conn.execute(select(f).where(f.c.case_id == case_id)).mappings().first()
        return _failure_json(row) if row else None

    def retry_failed(self, *, other_releases: bool = False) -> int:
        """Have the failed cases derived again (`refresh`): all, or those that failed under
        another release than the current derivation's."""
        ids = select(self.failed_cases.c.case_id)
        if other_releases:
            ids = ids.where(self.failed_cases.c.release != self.derivation.release)
        return self.mark_stale(ids)

    def tick(self) -> int:
        """The clock: it moves whenever cases are derived."""
        with self.engine.connect() as conn:
            return conn.execute(select(self.clock.c.tick)).scalar_one()

    def clear(self) -> None:
        """Drop everything stored and derived, positions too (a rebuild follows); readers of
        what was derived are told by the clock's epoch."""
        with self.engine.begin() as conn:
            for table in (*self.derivation.tables, self.cases, self.case_events, self.positions, self.failed_cases):
                conn.execute(delete(table))
            conn.execute(update(self.clock).values(epoch=self.clock.c.epoch + 1))

    def snapshot(self, case_ids: Collection[str] | None = None) -> list[tuple]:
        """Everything stored and derived (of these cases, or all), in a stable order: to compare
        with a rebuild."""
        with self.engine.connect() as conn:
            rows = []
            for table in (self.case_events, *self.derivation.tables):
                query = select(table).order_by(*table.primary_key.columns)
                if case_ids is not None:
                    query = query.where(_among(conn, table.c.case_id, list(case_ids)))
                rows += [tuple(r) for r in conn.execute(query)]
        return rows


def derive(engine: Engine, prefix: str, derivation: Derivation, case_ids: Sequence[str]) -> int:
    """Derive these cases again from their stored events, in one transaction, if stale. Each case
    is locked first: of several consumer processes (replicas) that found it stale, one derives it
    and the others skip it. Returns how many it derived."""
    _, _, case_events, cases, clock = store_tables(prefix)
    failed_cases = failed_cases_table(prefix)
    with engine.begin() as conn:
        through_keys(conn)
        stale = conn.execute(select(cases.c.case_id, cases.c.last_sequence,
                                    _has_failed(failed_cases, cases))
                             .where(_among(conn, cases.c.case_id, list(case_ids)), cases.c.version > cases.c.derived_version)
                             .with_for_update(of=cases, skip_locked=True)).all()
        if not stale:
            return 0
        case_ids = [row.case_id for row in stale]
        failed = _derive(conn, derivation, stored_histories(conn, case_events, case_ids), case_events, case_ids)
        _record_failures(conn, failed_cases, [row.case_id for row in stale if row.had_failed], failed,
                         {row.case_id: row.last_sequence for row in stale}, derivation.release)
        tick = _tick(conn, clock)
        # the version read is the version now: the rows are locked
        conn.execute(update(cases).where(_among(conn, cases.c.case_id, case_ids))
                     .values(derived_version=cases.c.version, derived_tick=tick))
    return len(stale)


def stored_histories(conn, case_events: Table, case_ids: list[str]) -> dict[str, list[StoredEvent]]:
    """The stored events of these cases, in order. Each event's data is read as text and parsed
    by orjson: a third of the CPU time the driver's JSON parsing takes."""
    histories: dict[str, list[StoredEvent]] = defaultdict(list)
    if case_ids:
        e = case_events
        for case_id, name, data, permitted_by in conn.execute(
            select(e.c.case_id, e.c.name, cast(e.c.data, Text), e.c.permitted_by)
            .where(_among(conn, e.c.case_id, case_ids)).order_by(e.c.case_id, e.c.sequence)
        ).all():
            histories[case_id].append(StoredEvent(name, orjson.loads(data), permitted_by))
    return histories


def _derive(conn, derivation: Derivation, histories: dict[str, list[StoredEvent]],
            case_events: Table, derived_before: list[str]) -> dict[str, Failure]:
    """What `derivation` derives from these cases' events, in place of what it derived before
    for those `derived_before` (a case stored for the first time has nothing to replace: in a
    rebuild, most of a batch); returns the cases it failed for, which keep nothing derived. An
    erased case's events are deleted (its row stays, so redelivered events are skipped), even
    if deriving what is kept of it failed: the erasure comes first."""
    rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    erased = []
    failed: dict[str, Failure] = {}
    for case_id, events in histories.items():
        try:  # free in Python 3.11 while nothing raises
            if events[-1].name == ERASED:
                erased.append(case_id)
                derived = derivation.erased(case_id, events)
            else:
                derived = derivation.derive(case_id, events)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not stop the other cases
            log.error("deriving case %s failed; recorded, the other cases go on", case_id, exc_info=True)
            failed[case_id] = Failure(f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH], _responsible(events))
            continue
        for table, table_rows in derived.items():
            rows[table] += table_rows
    for table in derivation.tables:
        if derived_before:
            conn.execute(delete(table).where(_among(conn, table.c.case_id, derived_before)))
        insert_many(conn, table, rows[table])
    if erased:
        conn.execute(delete(case_events).where(_among(conn, case_events.c.case_id, erased)))
    return failed


def _has_failed(failed_cases: Table, cases: Table):
    """Whether a case has a failure recorded: read with the cases a transaction locks, so that
    one deriving cases none of which failed, the usual one, spends no statement on failures."""
    return exists().where(failed_cases.c.case_id == cases.c.case_id).label("had_failed")


def _record_failures(conn, table: Table, had_failed: list[str], failed: dict[str, Failure],
                     last_sequence: dict[str, int], release: str) -> None:
    """Record the failures of the cases just derived, in place of those recorded before
    (`had_failed`): a case that succeeded now has none."""
    replaced = [*had_failed, *(case_id for case_id in failed if case_id not in had_failed)]
    if replaced:
        conn.execute(delete(table).where(_among(conn, table.c.case_id, replaced)))
    if failed:
        at = datetime.now(UTC)
        conn.execute(insert(table), [{"case_id": case_id, "last_sequence": last_sequence[case_id], "error": f.error,
                                      "failed_at": at, "release": release, "municipality": f.municipality}
                                     for case_id, f in failed.items()])


def _responsible(events: list[StoredEvent]) -> str | None:
    """The municipality the latest opening or move names (by date; ISO dates sort as text)."""
    try:
        changes = [(e.data["date"], i, e.data["municipality"]) for i, e in enumerate(events)
                   if e.name in ("case.opened", "case.moved")]
        return str(max(changes)[2])[:3] if changes else None
    except (KeyError, TypeError):  # events the derivation may have failed on
        return None


def _failure_json(row) -> dict[str, Any]:
    at = row["failed_at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite keeps no zone
    return {"case_id": row["case_id"], "last_sequence": row["last_sequence"], "error": row["error"],
            "failed_at": at.isoformat(), "release": row["release"], "municipality": row["municipality"]}


def _among(conn, column: Column, values: list) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`: one parameter for the driver and
    the server to parse, not thousands."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)


def through_keys(conn) -> None:
    """The transaction's statements name their cases: on PostgreSQL, read them through
    the keys whatever the statistics say. With none (autovacuum off, or behind a rebuild) it took
    50 case ids for a fifth of a table and read all of it, each batch: at a million cases two
    seconds a batch (tests/integration/test_projection_plans.py). Scans turned off price a
    statement with no other way in (the clock's tick) past the JIT's thresholds; compiling it
    took 0.1 s of a core each transaction, so nothing here is compiled: every statement is short."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL jit = off")


def _tick(conn, clock: Table) -> int:
    """Tick the clock, last in a transaction that derives: the clock row stays locked from here
    to the commit, so that such transactions commit in the order of their ticks; what follows
    must be short."""
    return conn.execute(update(clock).values(tick=clock.c.tick + 1).returning(clock.c.tick)).scalar_one()


def collect_for_batches() -> None:
    """Set this process's cyclic garbage collector for deriving in batches. A batch's events,
    rows and histories (tens of thousands of containers, freed by reference counting once it
    is stored) outlive Python's default first-generation threshold of 700 allocations, so
    they were traversed again and again and promoted into full collections of the whole
    heap: measured, 45 % of a rebuilding consumer's CPU time, for almost no garbage. With a
    first generation of 50,000 a batch passes through about one young collection."""
    if gc.get_threshold()[0] < BATCH_GC_THRESHOLD:
        gc.set_threshold(BATCH_GC_THRESHOLD, *gc.get_threshold()[1:])


BATCH_GC_THRESHOLD = 50_000
_worker_engines: dict[str, Engine] = {}


def derive_in_worker(job: tuple[str, str, Derivation, Sequence[str]]) -> int:
    """`derive` in a worker process, with an engine of its own per database."""
    url, prefix, derivation, case_ids = job
    if url not in _worker_engines:
        collect_for_batches()
        _worker_engines[url] = create_engine(url, pool_pre_ping=True)
    return derive(_worker_engines[url], prefix, derivation, case_ids)


def insert_many(conn, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert in the open transaction, each row naming every column: PostgreSQL's COPY (an
    executemany sends a statement per row), the driver's executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = [c.name for c in table.columns]
    as_json = [i for i, c in enumerate(table.columns) if isinstance(c.type, JSON)]
    values = itemgetter(*columns)
    quote = conn.dialect.identifier_preparer.quote
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN") as copy:
        for row in rows:
            if as_json:
                row = list(values(row))
                for i in as_json:
                    row[i] = orjson.dumps(row[i]).decode()
                copy.write_row(row)
            else:
                copy.write_row(values(row))
