"""Fault injection (`make faults`): Frisag as separate processes on PostgreSQL and the broker,
clients posting numbered events that retry on failure, and one fault per run. After the run,
the case store, the stream and both projections are compared with what the clients were told
(tests/faults/harness.py): no acknowledged event may be lost or applied twice, and a poison
event must be failed and reported without stopping the other cases.

Each run prints `scenario: acknowledged / stored / projected / duplicates / failed-and-reported`
and appends it to `var/faults/results.txt` (the table in the README)."""

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shared.events import StreamEvent
from shared.stream.kafka import KafkaPublisher, recreate_topic
from tests.faults.harness import PARTITIONS, PROJECTIONS, Broker, Clients, System, ThrowawayPostgres, tally, wait_for
from tests.infra import ALERT_FOR, fresh_database, held

RESULTS = Path(__file__).parents[2] / "var" / "faults" / "results.txt"
STARTED = 200  # acknowledged events before the fault: it strikes mid-ingest
POISON_DATE = "9999-12-31"  # the fold cannot add a day to it; the case service refuses it since issue 13


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def kill(name: str) -> Callable[[System], None]:
    def fault(system: System) -> None:
        system.services[name].kill()  # the supervisor starts it again after its back-off
        wait_for(lambda: system.services[name].restarts >= 1, 30, f"{name} restarted")
    return fault


def broker_paused(system: System) -> None:
    system.broker.pause()
    time.sleep(30)
    system.broker.resume()


def broker_data_lost(system: System) -> None:
    """The broker comes back empty, and the topic is made again as configured (as a deployment's
    tooling would), so the relay publishes new events into it without their cases' earlier ones;
    then deploy/OPERATIONS.md's runbook: consumers stopped, the store republished into an emptied
    topic, both projections rebuilt, consumers started."""
    system.broker.kill()
    system.broker.start()
    recreate_topic(system.broker.url, system.topic, PARTITIONS)  # tansu may have made one with 4 already
    for name in PROJECTIONS:  # the loss is not silent: what the operator is alerted by, an alert
        # that holds for ALERT_FOR seconds (as a Prometheus rule's `for:`), so the consumer is
        # settled in its group when stopped: tansu keeps a member that left during its own join
        # as the group's leader for ever, and the group never rebalances again (Kafka would
        # expire it after the session timeout)
        wait_for(held(lambda url=system.url(name): stream_lost(url), ALERT_FOR), 120,
                 f"{name}'s /readyz naming the lost stream for {ALERT_FOR} s")
    for name in PROJECTIONS:
        system.services[name].stop()  # 1. stop the consumers
    system.admin("republish", module="services.case.admin")  # 2.
    for name in PROJECTIONS:
        # 3. (a rebuild's consumer has been seen to wait up to tansu's rebalance timeout, 300 s,
        # for a member that left the group mid-rebalance)
        system.admin("rebuild", name, timeout=420)
    for name in PROJECTIONS:
        system.services[name].start()  # 4.


def stream_lost(url: str) -> bool:
    answer = httpx.get(f"{url}/readyz", timeout=10)
    return answer.status_code == 503 and "stream" in answer.text


def poison(system: System) -> None:
    """A message no derivation can handle, published straight to the topic (the case service
    would refuse it), for a case of its own in the middle of the stream."""
    publisher = KafkaPublisher(system.broker.url, system.topic)
    data = {"citizen": "poison-citizen", "municipality": "851", "date": POISON_DATE}
    publisher.publish([
        StreamEvent("poison-0", "faults/poison", "dk.frisag.case.opened", "poison-1", None, data, 1, 10**9),
        StreamEvent("poison-1", "faults/poison", "dk.frisag.benefit.started", "poison-1", None,
                    {"benefit": "ledighedsydelse", "date": POISON_DATE}, 2, 10**9 + 1),
    ])
    publisher.close()


SCENARIOS: dict[str, Callable[[System], None]] = {
    "kill -9 case service": kill("case"),
    "kill -9 relay": kill("relay"),
    "kill -9 obligations": kill("obligations"),
    "kill -9 reporting": kill("reporting"),
    "broker paused 30 s": broker_paused,
    "broker restarted, data lost": broker_data_lost,
    "poison event": poison,
}
POISONED = {"poison event": {"poison-1"}}


def run(scenario: str, fault: Callable[[System], None], database_url: str, broker: Broker, token: str) -> None:
    prefix = "".join(c if c.isalnum() else "-" for c in scenario)
    work = RESULTS.parent / prefix  # each process's log, kept for a look after the run
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    system = System(database_url, broker, token, work)
    try:
        system.start()
        clients = Clients(system.url("case"), token, prefix).start()
        wait_for(lambda: len(clients.acknowledged) >= STARTED or clients.done, 120, "clients under way")
        fault(system)
        clients.join(timeout=240)
        clients.stop()
        result = tally(scenario, system, clients, POISONED.get(scenario, set()))
    finally:
        system.close()
    print(f"\n{result.line()} (client retries {clients.retries}, restarts "
          f"{ {n: s.restarts for n, s in system.services.items() if s.restarts} })")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(result.line() + "\n")
    assert not result.problems, "\n".join(result.problems)
    assert result.acknowledged > STARTED


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_nothing_acknowledged_is_lost_or_applied_twice(scenario, pg_admin, broker, issuer, tmp_path):
    with fresh_database(pg_admin) as database_url:
        run(scenario, SCENARIOS[scenario], database_url, broker, issuer.everything())


def test_postgresql_restarted_mid_ingest_loses_nothing(broker, issuer, tmp_path):
    postgres = ThrowawayPostgres()
    postgres.start()
    try:
        run("PostgreSQL restarted (immediate)", lambda system: postgres.restart_immediately(), postgres.url, broker,
            issuer.everything())
    finally:
        postgres.stop()
