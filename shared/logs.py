"""The log lines of every Frisag process: INFO and up to stderr, with time, level and logger (a
consumer's partitions assigned and refused, a relay's publishing, a failed derivation), and
kafka-python's network chatter (a line per connection and metadata refresh) from WARNING only."""

import logging

QUIET = ("kafka.net", "kafka.cluster", "kafka.conn", "kafka.client_async", "kafka.protocol")


def configure() -> None:
    if logging.getLogger().handlers:  # the host configured logging already (a log config, pytest)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
