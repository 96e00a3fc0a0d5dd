"""The stream's messages, whichever adapter carries them: CloudEvents in the Kafka protocol
binding's structured mode, keyed by case id, in the partition Kafka's default partitioner chooses
for the key. Kept apart from the Kafka adapter so that a process on the embedded stream does not
load the Kafka client."""

from collections.abc import Sequence
from typing import Any

import orjson

from shared.events import StreamEvent

CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
DATA_CONTENT_TYPE = "application/json"  # `data` is a JSON object, stated for readers that would guess otherwise


def to_message(event: StreamEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the message that carries `event`."""
    document: dict[str, Any] = {"specversion": "1.0", "id": event.id, "source": event.source, "type": event.type,
                                "subject": event.subject}
    if event.time:
        document["time"] = event.time
    document["datacontenttype"] = DATA_CONTENT_TYPE
    document["sequence"], document["position"] = event.sequence, event.position
    if event.permitted_by:
        document["permittedby"] = event.permitted_by
    document["data"] = event.data
    headers = [("content-type", CONTENT_TYPE)]
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    return event.subject.encode(), orjson.dumps(document), headers


def from_message(value: bytes, headers: Sequence[tuple[str, bytes]]) -> StreamEvent:
    # on the consumers' hot path: a rebuild decodes every message of the topic
    document = orjson.loads(value)
    traceparent = None
    for name, header in headers:
        if name == "traceparent":
            traceparent = header.decode()
    return StreamEvent(document["id"], document["source"], document["type"], document["subject"],
                       document.get("time"), document["data"], document["sequence"], document["position"],
                       document.get("permittedby"), traceparent)


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a keyed message: the same case, the same partition."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2(data: bytes) -> int:
    """MurmurHash2 as the Java client computes it (org.apache.kafka.common.utils.Utils.murmur2),
    as an unsigned 32-bit value."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little") * m & mask
        k = (k ^ (k >> 24)) * m & mask
        h = (h * m & mask) ^ k
    rest = data[whole:]
    if rest:
        h ^= int.from_bytes(rest, "little")
        h = h * m & mask
    h = (h ^ (h >> 13)) * m & mask
    return h ^ (h >> 15)
