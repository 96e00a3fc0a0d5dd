"""The audit log: who read a case's data or took an admin action, what, when and from where,
and how it was answered; append-only (the database refuses updates and deletes) and queryable
by `admin`.

Each service keeps its own table, `<service>_audit`, next to its other tables, migrated by the
audit history (shared/migrations/audit) run with the service's name. A route is
audited by the dependency `audited(action)`; the `AuditTrail` middleware writes the record once
the answer is known, refusals included.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fastapi import Request
from sqlalchemy import JSON, Column, DateTime, Engine, Integer, MetaData, String, Table, insert, select
from starlette.concurrency import run_in_threadpool

from shared.auth import MAX_SUBJECT
from shared.events import CASE_ID_PATTERN
from shared.migrations import AUDIT, upgrade


@cache
def audit_table(service: str) -> Table:
    """The service's audit log, as its migrations make it."""
    return Table(
        f"{service}_audit", MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("subject", String(MAX_SUBJECT)),  # the token's `sub`; null when no valid token came
        Column("roles", JSON, nullable=False),
        Column("action", String(64), nullable=False),
        Column("method", String(8), nullable=False),
        Column("path", String(512), nullable=False),
        Column("query", String(1024), nullable=False),
        Column("case_id", String(64), index=True),
        Column("status", Integer, nullable=False),
        Column("client", String(64)),  # the caller's address (behind a proxy: its forwarded one)
        Column("username", String(MAX_SUBJECT)),  # the token's `preferred_username`, if it has one (audit_0003)
    )


class AuditLog:
    def __init__(self, engine: Engine, service: str) -> None:
        self.engine, self.service = engine, service
        self.table = audit_table(service)
        upgrade(engine, service, AUDIT)  # the table and its append-only triggers: shared/migrations/audit

    def append(self, record: dict[str, Any]) -> None:
        """Store `record` as the columns hold it: bad input is recorded, never a failing insert."""
        with self.engine.begin() as conn:
            conn.execute(insert(self.table).values({name: self._storable(name, v) for name, v in record.items()}))

    def _storable(self, name: str, value: Any) -> Any:
        if name == "case_id":  # what was asked is in `path`; only a valid id goes where a case's records are looked up
            return value if value and re.fullmatch(CASE_ID_PATTERN, value) else None
        if isinstance(value, str):  # clipped to the column, and NUL (which PostgreSQL text cannot hold) as in a URL
            return value.replace("\x00", "%00")[:self.table.c[name].type.length]
        return value

    def query(self, *, subject: str | None = None, case_id: str | None = None, action: str | None = None,
              since: datetime | None = None, until: datetime | None = None, after: int = 0,
              limit: int = 100, newest_first: bool = False) -> list[dict[str, Any]]:
        t = self.table
        q = select(t).where(t.c.id > after)
        for column, value in ((t.c.subject, subject), (t.c.case_id, case_id), (t.c.action, action)):
            if value is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(t.c.at >= since)
        if until is not None:
            q = q.where(t.c.at < until)
        with self.engine.connect() as conn:
            return [{**row, "at": _utc(row["at"]).isoformat()}
                    for row in conn.execute(q.order_by(t.c.id.desc() if newest_first else t.c.id).limit(limit)).mappings()]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite keeps no zone


def audited(action: str) -> Callable[[Request], None]:
    """A route dependency: record every request to this route in the audit log."""

    async def mark(request: Request) -> None:  # async: no worker thread for setting a field
        request.state.audit_action = action

    return mark


class AuditTrail:
    """ASGI middleware: when an audited route answers, append who asked what, and the status,
    before the answer leaves (no data without its record; a failing log fails the request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorded = False

        async def record_then_send(message: dict) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_then_send)
        except Exception:
            if not recorded:  # answered 500 further out
                await self._record(scope, 500)
            raise

    @staticmethod
    async def _record(scope: dict, status: int) -> None:
        state = scope.get("state", {})
        if "audit_action" not in state:
            return
        principal = state.get("principal")
        record = {
            "at": datetime.now(UTC), "action": state["audit_action"], "status": status,
            "subject": principal.subject if principal else None, "roles": sorted(principal.roles) if principal else [],
            "username": principal.username if principal else None,
            "method": scope["method"], "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "case_id": scope.get("path_params", {}).get("case_id"),
            "client": scope["client"][0] if scope.get("client") else None,
        }
        await run_in_threadpool(scope["app"].state.service.audit.append, record)
