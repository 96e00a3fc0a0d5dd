"""The case service's command line: `python -m services.case.admin <subcommand>`. What needs the
case store, and so CASE_STORE_KEY, lives here, run where the case service and its relay run (the
consumers' command line, `python -m services.admin`, never holds the key)."""

import argparse
import sys
import time

from sqlalchemy import create_engine

from services.case.bootstrap import build_cases
from services.case.relay import published, request_republish
from services.case.settings import CaseSettings
from shared.migrations import AUDIT, upgrade
from shared.settings import sqlalchemy_url

PROGRESS_EVERY = 10.0  # seconds between progress lines


def republish(args: argparse.Namespace) -> int:
    """After the stream lost the topic's data: the relay creates the topic again, empty (with
    KAFKA_TOPIC_PARTITIONS), and publishes the whole case store into it, in order."""
    settings = CaseSettings()
    cases = build_cases(settings)
    try:
        recorder, topic, last = cases.factory.tracking_recorder(), settings.kafka_topic, cases.last_position()
        epoch = request_republish(recorder, topic)
        print(f"the relay publishes the case store (log positions 1-{last}) into {topic} again (epoch {epoch})")
        if args.no_wait:
            return 0
        deadline = progress = time.monotonic()
        deadline += args.timeout
        while (done := published(recorder, topic)) < last:
            if time.monotonic() > deadline:
                print(f"the relay has republished up to position {done} of {last} in {args.timeout:.0f} s: "
                      "is a relay running, and can it publish (its log)?", file=sys.stderr)
                return 1
            if time.monotonic() - progress >= PROGRESS_EVERY:
                print(f"republished up to position {done} of {last}", file=sys.stderr)
                progress = time.monotonic()
            time.sleep(0.5)
        print(f"republished: the relay is at position {done}; now rebuild the projections "
              "(python -m services.admin rebuild obligations, and reporting)")
        return 0
    finally:
        cases.close()


def migrate(args: argparse.Namespace) -> int:
    """The case service's own tables (its data keys, its audit log), as the service migrates them
    when it starts; the event store's are the `eventsourcing` library's, made when it starts."""
    settings = CaseSettings()
    for sqlite_file, history in (("case_keys.sqlite", None), ("audit.sqlite", AUDIT)):
        engine = create_engine(sqlalchemy_url(settings, sqlite_file))
        try:
            upgrade(engine, "case", history)
        finally:
            engine.dispose()
    print("case: data keys and audit log at the newest revision")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m services.case.admin",
                                   description="The case service's admin command line. It reads the case "
                                               "service's environment variables (DATABASE_URL, CASE_STORE_KEY, "
                                               "KAFKA_BOOTSTRAP_SERVERS, ...).")
    commands = main.add_subparsers(dest="command", required=True, metavar="<subcommand>")
    upgrade_tables = commands.add_parser("migrate", help="migrate the case service's tables to the newest revision",
                                         description="Run the case service's schema migrations (Alembic: its data "
                                                     "keys and its audit log), as the service does when it starts.")
    upgrade_tables.set_defaults(run=migrate)
    again = commands.add_parser("republish", help="after the stream lost the topic's data: publish the whole case store to it again",
                                description="Have the running relay create the topic again, empty, with "
                                            "KAFKA_TOPIC_PARTITIONS (and the replication factor it had), publish the "
                                            "whole case store into it in order, and wait until it has. Online: the "
                                            "case service and the relay keep running. Stop the consumers first; "
                                            "then rebuild the projections.")
    again.add_argument("--no-wait", action="store_true", help="return once asked, without waiting for the relay")
    again.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the relay (default: %(default)s)")
    again.set_defaults(run=republish)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
