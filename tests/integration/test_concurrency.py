"""Two case-service replicas writing the same cases in PostgreSQL at once never lose an event:
optimistic concurrency on the case's version refuses the stale write, and the ingest retries it."""

from concurrent.futures import ThreadPoolExecutor

from services.case.bootstrap import build_cases
from services.case.history import history
from services.case.ingest import Ingest
from services.case.problems import problem_for
from services.case.settings import CaseSettings
from shared.events import parse_event
from tests.events import event, opened


def test_two_replicas_posting_to_one_case_lose_nothing(database_url, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    replicas = [build_cases(settings), build_cases(settings)]
    ingests = [Ingest(cases) for cases in replicas]
    ingests[0].submit([parse_event(opened("shared"))]).result()

    def post(n: int):
        document = event("mentor.contact", "shared", source=f"replica-{n % 2}", id_=f"contact-{n}", date="2019-03-01")
        return ingests[n % 2].submit([parse_event(document)]).result()

    with ThreadPoolExecutor(16) as pool:
        outcomes = [o for result in pool.map(post, range(200)) for o in result]

    assert all(not o.duplicate for o in outcomes)
    assert sorted(o.sequence for o in outcomes) == list(range(2, 202))
    stored = history(replicas[1], "shared")
    assert [e["sequence"] for e in stored] == list(range(1, 202))
    assert {e["id"] for e in stored[1:]} == {f"contact-{n}" for n in range(200)}
    for ingest, cases in zip(ingests, replicas):
        ingest.close()
        cases.close()


def test_two_replicas_opening_the_same_case_store_it_once(database_url, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    replicas = [build_cases(settings), build_cases(settings)]
    ingests = [Ingest(cases) for cases in replicas]
    same = parse_event(opened("twice"))
    futures = [ingest.submit([same]) for ingest in ingests]
    outcomes = sorted((f.result()[0] for f in futures), key=lambda o: o.duplicate)
    assert [o.duplicate for o in outcomes] == [False, True]
    assert len(history(replicas[0], "twice")) == 1
    for ingest, cases in zip(ingests, replicas):
        ingest.close()
        cases.close()


def test_two_replicas_storing_one_key_in_two_cases_store_it_once(database_url, tmp_path):
    settings = CaseSettings(database_url=database_url, kafka_bootstrap_servers=None, data_dir=tmp_path)
    replicas = [build_cases(settings), build_cases(settings)]
    ingests = [Ingest(cases) for cases in replicas]
    try:
        for round_ in range(20):  # at once, so both find the key free before either stores it
            documents = [opened(f"r{round_}-{n}", id_=f"same-{round_}") for n in range(2)]
            futures = [ingest.submit([parse_event(d)]) for ingest, d in zip(ingests, documents)]
            results = [f.exception(timeout=30) or f.result() for f in futures]
            stored = [r for r in results if not isinstance(r, Exception)]
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(stored) == 1 and not stored[0][0].duplicate, results
            assert [(p.status, p.errors[0].field) for p in map(problem_for, refused)] == [(409, "id")]
            assert sum(bool(history(replicas[0], d["subject"])) for d in documents) == 1
    finally:
        for ingest, cases in zip(ingests, replicas):
            ingest.close()
            cases.close()
