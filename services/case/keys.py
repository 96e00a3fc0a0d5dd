"""Crypto-shredding: each case's events are encrypted under a data key of its own, so erasing a
case is forgetting its key. The keys are kept wrapped (encrypted under CASE_STORE_KEY) in a
table beside the event store, `case_data_keys`, with the date each case was closed, which the
retention sweep reads.

Every replica caches the keys it used for `CACHE_SECONDS`: a key erased through one replica
stops working in the others within that time.

A database keeps what it deleted or overwrote in its files for a while: `scrub` makes sure an
erased key's bytes leave the table's files (deploy/OPERATIONS.md, "Erasure and retention").
"""

import re
import threading
import time
from base64 import b64encode
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from uuid import UUID

from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Cipher, Mapper, StoredEvent
from eventsourcing.utils import get_topic
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    case,
    event,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.case.domain import Case
from shared.migrations import upgrade

# The erasure itself stays readable (under the store key): the stream must still tell the
# consumers which case to drop.
ERASED_TOPIC = get_topic(Case.Erased)

metadata = MetaData()
data_keys = Table(
    "case_data_keys", metadata,
    Column("case_uuid", Uuid, primary_key=True),  # the aggregate's id
    Column("wrapped_key", LargeBinary),  # null once the case is erased
    # as posted, before the closing event is stored: the sweep checks the case itself
    Column("closed_on", Date, index=True),
    Column("erasure", String(16)),  # the reason of an erasure begun: a sweep finishes it if cut off
    Column("erased_at", DateTime(timezone=True)),
)
QUERY_IDS = 1000  # ids per query: PostgreSQL takes at most 65,535 parameters in a statement


class DataKeyErased(Exception):
    """The case's data key was erased: its events cannot be read any more."""


