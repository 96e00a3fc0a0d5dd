"""The audit log is append-only: the database refuses updates and deletes. On PostgreSQL through
a function of the service's own, `<service>_append_only()`: a function shared by the services
(`frisag_append_only()`, which release 0.1 replaced at every start) may be replaced only by its
owner, so services with a database role each could not both keep it.

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-12-02

"""
from collections.abc import Sequence

from alembic import op

from shared.migrations import prefix

revision: str = "audit_0002"
down_revision: str | Sequence[str] | None = "audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = f"{prefix()}_audit"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE OR REPLACE FUNCTION {prefix()}_append_only() RETURNS trigger LANGUAGE plpgsql AS
                       $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""")
        # replaces the trigger release 0.1 made on frisag_append_only()
        op.execute(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {prefix()}_append_only()")
    else:
        for change in ("update", "delete"):  # release 0.1 made them too
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{change} BEFORE {change.upper()} ON {table} "
                       "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def downgrade() -> None:
    table = f"{prefix()}_audit"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {prefix()}_append_only()")
    else:
        for change in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{change}")
