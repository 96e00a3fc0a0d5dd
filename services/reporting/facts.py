"""The reporting store's facts as columns in memory (numpy), which the evaluation numbers are
computed from in a fraction of a second for 100,000 cases.

Days are ordinals (`date.toordinal`), names are small integer codes. Where a fact belongs
(the municipality responsible on its day) is settled here, once: an obligation carries its
own; a benefit spell is cut into segments, one per municipality responsible during it; a
dated occurrence gets the one responsible that day.

The facts are kept in parts (`FactParts`), each the cases of some citizens (a citizen's code
modulo the number of parts): every number is a sum over citizens, distinct citizens too, so a
question is answered part by part and the parts' tallies added up, and a part remembers its
answers. `refreshed` loads again only the cases derived since the store's clock last ticked for
it (`shared.projection`): under a live stream a few cases change between two questions, not all,
and only their parts are asked again; such a part updates what it answered before it changed by
what its changed citizens contributed then and contribute now (`Earlier`), rather than going
over all its citizens again.
`save` and `read` keep them in a file between runs (the reporting service's snapshot): a service
that starts reads it and then only the cases derived since, not every fact from the database.
"""

import hashlib
import json
import mmap
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from threading import Lock
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, and_, or_, select

from services.reporting.store import ANONYMOUS, citizens, obligations, occurrences, responsibility, spells
from shared.projection import store_tables, through_keys

OPEN = date.max.toordinal()  # the end of what has not ended
NONE = -1  # the code of a missing name (no municipality responsible, no trial)
QUERY_IDS = 1000  # case ids per query when loading changed cases
ROWS_AT_ONCE = 50_000  # rows read from the database before they are made columns
FULL_LOAD_SHARE = 0.2  # above this share of cases changed, load everything again
MERGE_SHARE = 0.05  # once the rows read again exceed this share of the tables', they are merged in
PART_CITIZENS = 20_000  # citizens per part, about: a change costs its part's answers, not everyone's
MOST_PARTS = 64
ANSWERS_KEPT = 16  # answers a part remembers (the oldest forgotten first): each holds its tallies
# changed citizens, as a share of a part's, up to which its earlier answers are updated rather than
# computed again (updating costs what two answers of the changed citizens alone cost)
CHANGED_SHARE = 0.1
SNAPSHOT_FORMAT = b"frisag reporting facts 4\n"  # a snapshot's first bytes (`FactParts.save`)
DATED = {"ordinary": "due", "required": "due", "waived": "due", "occurrences": "day"}  # tables kept in date order
BENEFIT = {"ledighedsydelse": 1, "ressourceforloeb": 2}  # the benefits metrics single out; others 0
TABLES = ("ordinary", "required", "waived", "segments", "occurrences", "responsible")
_remembering = Lock()
_indexing = Lock()  # `Codes.index`, made once
_unpacking = Lock()  # `Codes.names` of a snapshot, made once
# what a snapshot must have been written by to be read: this module and the store's tables
_SOURCES = (Path(__file__), Path(__file__).with_name("store.py"))


class Codes:
    """Names as small integers, in order of first appearance; only ever growing, so columns
    coded earlier stay valid."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: list[str] | None = list(names)
        self._packed: tuple[np.ndarray, int] | None = None
        self._index: dict[str, int] | None = None

    @classmethod
    def packed(cls, joined: np.ndarray, count: int) -> "Codes":
        """The names of a snapshot (`pack`), made a list when first asked: a million cases' and
        citizens' take a quarter of a second, and the first answers after a restart need none."""
        codes = cls()
        codes._names, codes._packed = None, (joined, count)
        return codes

    def pack(self, count: int) -> np.ndarray:
        """The first `count` names as UTF-8 bytes, each ended by a newline (none has one: ids the
        events' schemas restrict, pseudonyms, codes)."""
        return np.frombuffer("".join(f"{name}\n" for name in self.names[:count]).encode(), np.uint8)

    @property
    def names(self) -> list[str]:
        if self._names is None:
            with _unpacking:
                if self._names is None:
                    joined, _ = self._packed
                    self._names = joined.tobytes().decode().split("\n")[:-1]
        return self._names

    @property
    def index(self) -> dict[str, int]:
        """Name -> code, made when first asked: a million cases' take a second, and the first
        answers after a restart need none (only a change does). A name is added only after."""
        if self._index is None:
            with _indexing:
                if self._index is None:
                    self._index = dict(zip(self.names, range(len(self.names))))
        return self._index

    def code(self, name: str | None) -> int:
        if name is None:
            return NONE
        index = self.index
        found = index.get(name)
        if found is None:
            found = index[name] = len(self.names)
            self.names.append(name)
        return found

    def codes(self, names: Iterable[str | None]) -> np.ndarray:
        return np.fromiter(map(self.code, names), np.int32)

    def __len__(self) -> int:
        return len(self._names) if self._names is not None else self._packed[1]


