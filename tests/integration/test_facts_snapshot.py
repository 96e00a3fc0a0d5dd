"""The reporting facts kept in a snapshot between runs: read back, they are the facts read from
the database, and with the cases derived since read on top, those of a fresh load; a snapshot of
another database or code, or a broken one, is not read; a database whose clock is behind the
snapshot's is read afresh; facts read from a snapshot stay as read when it is written again;
writing one does not copy the facts whole, nor count names coded meanwhile. The oracles:
`FactParts.load`, the facts read from the database alone; for synthetic facts, the columns
written."""

import json
import threading
import time
import tracemalloc
from datetime import date

import numpy as np
import pytest
from sqlalchemy import create_engine

from services.reporting import facts as facts_module
from services.reporting.bootstrap import bootstrap
from services.reporting.evaluation import comparison_default, evaluate, periods_for
from services.reporting.facts import DATED, TABLES, Codes, Columns, FactParts, Facts
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.population import Population
from shared.stream import Delivery
from tests.facts_compare import same_facts
from tests.unit.test_evaluation import stream_events

CATALOG = Catalog.load()
TODAY = date(2023, 6, 1)
DATABASE = "sqlite:///reporting.sqlite"


def store_of(path, histories) -> ReportingStore:
    store = ReportingStore(create_engine(f"sqlite:///{path}"), CATALOG, today=lambda: TODAY)
    add(store, histories)
    return store


