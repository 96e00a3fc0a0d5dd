"""The reporting store's facts as columns in memory (numpy), which the evaluation numbers are
computed from in a fraction of a second for 100,000 cases.

Days are ordinals (`date.toordinal`), names are small integer codes. Where a fact belongs
(the municipality responsible on its day) is settled here, once: an obligation carries its
own; a benefit spell is cut into segments, one per municipality responsible during it; a
dated occurrence gets the one responsible that day.

`refreshed` loads again only the cases derived since the store's clock last ticked for it
(`shared.projection`): under a live stream a few cases change between two questions, not all.
`save` and `read` keep them in a file between runs (the reporting service's snapshot): a service
that starts reads it and then only the cases derived since, not every fact from the database.
"""

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, or_, select

from services.reporting.store import ANONYMOUS, citizens, obligations, occurrences, responsibility, spells
from shared.projection import store_tables

OPEN = date.max.toordinal()  # the end of what has not ended
NONE = -1  # the code of a missing name (no municipality responsible, no trial)
QUERY_IDS = 1000  # case ids per query when loading changed cases
ROWS_AT_ONCE = 50_000  # rows read from the database before they are made columns
FULL_LOAD_SHARE = 0.2  # above this share of cases changed, load everything again
MERGE_SHARE = 0.05  # once the rows read again exceed this share of the tables', they are merged in
DATED = {"ordinary": "due", "required": "due", "waived": "due", "occurrences": "day"}  # tables kept in date order
BENEFIT = {"ledighedsydelse": 1, "ressourceforloeb": 2}  # the benefits metrics single out; others 0
TABLES = ("ordinary", "required", "waived", "segments", "occurrences", "responsible")
# what a snapshot must have been written by to be read: this module and the store's tables
_SOURCES = (Path(__file__), Path(__file__).with_name("store.py"))