class DataKeys:
    CACHE_SECONDS = 60.0
    CACHE_SIZE = 100_000

    def __init__(self, engine: Engine, store_cipher: Cipher) -> None:
        self.engine, self.store_cipher = engine, store_cipher
        if engine.dialect.name == "sqlite":  # what SQLite frees it overwrites with zeros
            event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA secure_delete = ON"))
        upgrade(engine, "case")  # the table: services/case/migrations
        self._scrubbed = 0  # erasures in the table when it was last scrubbed here
        self._cache: dict[UUID, tuple[float, AESCipher]] = {}
        self._erased: set[UUID] = set()  # erased here: a read that raced the erasure must not cache the key
        self._lock = threading.Lock()

    def cipher(self, case_uuid: UUID, topic: str) -> Cipher:
        """The cipher of one stored event of this case."""
        if topic == ERASED_TOPIC:
            return self.store_cipher
        cached = self._cached(case_uuid)
        if cached is None:
            self.load([case_uuid])
            cached = self._cached(case_uuid)
        if cached is None:
            raise DataKeyErased(case_uuid)
        return cached

    def load(self, case_uuids: Iterable[UUID]) -> set[UUID]:
        """Read the keys of these cases into the cache, one query for all. Returns those that
        have a key, or had one: a case without is certain to have no stored events."""
        case_uuids = set(case_uuids)
        wanted = [u for u in case_uuids if self._cached(u) is None]
        if not wanted:
            return case_uuids
        rows = []
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), QUERY_IDS):
                rows += conn.execute(select(data_keys.c.case_uuid, data_keys.c.wrapped_key)
                                     .where(data_keys.c.case_uuid.in_(wanted[i:i + QUERY_IDS]))).all()
        self._remember({case_uuid: self.store_cipher.decrypt(wrapped) for case_uuid, wrapped in rows if wrapped})
        return (case_uuids - set(wanted)) | {case_uuid for case_uuid, _ in rows}

    def prepare(self, cases: Iterable[Case]) -> None:
        """Before these cases are saved: a key for each new one, and the date each closed one
        was closed."""
        cases = sorted(cases, key=lambda c: c.id)  # rows locked in one order: replicas do not deadlock
        new = {c.id: AESCipher.random_bytes(32) for c in cases if self._cached(c.id) is None}
        closed = [{"u": c.id, "on": date.fromisoformat(c.closed_on)} for c in cases if c.closed_on]
        if not new and not closed:
            return
        created: set[UUID] = set()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # no flush to disk of its own: the events' commit, which follows, flushes the
                # log up to itself, this commit included
                conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            if new:  # of two replicas creating a case's key, the first one's is kept
                insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
                rows = [{"case_uuid": u, "wrapped_key": self.store_cipher.encrypt(key)} for u, key in new.items()]
                created = set(conn.execute(
                    insert(data_keys).on_conflict_do_nothing().returning(data_keys.c.case_uuid), rows).scalars())
            if closed:  # the earliest date posted: a later one may belong to a close that was refused
                k = data_keys.c
                earliest = case((k.closed_on.is_(None) | (k.closed_on > bindparam("on")), bindparam("on")),
                                else_=k.closed_on)
                conn.execute(update(data_keys).where(k.case_uuid == bindparam("u")).values(closed_on=earliest), closed)
        self._remember({u: new[u] for u in created})
        self.load(u for u in new if u not in created)

    def begin_erasure(self, case_uuid: UUID, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(data_keys).where(data_keys.c.case_uuid == case_uuid, data_keys.c.erasure.is_(None))
                         .values(erasure=reason))

    def erase(self, case_uuid: UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(data_keys).where(data_keys.c.case_uuid == case_uuid, data_keys.c.erased_at.is_(None))
                         .values(wrapped_key=None, erased_at=datetime.now(UTC)))
        with self._lock:
            self._erased.add(case_uuid)
            self._cache.pop(case_uuid, None)

    def scrub(self) -> bool:
        """If keys were erased since the last scrub here, rewrite the table: PostgreSQL keeps the
        old versions of an updated row (an erased key, wrapped) in the table's files until VACUUM,
        and VACUUM may leave their bytes in the page's free space; VACUUM FULL writes the table
        anew (under an exclusive lock: the table is one small row per case). A transaction older
        than an erasure (anywhere in the cluster: a long query, a backup) keeps its old rows alive
        through VACUUM FULL too: then the next sweep tries again. Returns whether the table holds
        no erased key's old row."""
        with self.engine.connect() as conn:
            erased = conn.execute(select(func.count()).select_from(data_keys)
                                  .where(data_keys.c.erased_at.is_not(None))).scalar()
        if erased == self._scrubbed:
            return True
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                details: list[str] = []
                conn.connection.driver_connection.add_notice_handler(lambda n: details.append(n.message_detail or ""))
                conn.execute(text("SET lock_timeout = '10s'"))  # not stuck behind a long transaction: next sweep
                conn.execute(text(f"VACUUM (FULL, VERBOSE) {data_keys.name}"))
            kept = [int(m[1]) for d in details if (m := re.search(r"(\d+) dead row versions cannot be removed", d))]
            if any(kept):
                return False
        self._scrubbed = erased
        return True

    def unfinished(self) -> list[tuple[UUID, str]]:
        """Erasures begun whose key is still there, with their reasons."""
        k = data_keys.c
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(k.case_uuid, k.erasure).where(k.erasure.is_not(None), k.wrapped_key.is_not(None)))]

    def closed_before(self, day: date, page: int = 1000) -> Iterator[UUID]:
        """Cases not yet erased that were closed before `day`, oldest first."""
        k = data_keys.c
        after: tuple[date, UUID] | None = None
        while True:
            query = select(k.closed_on, k.case_uuid).where(k.closed_on < day, k.erased_at.is_(None))
            if after is not None:
                query = query.where(tuple_(k.closed_on, k.case_uuid) > after)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(k.closed_on, k.case_uuid).limit(page)).all()
            yield from (case_uuid for _, case_uuid in rows)
            if len(rows) < page:
                return
            after = tuple(rows[-1])

    def _remember(self, keys: dict[UUID, bytes]) -> None:
        fresh_until = time.monotonic() + self.CACHE_SECONDS
        with self._lock:
            if len(self._cache) + len(keys) > self.CACHE_SIZE:
                self._cache.clear()
            for case_uuid, key in keys.items():
                if case_uuid in self._erased:
                    continue
                self._cache[case_uuid] = (fresh_until, AESCipher({"CIPHER_KEY": b64encode(key).decode()}))

    def _cached(self, case_uuid: UUID) -> AESCipher | None:
        entry = self._cache.get(case_uuid)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]


class CaseMapper(Mapper[UUID]):
    """The library's mapper, encrypting each event under its case's data key."""

    def __init__(self, transcoder, keys: DataKeys, compressor=None) -> None:
        super().__init__(transcoder, compressor, cipher=None)
        self.keys = keys

    def to_stored_event(self, domain_event) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        cipher = self.keys.cipher(stored.originator_id, stored.topic)
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, cipher.encrypt(stored.state))

    def to_domain_event(self, stored: StoredEvent):
        cipher = self.keys.cipher(stored.originator_id, stored.topic)
        return super().to_domain_event(StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                                                   cipher.decrypt(stored.state)))
