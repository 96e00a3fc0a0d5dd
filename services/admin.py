"""The operators' command line: `python -m services.admin <subcommand>` (`--help` lists them).

Each subcommand reads the same environment variables as the services (README, Configuration)
and delegates to the services' own code: the catalog loader, the projections as the services'
bootstrap builds them, and the stream as the consuming services open it. What needs the case
store (and so its key) is the case service's own command line: `python -m services.case.admin`.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from services.consuming import ConsumingService
from services.obligations import bootstrap as obligations
from services.obligations.settings import ObligationsSettings
from services.progress import Progress
from services.reporting import bootstrap as reporting
from services.reporting.settings import ReportingSettings
from pydantic import TypeAdapter, ValidationError

from shared.auth import CASEWORKER, DEV_TOKEN_DAYS, INTEGRATION, ROLES, development_token
from shared.catalog import Catalog
from shared.events import Code
from shared.migrations import AUDIT, upgrade
from shared.municipalities import municipalities
from shared.population import Population
from shared.settings import ServiceSettings
from shared.stream import TopicMismatchError

SERVICES = {"obligations": (ObligationsSettings, obligations), "reporting": (ReportingSettings, reporting)}
BATCH_TYPE = "application/cloudevents-batch+json"
BATCH_EVENTS = 1000  # load-demo: whole cases per batch, about this many events
DEMO_SEED = 42  # the same demo every time: case ids are syn-0, syn-1, ... whatever the seed
PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
BOUND_ROLES = (INTEGRATION, CASEWORKER)  # their tokens act for the municipalities they name


def check_catalog(args: argparse.Namespace) -> int:
    directory = args.dir or ObligationsSettings().catalog_dir
    if not (directory / "rules").is_dir() or not (directory / "trials").is_dir():
        print(f"{directory}: no rules/ and trials/ folders here", file=sys.stderr)
        return 1
    try:
        catalog = Catalog.load(directory)
    except ValueError as exc:
        print(f"invalid catalog: {exc}", file=sys.stderr)
        return 1
    open_ended = sorted((t.id for t in catalog.trials.values() if t.period.end is None), key=lambda t: (len(t), t))
    print(f"{directory}: {len(catalog.rules)} rules, {len(catalog.trials)} trials valid; "
          f"no end date: {', '.join(open_ended) or 'none'}")
    return 0


def migrate(args: argparse.Namespace) -> int:
    settings_type, module = SERVICES[args.service]
    engine = module.projection_engine(settings_type())
    try:
        upgrade(engine, args.service)
        upgrade(engine, args.service, AUDIT)
    finally:
        engine.dispose()
    print(f"{args.service}: tables and audit log at the newest revision")
    return 0


def positions(args: argparse.Namespace) -> int:
    settings, service = _projection_of(args.service)
    try:
        stored = service.projection.stored_positions()
        lag = service.lag()
        print(f"{args.service}: consumer group {service.projection.group}, stream {service.stream.topic}")
        if not lag:
            print(f"topic {settings.kafka_topic} has no partitions: does it exist?")
        print(f"{'partition':>9} {'position':>12} {'lag':>12}")
        for partition, behind in sorted(lag.items()):
            print(f"{partition:>9} {stored.get(partition, '-'):>12} {behind:>12}")
        print(f"lag: {sum(lag.values())} events")
        return 0
    finally:
        service.close()


def rebuild(args: argparse.Namespace) -> int:
    settings, service = _projection_of(args.service)
    projection = service.projection
    try:
        projection.clear()
        started = time.monotonic()
        events = 0
        try:  # every partition, from the start, without a consumer group: offline, nothing to share
            subscription = service.stream.subscribe(None, projection.resume_from)
        except TopicMismatchError as exc:
            print(f"{args.service}: cannot rebuild: {exc}", file=sys.stderr)
            return 1
        progress = Progress(sum(service.lag().values()), "events", every=PROGRESS_EVERY)  # all of it is behind now
        try:
            while True:
                deliveries = subscription.poll(timeout=1.0, max_records=settings.consumer_batch_size)
                projection.store(deliveries)
                events += len(deliveries)
                progress.advance(len(deliveries))
                # a short batch: perhaps at the end (asking the broker each batch would cost more)
                if len(deliveries) < settings.consumer_batch_size and not sum(service.lag().values()):
                    break
                if invalid := subscription.invalid_positions():  # the topic is not as configured
                    print(f"{args.service}: cannot rebuild from {service.stream.topic}: {invalid}", file=sys.stderr)
                    return 1
        finally:
            subscription.close()
        progress.finish()
        elapsed = time.monotonic() - started
        print(f"{args.service}: rebuilt {projection.counts()['cases']} cases from {events} events in {elapsed:.1f} s: "
              f"{events / elapsed if elapsed else 0:,.0f} events/s")
        return 0
    finally:
        service.close()


def failed(args: argparse.Namespace) -> int:
    _, service = _projection_of(args.service)
    projection = service.projection
    try:
        if args.retry:  # here, not in the service's consumer: the answer says how it went
            projection.retry_failed()
            derived = projection.refresh()
            print(f"{args.service}: derived {derived} case{'' if derived == 1 else 's'} again")
        cases = projection.failed()
        if cases:
            print(f"{'failed at':<32} {'case':<24} {'sequence':>8} {'municipality':<12} {'release':<20} error")
        for f in cases:
            print(f"{f['failed_at']:<32} {f['case_id']:<24} {f['last_sequence']:>8} {f['municipality'] or '-':<12} "
                  f"{f['release']:<20} {f['error']}")
        print(f"{args.service}: {len(cases)} failed case{'' if len(cases) == 1 else 's'}")
        return 0
    finally:
        service.close()


def load_demo(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("FRISAG_TOKEN") or _development_token(INTEGRATION)
    stored = duplicates = 0
    progress = Progress(args.cases, "cases", every=PROGRESS_EVERY)
    for batch, cases in _batches(Population(DEMO_SEED).cases(args.cases), BATCH_EVENTS):
        request = urllib.request.Request(f"{args.url.rstrip('/')}/events", data=json.dumps(batch).encode(),
                                         headers={"Content-Type": BATCH_TYPE, "Authorization": f"Bearer {token}"},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                outcomes = json.load(answer)
        except urllib.error.URLError as exc:  # an HTTPError too: the batch was refused, with a problem
            reason = exc.read().decode(errors="replace") if isinstance(exc, urllib.error.HTTPError) else exc.reason
            progress.finish()  # a terminal's bar line ended before the reason
            print(f"{args.url}: {reason}", file=sys.stderr)
            print(f"{stored} events stored before that")
            return 1
        stored += sum(o["status"] == "stored" for o in outcomes)
        duplicates += sum(o["status"] == "duplicate" for o in outcomes)
        progress.advance(cases)
    progress.finish()
    print(f"{stored} events stored ({args.cases} cases; {duplicates} were stored before)")
    return 0


def token(args: argparse.Namespace) -> int:
    try:
        settings = ServiceSettings()
    except ValidationError as exc:  # ENVIRONMENT=production without the identity provider's keys
        print(f"no development token: {_reason(exc)}", file=sys.stderr)
        return 1
    if settings.auth_jwks_url:  # production always has it (ServiceSettings)
        print(f"no development token: the services check tokens against AUTH_JWKS_URL ({settings.auth_jwks_url}), "
              "not the development key; get a token from that identity provider", file=sys.stderr)
        return 1
    if not (settings.data_dir / "auth" / "jwks.json").exists():  # a key made here would be one no service knows
        print(f"no development signing key in {settings.data_dir / 'auth'}: the services of make run make it when "
              "they start; run this where make run runs, or set DATA_DIR to its data folder", file=sys.stderr)
        return 1
    codes = args.municipality or []
    unknown = [code for code in codes if code not in municipalities()]
    if unknown:
        print(f"unknown kommunekode {', '.join(unknown)}: a token acting for it would grant nothing", file=sys.stderr)
        return 1
    if args.role in BOUND_ROLES and not codes:
        print(f"a {args.role} token acts for municipalities: name one with --municipality", file=sys.stderr)
        return 1
    subject = args.caseworker or "-".join(["dev", args.role, *codes])
    try:
        TypeAdapter(Code).validate_python(subject)  # as `case.assigned` names a caseworker: no CPR number
    except ValidationError as exc:
        print(f"--caseworker: {_reason(exc)}", file=sys.stderr)
        return 1
    print(development_token(settings, subject, [args.role], codes))
    names = ", ".join(f"{municipalities()[code]} ({code})" for code in codes) or "no municipality"
    print(f"{args.role} {subject} for {names}, valid {DEV_TOKEN_DAYS} days, signed with the development key in "
          f"{settings.data_dir / 'auth'}", file=sys.stderr)
    return 0


def _reason(error: ValidationError) -> str:
    return error.errors()[0]["msg"].removeprefix("Value error, ")


def _development_token(role: str) -> str:
    """The role's token that `make run` wrote (development only)."""
    tokens = ServiceSettings().data_dir / "auth" / "tokens.json"
    if not tokens.exists():
        raise SystemExit(f"no token: pass --token or set FRISAG_TOKEN ({tokens} exists only in development)")
    return json.loads(tokens.read_text())[role]