class Columns(dict[str, np.ndarray]):
    """A table as equally long columns."""

    def where(self, mask: np.ndarray, *names: str) -> "Columns":
        """The rows the mask selects, of the named columns (all, by default)."""
        return Columns({name: self[name][mask] for name in names or self})

    @staticmethod
    def concat(parts: Sequence["Columns"]) -> "Columns":
        parts = [p for p in parts if p]  # a table not loaded yet has no columns
        if len(parts) == 1:
            return parts[0]
        return Columns({name: np.concatenate([p[name] for p in parts]) for name in parts[0]}) if parts else Columns()


T = TypeVar("T")


def _days(values: Iterable[date | None]) -> np.ndarray:
    return np.fromiter((OPEN if d is None else d.toordinal() for d in values), np.int32)


@dataclass(frozen=True, eq=False)  # numpy columns: equal only to itself
class Facts:
    """One part of the facts (`FactParts`): the rows of some citizens' cases, the citizens coded
    within the part. The tables (`rows`, `dated`):
    ordinary (by due date): the obligations under the ordinary rules, the counterfactual
    without trials: case, citizen, due, on_time, rule, municipality.
    required (by due date): the obligations required with the trials applied, likewise.
    waived (by due date): the obligations a trial waived or suspended, likewise; `trial` the one
    whose own effect did (for attributing them to it).
    segments: case, citizen, benefit, start and end of the spell (end OPEN while it runs), lo
    and hi of the segment (inclusive), municipality.
    occurrences (by day): case, citizen, day, municipality, talk, exit (to a job), exit_rf (from
    ressourceforløb to a job), permitted_by (a trial).
    responsible: case, citizen, municipality (every municipality ever responsible for the case)."""

    codes: dict[str, Codes] = field(default_factory=lambda: {k: Codes() for k in (
        "case", "citizen", "municipality", "rule", "trial")})
    # how many municipalities were coded, and citizens in the part, when last changed: the codes
    # grow as other threads load more, the columns here stay below these
    places: int = 0
    citizens: int = 0
    # the tables by name (TABLES), dated ones in date order, as last merged; the cases read again
    # since: their rows in `recent` (likewise ordered), their rows in `tables` superseded
    # (`stale`, by case code). A change then costs what it changed, not a copy of every table.
    tables: dict[str, Columns] = field(default_factory=lambda: {name: Columns() for name in TABLES})
    recent: dict[str, Columns] = field(default_factory=dict)
    stale: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    answers: dict[tuple, tuple[Any, Any]] = field(default_factory=dict, repr=False)  # `answer`
    earlier: tuple["Earlier", ...] = field(default=(), repr=False)  # parts before its citizens changed

    def rows(self, table: str) -> Columns:
        """Every row of a table (TABLES) now, dated ones in date order."""
        return _joined(_without(self.tables[table], self.stale), self.recent.get(table, Columns()), DATED.get(table))

    def dated(self, table: str, lo: int, hi: int) -> Columns:
        """The rows of a dated table dated within [lo, hi] (ordinal days), in date order."""
        day = DATED[table]
        return _joined(_without(_slice(self.tables[table], day, lo, hi), self.stale),
                       _slice(self.recent.get(table, Columns()), day, lo, hi), day)

    def merged(self) -> "Facts":
        """This part with the recent rows merged into the tables."""
        if not self.recent:
            return self
        return replace(self, tables={name: self.rows(name) for name in TABLES}, recent={}, stale=np.zeros(0, bool),
                       answers={})

    def changed(self, gone: np.ndarray, new: dict[str, Columns], citizens: int) -> "Facts":
        """This part without the rows of the cases `gone` marks (a mask over case codes) and with
        the `new` rows; merged once the rows read again exceed MERGE_SHARE of the tables'."""
        stale = gone.copy()
        stale[:len(self.stale)] |= self.stale
        recent = {name: _joined(_without(self.recent.get(name, Columns()), gone),
                                _ordered(new.get(name, Columns()), DATED.get(name)), DATED.get(name))
                  for name in TABLES}
        # the changed citizens: of the cases gone, and of the new rows
        who = np.concatenate([rows["citizen"][gone[rows["case"]]] for rows in (*self.tables.values(),
                                                                              *self.recent.values()) if rows]
                             + [rows["citizen"] for rows in new.values() if rows])
        part = replace(self, recent=recent, stale=stale, places=len(self.codes["municipality"]),
                       citizens=max(self.citizens, citizens), answers={}, earlier=self._earlier(np.unique(who)))
        rows = sum(len(table["case"]) for table in self.tables.values() if table)
        if sum(len(table["case"]) for table in recent.values() if table) > MERGE_SHARE * rows:
            return part.merged()
        return part

    def _earlier(self, changed: np.ndarray) -> tuple["Earlier", ...]:
        """What a part made of this one by changing these citizens (distinct codes) updates its
        answers from: this part's answers, then those of the parts this one updates from that
        answered other questions, while the citizens changed since each are few enough."""
        with _remembering:
            bases = [(set(self.answers), self.answers, np.zeros(0, changed.dtype), None)]
            bases += [(set(e.answers), e.answers, e.citizens, e.facts) for e in self.earlier]
        if not any(keys for keys, *_ in bases):
            return ()
        rows = self.of_citizens(changed)  # as they were wherever they had not changed since
        found, covered = [], set()
        for keys, answers, citizens, facts in bases:
            more = np.setdiff1d(changed, citizens, assume_unique=True)
            if keys <= covered or len(citizens) + len(more) > CHANGED_SHARE * self.citizens:
                continue
            more_rows = rows.of_citizens(more)
            found.append(Earlier(answers, np.union1d(citizens, more),
                                 more_rows if facts is None else facts.with_rows_of(more_rows)))
            covered |= keys
        return tuple(found)

    def of_citizens(self, citizens: np.ndarray) -> "Facts":
        """This part's rows of these citizens (codes within the part), in the order they are here."""
        chosen = np.zeros(max(self.citizens, int(citizens.max(initial=-1)) + 1), bool)
        chosen[citizens] = True

        def of(rows: Columns) -> Columns:
            return rows.where(np.flatnonzero(chosen[rows["citizen"]])) if rows else rows

        return Facts(self.codes, self.places, self.citizens, {name: _joined(
            _without(of(self.tables[name]), self.stale), of(self.recent.get(name, Columns())), DATED.get(name))
            for name in TABLES})

    def with_rows_of(self, other: "Facts") -> "Facts":
        """The rows of this part (of some citizens) and of another of other citizens, together."""
        return replace(self, tables={name: _joined(self.rows(name), other.rows(name), DATED.get(name))
                                     for name in TABLES})

    def knows(self, key: tuple, of: Any) -> bool:
        """Whether `answer` remembers the answer under `key` for `of`."""
        with _remembering:
            found = self.answers.get(key)
        return found is not None and found[0] is of

    def answer(self, key: tuple, of: Any, compute: Callable[["Facts"], T],
               update: Callable[[T, T, T], T | None] | None = None) -> T:
        """`compute(self)`, remembered under `key` for the object `of` it depends on besides this
        part (a catalog): a part never changes (a changed one is another), so an answer holds.
        Given `update`, a sum over citizens: an earlier part's answer updated where one gave it,
        `update(then, compute(its rows of the citizens changed since), compute(their rows now))`,
        unless that gives None."""
        with _remembering:
            found = self.answers.get(key)
            earlier = [(e, then) for e in self.earlier if update and (then := e.answers.get(key)) and then[0] is of]
        if found is not None and found[0] is of:
            return found[1]
        value = None
        if earlier:
            e, then = earlier[0]  # the latest: the fewest citizens changed since
            value = update(then[1], compute(e.facts), compute(self.of_citizens(e.citizens)))
        if value is None:
            value = compute(self)
        with _remembering:
            if len(self.answers) >= ANSWERS_KEPT:
                del self.answers[next(iter(self.answers))]
            self.answers[key] = (of, value)
        return value


