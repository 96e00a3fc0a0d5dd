"""The holder's username beside its `sub`: a Keycloak `sub` is an opaque id, its
`preferred_username` whom a person reading the log knows. Null in the records before it.

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2026-12-02

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "audit_0003"
down_revision: str | Sequence[str] | None = "audit_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN, on SQLite too: a batch copy of the table would drop its append-only triggers
    op.add_column(f"{prefix()}_audit", sa.Column("username", sa.String(256)))


def downgrade() -> None:
    op.drop_column(f"{prefix()}_audit", "username")
