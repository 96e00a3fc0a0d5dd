"""A derivation that fails for one case stops nothing else (issue 13): the batch's other cases
are stored and derived, the positions move on, and the case is recorded as failed, with its
events kept, until it is derived again. Against SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, create_engine, select

from services.obligations.projection import ObligationsDerivation, ObligationsProjection, obligations
from shared.catalog import Catalog
from shared.events import StreamEvent
from shared.projection import CaseProjection
from shared.stream import Delivery

CATALOG = Catalog.load()
TODAY = date(2021, 6, 1)


class Poisoned(ObligationsDerivation):
    """Fails for every case whose id starts with `poison`, as a fold that cannot handle its events."""

    def derive(self, case_id, events):
        if case_id.startswith("poison"):
            raise RuntimeError(f"cannot fold {case_id}")
        return super().derive(case_id, events)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'projection.sqlite'}"
    else:
        url = request.getfixturevalue("database_url").replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    yield engine
    engine.dispose()


def ly_case(case_id: str, first_sequence: int = 1) -> list[StreamEvent]:
    documents = [("case.opened", {"date": "2019-01-01", "municipality": "751", "citizen": "p"}),
                 ("benefit.started", {"date": "2019-01-01", "benefit": "ledighedsydelse"}),
                 ("plan.updated", {"date": "2019-02-01"})]
    return [StreamEvent(f"{case_id}-{i}", "s", f"dk.frisag.{name}", case_id, None, data, i, i)
            for i, (name, data) in enumerate(documents, 1) if i >= first_sequence]


def deliveries(events: list[StreamEvent], first_offset: int) -> list[Delivery]:
    return [Delivery(0, first_offset + i, e) for i, e in enumerate(events)]


def derived_cases(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(obligations.c.case_id)).scalars())


@pytest.mark.integration
def test_a_case_the_derivation_fails_for_is_recorded_and_the_others_go_on(engine):
    projection = ObligationsProjection(engine, CATALOG, today=lambda: TODAY)
    # poison-2 was derived before the derivation began to fail for it
    assert projection.store(deliveries(ly_case("poison-2")[:2], 0)) == 2
    assert derived_cases(engine) == {"poison-2"}
    projection.derivation = Poisoned(CATALOG, lambda: TODAY)

    batch = ly_case("good-1") + ly_case("poison-1") + ly_case("poison-2", 3) + ly_case("good-2")
    assert projection.store(deliveries(batch, 2)) == 10

    assert projection.stored_positions() == {0: 12}  # the position moved past all of it
    assert derived_cases(engine) == {"good-1", "good-2"}  # poison-2's stale obligations are gone
    failed = {f["case_id"]: f for f in projection.failed()}
    assert set(failed) == {"poison-1", "poison-2"}
    assert failed["poison-1"]["error"] == "RuntimeError: cannot fold poison-1"
    assert (failed["poison-1"]["last_sequence"], failed["poison-2"]["last_sequence"]) == (3, 3)
    assert failed["poison-1"]["release"] == projection.derivation.release
    assert failed["poison-1"]["municipality"] == "751"
    assert failed["poison-1"]["failed_at"].endswith("+00:00")
    assert len(projection.history("poison-1")) == 3  # nothing accepted is lost
    assert projection.counts()["failed"] == 2
    assert projection.store(deliveries(ly_case("poison-1"), 2)) == 0  # redelivered: nothing new

    # re-derived after a catalog change: still failing, recorded again; nothing loops
    assert projection.mark_stale() == 4
    assert projection.refresh() == 4
    assert projection.counts()["stale"] == 0 and {f["case_id"] for f in projection.failed()} == {"poison-1", "poison-2"}

    # the derivation is fixed (a new release): its failed cases are derived again and succeed
    projection.derivation = ObligationsDerivation(CATALOG, lambda: TODAY)
    assert projection.counts()["stale"] == 2
    assert projection.refresh() == 2
    assert projection.failed() == [] and projection.counts()["failed"] == 0
    assert derived_cases(engine) == {"good-1", "good-2", "poison-1", "poison-2"}


@pytest.mark.integration
def test_failed_cases_of_another_release_are_derived_again_when_a_projection_starts(engine):
    poisoned = ObligationsProjection(engine, CATALOG, today=lambda: TODAY)
    poisoned.derivation = Poisoned(CATALOG, lambda: TODAY)
    poisoned.store(deliveries(ly_case("poison-1") + ly_case("good-1"), 0))
    assert [f["case_id"] for f in poisoned.failed()] == ["poison-1"]
    again = CaseProjection(engine, "obligations", "obligations", Poisoned(CATALOG, lambda: TODAY))
    assert again.counts()["stale"] == 0  # started again with the same release: nothing to do

    fixed = ObligationsProjection(engine, CATALOG, today=lambda: TODAY)  # a new release starts
    assert fixed.counts() | {"obligations": None} == {"cases": 2, "stale": 1, "failed": 1, "obligations": None}
    assert fixed.refresh() == 1
    assert fixed.failed() == [] and derived_cases(engine) == {"good-1", "poison-1"}


@pytest.mark.integration
def test_retrying_the_failed_cases_derives_them_again(engine):
    projection = ObligationsProjection(engine, CATALOG, today=lambda: TODAY)
    projection.derivation = Poisoned(CATALOG, lambda: TODAY)
    projection.store(deliveries(ly_case("poison-1") + ly_case("good-1"), 0))
    assert projection.retry_failed() == 1
    assert projection.refresh() == 1
    assert [f["case_id"] for f in projection.failed()] == ["poison-1"]  # the same code fails the same way