class Codes:
    """Names as small integers, in order of first appearance; only ever growing, so columns
    coded earlier stay valid."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, name: str | None) -> int:
        if name is None:
            return NONE
        found = self.index.get(name)
        if found is None:
            found = self.index[name] = len(self.names)
            self.names.append(name)
        return found

    def codes(self, names: Iterable[str | None]) -> np.ndarray:
        return np.fromiter(map(self.code, names), np.int32)

    def __len__(self) -> int:
        return len(self.names)


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


def _days(values: Iterable[date | None]) -> np.ndarray:
    return np.fromiter((OPEN if d is None else d.toordinal() for d in values), np.int32)


@dataclass(frozen=True)
class Facts:
    """The tables (`rows`, `dated`):
    ordinary (by due date): the obligations under the ordinary rules, the counterfactual
    without trials: case, citizen, due, on_time, rule, municipality.
    required (by due date): the obligations required with the trials applied, likewise.
    waived (by due date): the obligations a trial waived or suspended, likewise; `trial` the one
    whose own effect did (for attributing them to it).
    segments: case, citizen, benefit, start and end of the spell (end OPEN while it runs), lo
    and hi of the segment (inclusive), municipality.
    occurrences (by day): case, citizen, day, municipality, talk, exit (to a job), exit_rf (from
    ressourceforløb to a job), permitted_by (a trial).
    responsible: case, municipality (every municipality ever responsible for the case)."""

    codes: dict[str, Codes] = field(default_factory=lambda: {k: Codes() for k in (
        "case", "citizen", "municipality", "rule", "trial")})
    tick: int | None = None  # the store's clock when loaded; None before
    epoch: int = 0  # the clock's epoch: when it moves, everything derived was dropped
    # how many municipalities and citizens were coded when loaded: the codes grow as other
    # threads load more, the columns here stay below these
    places: int = 0
    citizens: int = 0
    anonymous: frozenset[str] = frozenset()  # the ids erased cases' facts are kept under
    # the tables by name (TABLES), dated ones in date order, as last merged; the cases read again
    # since: their rows in `recent` (likewise ordered), their rows in `tables` superseded
    # (`stale`, by case code). A change then costs what it changed, not a copy of every table.
    tables: dict[str, Columns] = field(default_factory=lambda: {name: Columns() for name in TABLES})
    recent: dict[str, Columns] = field(default_factory=dict)
    stale: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def load(cls, engine: Engine) -> "Facts":
        return cls().refreshed(engine)

    def refreshed(self, engine: Engine) -> "Facts":
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
                return replace(Facts(self.codes), tick=tick, epoch=epoch, anonymous=anonymous,
                               tables=_by_date(self._load(conn, None)[0]), **_counts(self.codes))
            loaded, cited = [], set()
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
        stale = gone.copy()
        stale[:len(self.stale)] |= self.stale
        recent = {name: _joined(_without(self.recent.get(name, Columns()), gone),
                                _ordered(Columns.concat([part[name] for part in loaded]), DATED.get(name)), DATED.get(name))
                  for name in TABLES}
        refreshed = replace(self, tick=tick, anonymous=anonymous, recent=recent, stale=stale, **_counts(self.codes))
        rows = sum(len(table["case"]) for table in self.tables.values() if table)
        if sum(len(table["case"]) for table in recent.values() if table) > MERGE_SHARE * rows:
            return refreshed.merged()
        return refreshed

    def rows(self, table: str) -> Columns:
        """Every row of a table (TABLES) now, dated ones in date order."""
        return _joined(_without(self.tables[table], self.stale), self.recent.get(table, Columns()), DATED.get(table))

    def dated(self, table: str, lo: int, hi: int) -> Columns:
        """The rows of a dated table dated within [lo, hi] (ordinal days), in date order."""
        day = DATED[table]
        return _joined(_without(_slice(self.tables[table], day, lo, hi), self.stale),
                       _slice(self.recent.get(table, Columns()), day, lo, hi), day)

    def merged(self) -> "Facts":
        """These facts with the recent rows merged into the tables."""
        if not self.recent:
            return self
        return replace(self, tables={name: self.rows(name) for name in TABLES}, recent={}, stale=np.zeros(0, bool))

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
            ordinary = np.fromiter((r == "ordinary" for r in regime), bool, len(rows))
            required = np.fromiter((b == "required" for b in basis), bool, len(rows))
            return {"ordinary": columns.where(ordinary), "required": columns.where(~ordinary & required),
                    "waived": columns.where(~ordinary & ~required)}

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
            return {"responsible": Columns(case=codes["case"].codes(case),
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
        """Write these facts to `path` (numpy's npz: arrays and JSON, nothing a reader executes),
        replacing it at once, for the `database` they were read from."""
        meta = {"key": snapshot_key(database), "tick": self.tick, "epoch": self.epoch, "places": self.places,
                "citizens": self.citizens, "anonymous": sorted(self.anonymous),
                "codes": {name: list(codes.names) for name, codes in self.codes.items()}}
        arrays = {f"{table}.{column}": values for table in TABLES for column, values in self.rows(table).items()}
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # replicas may share the folder
        with temporary.open("wb") as out:
            np.savez(out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path, database: str) -> "Facts | None":
        """The facts saved in `path` for `database` by this code; None if there are none such."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                meta = json.loads(saved["meta"].tobytes())
                if meta["key"] != snapshot_key(database):
                    return None
                tables: dict[str, Columns] = {table: Columns() for table in TABLES}
                for name in saved.files:
                    if name != "meta":
                        table, column = name.split(".", 1)
                        tables[table][column] = saved[name]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # none, cut short, or of another format
            return None
        codes = {name: Codes() for name in meta["codes"]}
        for name, names in meta["codes"].items():
            for each in names:
                codes[name].code(each)
        return cls(codes, meta["tick"], meta["epoch"], meta["places"], meta["citizens"], frozenset(meta["anonymous"]),
                   tables)

    def municipalities(self) -> set[str]:
        """Every municipality ever responsible for a case."""
        names, responsible = self.codes["municipality"].names, self.rows("responsible")
        return {names[m] for m in np.unique(responsible["municipality"])} if responsible else set()


def snapshot_key(database: str) -> str:
    """Which database and which code a snapshot belongs to."""
    digest = hashlib.sha256(database.encode())
    for source in _SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _counts(codes: dict[str, Codes]) -> dict[str, int]:
    return {"places": len(codes["municipality"]), "citizens": len(codes["citizen"])}


def _by_date(tables: dict[str, Columns]) -> dict[str, Columns]:
    """The tables, obligations in due-date and occurrences in day order, so that a period is a
    slice."""
    return {name: _ordered(table, DATED.get(name)) for name, table in tables.items()}


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
