"""The embedded stream puts a case's events in the partition the Kafka client would: its own
murmur2 against kafka-python's, on keys of every length up to 40 bytes, case ids and the empty key;
and so a process on the embedded stream need not load the Kafka client."""

import random
import subprocess
import sys
from pathlib import Path

from datetime import UTC, datetime

import orjson
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from kafka.partitioner.default import murmur2 as kafka_murmur2

from shared.events import StreamEvent
from shared.stream.message import from_message, murmur2, partition_of, to_message

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


EVENT = StreamEvent("momentum-000123", "jobcenter/851/momentum", "dk.frisag.benefit.started", "case-42",
                    "2019-01-02T08:00:00+00:00", {"benefit": "ledighedsydelse", "date": "2019-01-01"}, 2, 17, "T11",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


def test_a_message_is_the_cloudevent_the_sdks_kafka_binding_reads():
    key, value, headers = to_message(EVENT)
    parsed = kafka.from_structured(kafka.KafkaMessage(dict(headers), key, value), JSONFormat())
    assert parsed.get_attributes() == {
        "specversion": "1.0", "id": "momentum-000123", "source": "jobcenter/851/momentum",
        "type": "dk.frisag.benefit.started", "subject": "case-42", "time": datetime(2019, 1, 2, 8, tzinfo=UTC),
        "datacontenttype": "application/json", "sequence": 2, "position": 17, "permittedby": "T11",
        "partitionkey": "case-42"}  # the SDK's name for the message key
    assert parsed.get_data() == {"benefit": "ledighedsydelse", "date": "2019-01-01"}
    assert from_message(value, headers) == EVENT


def test_a_message_published_before_time_and_datacontenttype_were_set_still_reads():
    _, value, headers = to_message(EVENT)
    older = {k: v for k, v in orjson.loads(value).items() if k not in ("time", "datacontenttype")}
    assert from_message(orjson.dumps(older), headers) == EVENT._replace(time=None)