def _projection_of(name: str) -> tuple[ServiceSettings, ConsumingService]:
    settings_type, module = SERVICES[name]
    settings = settings_type(run_consumer=False)  # the projection alone: no consumer thread, no workers
    return settings, module.bootstrap(settings)


def _batches(cases: Iterable[list[dict[str, Any]]], size: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Whole cases, in order, and how many cases each batch holds: each case's `case.opened`
    comes first in the batch that has it."""
    batch: list[dict[str, Any]] = []
    count = 0
    for documents in cases:
        batch += documents
        count += 1
        if len(batch) >= size:
            yield batch, count
            batch, count = [], 0
    if batch:
        yield batch, count


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m services.admin", description="Frisag's admin command line. It reads the same environment variables as "
                                               "the services (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, CATALOG_DIR, ...).")
    commands = main.add_subparsers(dest="command", required=True, metavar="<subcommand>")

    check = commands.add_parser("check-catalog", help="validate the rule and trial catalogs and summarise them",
                                description="Load and validate the rule and trial files; exit 1 naming the "
                                            "file and the reason when one is invalid.")
    check.add_argument("dir", nargs="?", type=Path, help="the catalog folder (default: CATALOG_DIR, else the packaged one)")
    check.set_defaults(run=check_catalog)

    upgrade = commands.add_parser("migrate", help="migrate a projection's tables and audit log to the newest revision",
                                  description="Run the service's schema migrations (Alembic: its projection, "
                                              "its audit log), as the service does when it starts; replicas may "
                                              "start meanwhile.")
    upgrade.add_argument("service", choices=SERVICES)
    upgrade.set_defaults(run=migrate)

    show = commands.add_parser("positions", help="a projection's stored stream positions, the stream's end and the lag",
                               description="Per partition: where the projection will resume (stored in its own "
                                           "database), the topic's end offset, and the lag; embedded, the case "
                                           "store's log instead of the topic.")
    show.add_argument("service", choices=SERVICES)
    show.set_defaults(run=positions)

    build = commands.add_parser("rebuild", help="rebuild a projection from the whole stream (offline: stop the service first)",
                                description="Delete the projection's positions, events, cases and derived rows, "
                                            "then consume the stream from the beginning until caught up, "
                                            "derive every case, and print the rate. Offline: stop every replica "
                                            "of that service (and its run_consumer processes) first; it uses "
                                            "the service's own consumer group.")
    build.add_argument("service", choices=SERVICES)
    build.set_defaults(run=rebuild)

    failures = commands.add_parser("failed",
                                   help="the cases a projection's derivation failed for; --retry derives them again",
                                   description="List the cases whose derivation (the fold, or the reporting "
                                               "facts) failed: when, the case's events up to which sequence, "
                                               "its municipality, the release and the error. They have nothing "
                                               "derived until a derivation succeeds; the services retry them on "
                                               "their next event, a catalog reload or a new release.")
    failures.add_argument("service", choices=SERVICES)
    failures.add_argument("--retry", action="store_true", help="derive them again now, then list what still fails")
    failures.set_defaults(run=failed)

    demo = commands.add_parser("load-demo", help="post a seeded synthetic demo population to the case service",
                               description="Post the synthetic population (the same one every time; cases "
                                           "syn-0, syn-1, ...) to the case service in batches.")
    demo.add_argument("--cases", type=int, required=True, help="how many cases")
    demo.add_argument("--url", default="http://localhost:8001", help="the case service (default: %(default)s)")
    demo.add_argument("--token", help="a bearer token with the integration role for every municipality "
                                      "(default: FRISAG_TOKEN, else the development token make run wrote)")
    demo.set_defaults(run=load_demo)

    mint = commands.add_parser("token", help="mint a development bearer token (development keys only)",
                               description="Print a bearer token signed with the development key under "
                                           "DATA_DIR/auth (what the services check without AUTH_JWKS_URL), "
                                           f"valid {DEV_TOKEN_DAYS} days; a line on stderr says what it grants. "
                                           "Refused when AUTH_JWKS_URL is set or ENVIRONMENT=production: "
                                           "the identity provider issues the tokens then.")
    mint.add_argument("--role", required=True, choices=ROLES)
    mint.add_argument("--municipality", action="append", metavar="KOMMUNEKODE",
                      help="a municipality the token acts for (repeat for several); needed for "
                           f"{' and '.join(BOUND_ROLES)}")
    mint.add_argument("--caseworker", metavar="ID", help="the holder (`sub`), e.g. a caseworker's id as "
                                                          "`case.assigned` names it (default: dev-<role>-<codes>)")
    mint.set_defaults(run=token)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
