"""What-if folded in a process pool, as the reporting service does on PostgreSQL (one process
per core), against the same scenario folded in the calling process (tests/unit/test_what_if.py
checks that fold against independent oracles)."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date

from sqlalchemy import create_engine

from services.reporting.store import ReportingStore
from services.reporting.whatif import Run, Scenario, simulate, touched_cases
from shared.catalog import Catalog, Trial
from shared.municipalities import municipalities
from shared.population import Population
from shared.stream import Delivery
from tests.unit.test_evaluation import stream_events

CATALOG = Catalog.load()
AS_OF = date(2025, 6, 1)


def test_a_scenario_folded_in_a_process_pool_gives_the_cells_folded_in_process(database_url):
    histories = [stream_events(d) for d in Population(seed=5, start=date(2016, 1, 1), end=date(2024, 12, 31)).cases(700)]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    store = ReportingStore(engine, CATALOG, today=lambda: AS_OF)
    store.store([Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()
    national = Trial.model_validate({**CATALOG.trials["T11"].model_dump(), "id": "T11-DK",
                                     "municipalities": sorted(municipalities()),
                                     "period": {"start": date(2023, 1, 1), "end": date(2024, 12, 31)}})
    scenario = Scenario(title="T11 i hele landet", trials=[national])
    run = Run(CATALOG, scenario.applied_to(CATALOG), date(2023, 1, 1), date(2024, 12, 31), AS_OF)
    cases = touched_cases(engine, scenario.municipalities(CATALOG))
    assert len(cases) == len(histories)
    in_process = simulate(engine, run, cases, None, lambda share: None)
    assert sum(n[0] - n[1] for n in in_process.numbers.values()) > 20  # the rollout freed obligations
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in ("while the processes spawn", "once they run"):
            shares: list[float] = []
            pooled = simulate(engine, run, cases, pool, shares.append)
            assert (pooled.numbers, pooled.citizens, pooled.cases) == (in_process.numbers, in_process.citizens, len(cases))
            assert shares == sorted(shares) and shares[-1] == 1
    engine.dispose()