@dataclass(frozen=True, eq=False)
class Earlier:
    """A part as it was before some of its citizens changed, for what it answered: every number
    is a sum over citizens, so its answers less what those citizens contributed then, plus what
    they contribute now, are the answers now."""

    answers: dict[tuple, tuple[Any, Any]]  # the earlier part's own (`Facts.answers`)
    citizens: np.ndarray  # the citizens changed since (codes within the part, distinct, sorted)
    facts: Facts  # the earlier part's rows of them


@dataclass(frozen=True, eq=False)
class FactParts:
    """The reporting store's facts as of its clock, in parts by citizen (`Facts`): citizen code c
    is in part c % len(parts), coded c // len(parts) there."""

    codes: dict[str, Codes] = field(default_factory=lambda: {k: Codes() for k in (
        "case", "citizen", "municipality", "rule", "trial")})
    tick: int | None = None  # the store's clock when loaded; None before
    epoch: int = 0  # the clock's epoch: when it moves, everything derived was dropped
    anonymous: frozenset[str] = frozenset()  # the ids erased cases' facts are kept under
    parts: tuple[Facts, ...] = ()
    case_part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # per case code; -1: none

    @classmethod
    def load(cls, engine: Engine, parts: int | None = None) -> "FactParts":
        """The facts read from the database, in `parts` parts (by default, PART_CITIZENS citizens each)."""
        return cls().refreshed(engine, parts)

    def refreshed(self, engine: Engine, parts: int | None = None) -> "FactParts":
        """These facts with the cases derived since loaded again (self when none were)."""
        _, _, _, cases, clock = store_tables("reporting")
        with engine.connect() as conn:
            tick, epoch = conn.execute(select(clock.c.tick, clock.c.epoch)).one()
            if (tick, epoch) == (self.tick, self.epoch):
                return self
            # a clock behind these facts' is another database's (one restored, or made again)
            again = self.tick is None or epoch != self.epoch or tick < self.tick
            changed = [] if again else list(conn.execute(
                select(cases.c.case_id).where(cases.c.derived_tick > self.tick, cases.c.derived_tick <= tick)).scalars())
            if again or len(changed) > FULL_LOAD_SHARE * len(self.codes["case"]):
                # read before the facts: an erasure committed in between is found next time,
                # and its facts, read now under an id not yet known, are replaced then
                anonymous = self._anonymous(conn)
                return _split(FactParts(self.codes, tick, epoch, anonymous), self._load(conn, None)[0], parts)
            loaded, cited = [], set()
            through_keys(conn)
            for i in range(0, len(changed), QUERY_IDS):
                tables, with_citizen = self._load(conn, changed[i:i + QUERY_IDS])
                loaded.append(tables)
                cited |= with_citizen
            # an erased case's facts stay under a new id, and the case is left without a citizen
            anonymous = self._anonymous(conn) if cited != set(changed) else self.anonymous
            new = list(anonymous - self.anonymous)
            loaded += [self._load(conn, new[i:i + QUERY_IDS])[0] for i in range(0, len(new), QUERY_IDS)]
        # a new anonymous id's facts may have been read already, by a full load while it was written
        gone = np.zeros(len(self.codes["case"]), bool)
        gone[[self.codes["case"].index[c] for c in changed + new if c in self.codes["case"].index]] = True
        new_rows = {name: Columns.concat([part[name] for part in loaded]) for name in TABLES}
        count = len(self.parts)
        if parts is None and count < MOST_PARTS and len(self.codes["citizen"]) > 2 * PART_CITIZENS * count:
            # grown past its parts: split again
            everything = {name: Columns.concat([_without(self.rows(name), gone), new_rows[name]]) for name in TABLES}
            return _split(FactParts(self.codes, tick, epoch, anonymous), everything, None)
        case_part = np.full(len(self.codes["case"]), -1, np.int16)
        case_part[:len(self.case_part)] = self.case_part
        touched = set(case_part[gone].tolist()) - {-1}
        case_part[gone] = -1
        split = {name: _parted(rows, count) for name, rows in new_rows.items()}
        touched |= _placed(case_part, split)
        citizens = -(-len(self.codes["citizen"]) // count)
        return replace(self, tick=tick, anonymous=anonymous, case_part=case_part, parts=tuple(
            part.changed(gone, {name: split[name][k] for name in TABLES}, citizens) if k in touched else part
            for k, part in enumerate(self.parts)))

    def rows(self, table: str) -> Columns:
        """Every row of a table (TABLES), of every part, citizens with their own codes."""
        count = len(self.parts)
        return Columns.concat([Columns(rows, citizen=rows["citizen"] * count + k) if rows else rows
                               for k, rows in enumerate(part.rows(table) for part in self.parts)])

    @staticmethod
    def _anonymous(conn) -> frozenset[str]:
        return frozenset(conn.execute(select(citizens.c.case_id).where(citizens.c.case_id.startswith(ANONYMOUS))).scalars())

    def _load(self, conn, case_ids: list[str] | None) -> tuple[dict[str, Columns], set[str]]:
        """The facts of these cases (all, for None), and which of them have a citizen."""

        def of(table):
            return table.c.case_id.in_(case_ids) if case_ids is not None else True

        codes = self.codes
        citizen_of = dict(conn.execute(select(citizens.c.case_id, citizens.c.citizen).where(of(citizens))).all())

        def who(case_id: str) -> str:  # a case without a citizen counts as one
            return citizen_of.get(case_id, case_id)

        def obligation_columns(rows: Sequence[Any]) -> dict[str, Columns]:
            case, regime, basis, due, deadline, done_on, rule, municipality, trial = _transposed(rows, 9)
            columns = Columns(
                case=codes["case"].codes(case), citizen=codes["citizen"].codes(map(who, case)), due=_days(due),
                on_time=_days(done_on) <= _days(deadline), rule=codes["rule"].codes(rule),
                municipality=codes["municipality"].codes(municipality), trial=codes["trial"].codes(trial))
            ordinary = np.fromiter((r != "trials" for r in regime), bool, len(rows))  # or both
            trials = np.fromiter((r != "ordinary" for r in regime), bool, len(rows))
            required = np.fromiter((b == "required" for b in basis), bool, len(rows))
            return {"ordinary": columns.where(ordinary), "required": columns.where(trials & required),
                    "waived": columns.where(trials & ~required)}

        def segment_columns(rows: Sequence[Any]) -> dict[str, Columns]:
            case, benefit, start, end, valid_from, valid_to, municipality = _transposed(rows, 7)
            start, end = _days(start), _days(end)
            return {"segments": Columns(
                case=codes["case"].codes(case), citizen=codes["citizen"].codes(map(who, case)),
                benefit=np.fromiter((BENEFIT.get(b, 0) for b in benefit), np.int8, len(rows)), start=start, end=end,
                lo=np.maximum(start, _days(valid_from)),
                hi=np.minimum(end, _days(valid_to) - 1),  # valid_to is exclusive; OPEN - 1 is still far enough
                municipality=codes["municipality"].codes(municipality))}

        def occurrence_columns(rows: Sequence[Any]) -> dict[str, Columns]:
            case, name, day, detail, reason, permitted_by, municipality = _transposed(rows, 7)
            exit_ = np.fromiter((n in ("benefit.ended", "case.closed") and why == "job" for n, why in zip(name, reason)),
                                bool, len(rows))
            return {"occurrences": Columns(
                case=codes["case"].codes(case), citizen=codes["citizen"].codes(map(who, case)), day=_days(day),
                municipality=codes["municipality"].codes(municipality),
                talk=np.fromiter((n == "conversation.held" for n in name), bool, len(rows)), exit=exit_,
                exit_rf=exit_ & np.fromiter((n == "benefit.ended" and d == "ressourceforloeb" for n, d in zip(name, detail)),
                                            bool, len(rows)),
                permitted_by=codes["trial"].codes(permitted_by))}

        def responsible_columns(rows: Sequence[Any]) -> dict[str, Columns]:
            case, municipality = _transposed(rows, 2)
            return {"responsible": Columns(case=codes["case"].codes(case), citizen=codes["citizen"].codes(map(who, case)),
                                           municipality=codes["municipality"].codes(municipality))}

        o, s, r, e = obligations, spells, responsibility, occurrences
        queries = [
            (select(o.c.case_id, o.c.regime, o.c.basis, o.c.due, o.c.deadline, o.c.done_on, o.c.rule, o.c.municipality,
                    o.c.trial).where(of(o)), obligation_columns),
            (select(s.c.case_id, s.c.benefit, s.c.start, s.c.end, r.c.valid_from, r.c.valid_to, r.c.municipality)
             .join(r, and_(r.c.case_id == s.c.case_id, or_(s.c.end.is_(None), r.c.valid_from <= s.c.end),
                           or_(r.c.valid_to.is_(None), s.c.start < r.c.valid_to)))
             .where(of(s)), segment_columns),
            (select(e.c.case_id, e.c.name, e.c.day, e.c.detail, e.c.reason, e.c.permitted_by, r.c.municipality)
             .outerjoin(r, and_(r.c.case_id == e.c.case_id, r.c.valid_from <= e.c.day,
                                or_(r.c.valid_to.is_(None), e.c.day < r.c.valid_to)))
             .where(of(e)), occurrence_columns),
            (select(r.c.case_id, r.c.municipality).where(of(r)), responsible_columns)]
        tables: dict[str, Columns] = {}
        for query, columns in queries:
            # ROWS_AT_ONCE rows as Python objects at a time: a million cases' would take gigabytes
            result = conn.execution_options(stream_results=True, yield_per=ROWS_AT_ONCE).execute(query)
            parts = [columns(rows) for rows in result.partitions()] or [columns([])]
            tables |= {name: Columns.concat([part[name] for part in parts]) for name in parts[0]}
        return tables, set(citizen_of)

    def save(self, path: Path, database: str) -> None:
        """Write these facts to `path`, replacing it at once, for the `database` they were read
        from: SNAPSHOT_FORMAT, each part's columns' bytes, then a JSON header (nothing a reader
        executes) and the header's length; a restart maps the columns in one go rather than
        array by array from a zip file. Written a part's table at a time: the facts are never
        copied whole (a million cases' take a gigabyte), which would raise the process's peak
        memory by as much."""
        layout: dict[str, list] = {}
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # replicas may share the folder
        with temporary.open("wb") as out:
            out.write(SNAPSHOT_FORMAT)

            def write(name: str, values: np.ndarray) -> None:
                start = -(-out.tell() // 64) * 64  # each array aligned
                out.seek(start)
                out.write(np.ascontiguousarray(values).data)
                layout[name] = [values.dtype.str, len(values), start]

            # as many names as now: another thread may code more while the parts are written
            counts = {name: len(codes) for name, codes in self.codes.items()}
            write("case_part", self.case_part)
            for name, codes in self.codes.items():
                write(f"codes.{name}", codes.pack(counts[name]))
            for k, part in enumerate(self.parts):
                for table in TABLES:
                    for column, values in part.rows(table).items():
                        write(f"part.{k}.{table}.{column}", values)
            header = json.dumps({
                "key": snapshot_key(database), "tick": self.tick, "epoch": self.epoch,
                "parts": [[part.places, part.citizens] for part in self.parts], "anonymous": sorted(self.anonymous),
                "codes": counts, "arrays": layout}).encode()
            out.seek(0, os.SEEK_END)
            out.write(header + len(header).to_bytes(8, "little"))
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path, database: str) -> "FactParts | None":
        """The facts saved in `path` for `database` by this code; None if there are none such."""
        try:
            with path.open("rb") as saved:
                if saved.read(len(SNAPSHOT_FORMAT)) != SNAPSHOT_FORMAT:
                    return None
                # mapped, not read: the pages are read as the first answers touch them (a third
                # of a second less to the first answer after a restart at a million cases), each
                # page copied when written; a snapshot is replaced, never written in place
                data = mmap.mmap(saved.fileno(), 0, access=mmap.ACCESS_COPY)
            end = len(data) - 8
            length = int.from_bytes(data[end:], "little")
            if length > end - len(SNAPSHOT_FORMAT):  # cut short
                return None
            meta = json.loads(data[end - length:end])
            if meta["key"] != snapshot_key(database):
                return None
            # a file cut short has fewer bytes than an array needs: ValueError
            arrays = {name: np.frombuffer(data, dtype, count, offset) for name, (dtype, count, offset)
                      in meta["arrays"].items()}
            tables: list[dict[str, Columns]] = [{table: Columns() for table in TABLES} for _ in meta["parts"]]
            for name, values in arrays.items():
                if name.startswith("part."):
                    _, k, table, column = name.split(".")
                    if not 0 <= int(k) < len(tables):
                        return None
                    tables[int(k)][table][column] = values
            codes = {name: Codes.packed(arrays[f"codes.{name}"], count) for name, count in meta["codes"].items()}
            return cls(codes, meta["tick"], meta["epoch"], frozenset(meta["anonymous"]), tuple(
                Facts(codes, places, citizens, part) for (places, citizens), part in zip(meta["parts"], tables)),
                arrays["case_part"])
        except Exception:  # none, cut short, or of another format: a cache, read again from the database
            return None

    def municipalities(self) -> set[str]:
        """Every municipality ever responsible for a case."""
        names = self.codes["municipality"].names
        return {names[m] for part in self.parts for m in part.answer(("municipalities",), None, _responsible)}


def _responsible(part: Facts) -> list[int]:
    responsible = part.rows("responsible")
    return np.unique(responsible["municipality"]).tolist() if responsible else []


def _split(facts: FactParts, tables: dict[str, Columns], parts: int | None) -> FactParts:
    """The facts with these tables (every citizen's rows, in any order) in `parts` parts; by
    default one per PART_CITIZENS citizens, up to MOST_PARTS."""
    citizens = len(facts.codes["citizen"])
    count = parts or min(MOST_PARTS, max(1, round(citizens / PART_CITIZENS)))
    case_part = np.full(len(facts.codes["case"]), -1, np.int16)
    by_table = {name: _parted(tables.get(name, Columns()), count) for name in TABLES}
    _placed(case_part, by_table)
    places, local = len(facts.codes["municipality"]), -(-citizens // count)
    return replace(facts, case_part=case_part, parts=tuple(
        Facts(facts.codes, places, local, {name: _ordered(by_table[name][k], DATED.get(name)) for name in TABLES})
        for k in range(count)))


def _placed(case_part: np.ndarray, by_table: dict[str, list[Columns]]) -> set[int]:
    """Each case of these rows (per table, per part) marked in `case_part` with its part; the
    parts that have rows."""
    placed = set()
    for by_part in by_table.values():
        for k, rows in enumerate(by_part):
            if rows and len(rows["case"]):
                case_part[rows["case"]] = k
                placed.add(k)
    return placed


def _parted(rows: Columns, count: int) -> list[Columns]:
    """The rows of each part (their citizen's code modulo `count`), citizens coded within the
    part (the code divided by `count`), in the order they were."""
    if count == 1 or not rows:
        return [rows] * count
    part = (rows["citizen"] % count).astype(np.int16)
    order = np.argsort(part, kind="stable")  # a radix sort: linear
    ordered = rows.where(order)
    ordered["citizen"] //= count
    bounds = np.searchsorted(part[order], np.arange(count + 1))
    return [Columns({name: column[lo:hi] for name, column in ordered.items()}) for lo, hi in zip(bounds, bounds[1:])]


def snapshot_key(database: str) -> str:
    """Which database and which code a snapshot belongs to."""
    digest = hashlib.sha256(database.encode())
    for source in _SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _slice(rows: Columns, day: str, lo: int, hi: int) -> Columns:
    """The rows (in `day` order) dated within [lo, hi]: a slice, no copy."""
    if not rows:
        return rows
    first, last = np.searchsorted(rows[day], [lo, hi + 1])
    return Columns({name: column[first:last] for name, column in rows.items()})


def _without(rows: Columns, cases: np.ndarray) -> Columns:
    """The rows but those of the cases `cases` marks (a mask over case codes)."""
    if not rows or not cases.any():
        return rows
    keep = ~cases[rows["case"]]
    return rows if keep.all() else rows.where(keep)


def _ordered(rows: Columns, day: str | None) -> Columns:
    return rows.where(np.argsort(rows[day], kind="stable")) if rows and day else rows


def _joined(kept: Columns, new: Columns, day: str | None) -> Columns:
    """The kept rows and the new ones after them (both in `day` order, if given: the new ones
    after the kept ones of their day)."""
    if not new or not len(new["case"]):
        return kept
    if not kept:
        return new
    if day is None:
        return Columns.concat([kept, new])
    at = np.searchsorted(kept[day], new[day], side="right")
    return Columns({name: np.insert(column, at, new[name]) for name, column in kept.items()})


def _transposed(rows: Sequence[Any], width: int) -> list[tuple]:
    return list(zip(*rows)) if rows else [()] * width
