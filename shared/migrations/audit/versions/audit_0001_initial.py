"""A service's audit log, `<service>_audit`, as create_all made it before there were migrations
(without its triggers: audit_0002).

Revision ID: audit_0001
Revises:
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "audit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        f"{prefix()}_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(256)),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("query", sa.String(1024), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("client", sa.String(64)),
    )
    op.create_index(f"ix_{prefix()}_audit_case_id", f"{prefix()}_audit", ["case_id"])


def downgrade() -> None:
    op.drop_table(f"{prefix()}_audit")
