"""`make run`: the web pages and the three services on one machine, each in its own process, until
Ctrl-C. The case service runs the relay, which publishes to the embedded stream (or Kafka); the
consumers and the web service get an environment without the keys that read a citizen, the web
service the APIs' addresses."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from pydantic_settings import BaseSettings

from shared.auth import development_tokens
from shared.settings import ServiceSettings

CASE_ONLY = ("CASE_STORE_KEY", "PSEUDONYM_KEY")  # the consumers refuse to start with these


class RunSettings(BaseSettings):
    """Where `make run` serves the services: environment variables of the same name in upper case."""

    host: str = "127.0.0.1"
    web_port: int = 8000
    case_port: int = 8001
    obligations_port: int = 8002
    reporting_port: int = 8003


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a supervisor, `timeout`) stops everything as Ctrl-C does


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    # a shell starting us in the background hands SIGINT down ignored; Ctrl-C or a SIGINT
    # must still stop everything
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = RunSettings()
    host = run.host
    apis = [("case", run.case_port), ("obligations", run.obligations_port), ("reporting", run.reporting_port)]
    services = [("web", run.web_port), *apis]
    # the web service calls the APIs over HTTP, as any frontend would
    addresses = {f"{name.upper()}_URL": f"http://{host}:{port}" for name, port in apis}
    settings = ServiceSettings()
    tokens = None if settings.auth_jwks_url else development_tokens(settings)  # fresh ones each run
    children = [
        subprocess.Popen([sys.executable, "-m", "uvicorn", f"services.{name}.{'app' if name == 'web' else 'api'}:app",
                          "--host", host, "--port", str(port), "--log-level", "warning"],
                         env=_environment(name) | (addresses if name == "web" else {}),
                         start_new_session=True)  # Ctrl-C reaches them once, through us
        for name, port in services
    ]
    try:
        for name, port in services:
            _wait_healthy(f"http://{host}:{port}/healthz", children)
        stores = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite files in var/"
        stream = "Kafka" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "the embedded stream, no broker"
        mode = f"{stores}, the relay publishing to {stream}"
        print(f"Frisag is running, {mode}:")
        print(f"  {'web':<12} http://{host}:{run.web_port}/" + ("  (sign in at /log-ind)" if tokens else ""))
        for name, port in apis:
            print(f"  {name:<12} http://{host}:{port}/docs")
        if tokens:
            print(f"Bearer tokens, one per role (integration, caseworker for Aalborg, evaluator, admin): {tokens}")
        print(f"Post events to http://{host}:{run.case_port}/events. Ctrl-C stops everything.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1  # a service died
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def _environment(service: str) -> dict[str, str]:
    if service == "case":
        return dict(os.environ)
    return {name: value for name, value in os.environ.items() if name.upper() not in CASE_ONLY}


def _wait_healthy(url: str, children: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise SystemExit("a service failed to start")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


if __name__ == "__main__":
    sys.exit(main())
