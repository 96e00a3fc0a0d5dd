"""The embedded stream puts a case's events in the partition the Kafka client would: its own
murmur2 against kafka-python's, on keys of every length up to 40 bytes, case ids and the empty key;
and so a process on the embedded stream need not load the Kafka client."""

import random
import subprocess
import sys
from pathlib import Path

from kafka.partitioner.default import murmur2 as kafka_murmur2

from shared.stream.message import murmur2, partition_of

ROOT = Path(__file__).resolve().parents[2]


def test_murmur2_is_the_kafka_clients_for_every_key_length():
    rng = random.Random(16)
    keys = [b"", b"syn-0", b"case-751-000123", "ø-æ-å".encode()]
    keys += [bytes(rng.randrange(256) for _ in range(length)) for length in range(41) for _ in range(25)]
    for key in keys:
        assert murmur2(key) == kafka_murmur2(key), key


def test_a_case_lands_in_the_partition_kafkas_default_partitioner_chooses():
    for n in range(1000):
        key = f"syn-{n}".encode()
        for partitions in (1, 3, 12):
            assert partition_of(key, partitions) == (kafka_murmur2(key) & 0x7FFFFFFF) % partitions


def test_the_services_load_the_kafka_client_only_when_the_stream_is_kafka():
    # a process on the embedded stream (make run, most of make test) starts without it: 0.2 s less each
    modules = "services.case.api, services.case.relay, services.obligations.api, services.reporting.api, services.admin"
    probe = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'kafka'))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"