def add(store: ReportingStore, histories) -> None:
    """Deliver these cases' events after those delivered before, and derive them."""
    after = store.stored_positions().get(0, 0)
    store.store([Delivery(0, after + i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()


def evaluation(facts: FactParts) -> list:
    trial = CATALOG.trials["T11"]
    periods = periods_for(trial, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    return evaluate(facts, CATALOG, trial, periods, comparison_default(facts, CATALOG, trial, periods)[0])


@pytest.fixture
def histories():
    return [stream_events(d) for d in Population(seed=5, start=date(2016, 1, 1)).cases(400)]


def test_facts_saved_and_read_are_the_facts_read_from_the_database(tmp_path, histories):
    store = store_of(tmp_path / "db.sqlite", histories)
    loaded = FactParts.load(store.engine)
    loaded.save(tmp_path / "facts.bin", DATABASE)
    read = FactParts.read(tmp_path / "facts.bin", DATABASE)
    # how many names each code has, before the names are read (a restart needs only that)
    assert {name: len(codes) for name, codes in read.codes.items()} == {
        name: len(codes) for name, codes in loaded.codes.items()}
    assert evaluation(read) == evaluation(loaded)
    same_facts(read, loaded)
    assert read.refreshed(store.engine) is read  # nothing derived since: nothing read again


def test_cases_derived_since_the_snapshot_are_read_on_top_of_it(tmp_path, histories):
    store = store_of(tmp_path / "db.sqlite", histories[:300])
    FactParts.load(store.engine).save(tmp_path / "facts.bin", DATABASE)
    add(store, histories[300:320])  # 20 more cases: under the share that reads everything again
    assert len(FactParts.load(store.engine).codes["case"]) == 320
    read = FactParts.read(tmp_path / "facts.bin", DATABASE).refreshed(store.engine)
    fresh = FactParts.load(store.engine)
    same_facts(read, fresh)
    assert evaluation(read) == evaluation(fresh)


def test_facts_read_from_a_snapshot_stay_as_read_when_the_snapshot_is_written_again(tmp_path, histories):
    # the service answers from the facts it read while it saves newer ones to the same file
    store = store_of(tmp_path / "db.sqlite", histories[:200])
    path = tmp_path / "facts.bin"
    loaded = FactParts.load(store.engine)
    loaded.save(path, DATABASE)
    read = FactParts.read(path, DATABASE)
    add(store, histories[200:])
    FactParts.load(store.engine).save(path, DATABASE)
    same_facts(read, loaded)
    assert evaluation(read) == evaluation(loaded)
    same_facts(FactParts.read(path, DATABASE), FactParts.load(store.engine))


def test_a_database_whose_clock_is_behind_the_snapshot_is_read_afresh(tmp_path, histories):
    old = store_of(tmp_path / "old.sqlite", histories[:100])
    for start in range(100, 400, 100):  # a clock that ticked four times
        add(old, histories[start:start + 100])
    FactParts.load(old.engine).save(tmp_path / "facts.bin", DATABASE)
    other = store_of(tmp_path / "new.sqlite", histories[:50])  # made again at the same address: fewer ticks
    read = FactParts.read(tmp_path / "facts.bin", DATABASE)
    assert read.tick > other.tick()
    same_facts(read.refreshed(other.engine), FactParts.load(other.engine))


def test_a_snapshot_of_another_database_or_broken_is_not_read(tmp_path, histories):
    store = store_of(tmp_path / "db.sqlite", histories[:50])
    path = tmp_path / "facts.bin"
    FactParts.load(store.engine).save(path, DATABASE)
    assert FactParts.read(path, "postgresql://elsewhere/frisag") is None
    assert FactParts.read(tmp_path / "none.bin", DATABASE) is None
    whole = path.read_bytes()
    for cut in (whole[:1000], whole[:-100]):  # cut short in its header, in its last column
        path.write_bytes(cut)
        assert FactParts.read(path, DATABASE) is None
    path.write_bytes(b"PK\x03\x04" + whole[4:])  # another format (the numpy zip file of earlier releases)
    assert FactParts.read(path, DATABASE) is None
    length = int.from_bytes(whole[-8:], "little")
    header = json.loads(whole[-8 - length:-8])
    for name, (dtype, count, offset) in list(header["arrays"].items()):
        if name.startswith("part.0."):
            wrong = [(name.replace("part.0.", f"part.{k}.", 1), [dtype, count, offset]) for k in (-1, 1)]
            wrong.append((name, [dtype, 10**30, offset]))
            break
    for bad in wrong:  # a part that is not there, a count beyond any file
        written = json.dumps(header | {"arrays": header["arrays"] | dict([bad])}).encode()
        path.write_bytes(whole[:-8 - length] + written + len(written).to_bytes(8, "little"))
        assert FactParts.read(path, DATABASE) is None, bad
    path.write_bytes(whole)
    assert FactParts.read(path, DATABASE) is not None


def synthetic_facts(parts: int, rows: int) -> FactParts:
    """Facts of random rows, `rows` per table in each of `parts` parts, each part with some cases
    read again (their rows in `recent`, their earlier ones `stale`), as under a live stream."""
    rng = np.random.default_rng(1)
    cases = parts * rows // 10
    codes = {name: Codes(f"{name}-{i}" for i in range(count)) for name, count in (
        ("case", cases), ("citizen", cases), ("municipality", 98), ("rule", 20), ("trial", 24))}

    def table(name: str, count: int) -> Columns:
        columns = Columns(case=rng.integers(0, cases, count, np.int32), citizen=rng.integers(0, cases, count, np.int32),
                          municipality=rng.integers(0, 98, count, np.int32))
        if name in DATED:
            columns[DATED[name]] = np.sort(rng.integers(736_000, 740_000, count, np.int32))
        return columns

    return FactParts(codes, 7, 0, frozenset(), tuple(
        Facts(codes, 98, cases, {name: table(name, rows) for name in TABLES},
              {name: table(name, rows // 20) for name in TABLES}, rng.random(cases) < 0.05)
        for _ in range(parts)), np.zeros(cases, np.int16))


def test_writing_a_snapshot_does_not_copy_the_facts_whole(tmp_path):
    # a million cases' facts take a gigabyte: a copy of them all would raise the service's peak by as much
    facts = synthetic_facts(parts=8, rows=50_000)
    size = sum(column.nbytes for part in facts.parts for table in TABLES for column in part.rows(table).values())
    tracemalloc.start()
    try:
        facts.save(tmp_path / "facts.bin", DATABASE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size / 4, (peak, size)  # one part's table at a time: a 48th of these facts, and its copy
    read = FactParts.read(tmp_path / "facts.bin", DATABASE)
    for written, part in zip(facts.parts, read.parts, strict=True):
        for table in TABLES:
            now, then = written.rows(table), part.rows(table)
            assert set(now) == set(then)
            for column in now:
                np.testing.assert_array_equal(now[column], then[column])


def test_names_coded_while_a_snapshot_is_written_are_not_counted_in_it(tmp_path, monkeypatch):
    # the codes are shared with the service's facts, which another thread refreshes meanwhile
    facts = synthetic_facts(parts=2, rows=100)
    written = Facts.rows

    def rows_as_a_case_is_coded(part, table):
        facts.codes["case"].code(f"new-{len(facts.codes['case'])}")
        return written(part, table)

    monkeypatch.setattr(Facts, "rows", rows_as_a_case_is_coded)
    facts.save(tmp_path / "facts.bin", DATABASE)
    read = FactParts.read(tmp_path / "facts.bin", DATABASE)
    assert len(read.codes["case"]) == len(read.codes["case"].names) == 20


def test_a_reporting_service_keeps_its_facts_for_the_next_start(tmp_path, histories):
    settings = ReportingSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path, run_consumer=False)
    first = bootstrap(settings)
    add(first.projection, histories[:200])
    answered = first.cached(("numbers",), evaluation)
    first.close()  # writes the snapshot
    snapshot = FactParts.read(tmp_path / "reporting-facts.bin", first._database)
    same_facts(snapshot, FactParts.load(first.projection.engine))

    second = bootstrap(settings)
    try:
        deadline = time.monotonic() + 30
        while second._saved != (snapshot.tick, snapshot.epoch):  # read at start, not from the database
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert second.cached(("numbers",), evaluation) == answered
    finally:
        second.close()


def test_a_reporting_service_is_not_ready_until_its_facts_are_read(tmp_path, histories, monkeypatch):
    """Its first questions would wait for them, and a scenario asked meanwhile shares the CPU
    with the reading: a rolling restart routes to the instances that have them."""
    settings = ReportingSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path, run_consumer=False)
    first = bootstrap(settings)
    add(first.projection, histories[:50])
    first.close()
    (tmp_path / "reporting-facts.bin").unlink()
    gate = threading.Event()

    def held(*args):
        gate.wait(30)
        return None  # no snapshot: read from the database

    monkeypatch.setattr(FactParts, "read", held)
    service = bootstrap(settings)
    try:
        assert service.readiness() == {"facts": "being read into memory"}
        gate.set()
        deadline = time.monotonic() + 30
        while service.readiness():
            assert time.monotonic() < deadline, service.readiness()
            time.sleep(0.01)
        assert service._facts.tick == service.projection.tick()
    finally:
        gate.set()
        service.close()


def test_facts_read_a_few_rows_at_a_time_are_those_read_at_once(tmp_path, histories, monkeypatch):
    store = store_of(tmp_path / "db.sqlite", histories)
    at_once = FactParts.load(store.engine)
    monkeypatch.setattr(facts_module, "ROWS_AT_ONCE", 7)  # every table in many parts
    same_facts(FactParts.load(store.engine), at_once)
