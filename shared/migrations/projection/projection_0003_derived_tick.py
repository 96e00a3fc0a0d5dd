"""A clock ticked by each transaction that derives cases, and each case's tick: a reader finds
what was derived since it last looked without reading every case. The clock's epoch moves when
everything derived is dropped for a rebuild.

Revision ID: projection_0003
Revises: projection_0002
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migrations import prefix

revision: str = "projection_0003"
down_revision: str | Sequence[str] | None = 'projection_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(f"{prefix()}_cases", sa.Column("derived_tick", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index(f"ix_{prefix()}_cases_derived_tick", f"{prefix()}_cases", ["derived_tick"])
    clock = op.create_table(
        f"{prefix()}_clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("tick", sa.BigInteger, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False, server_default="0"),
    )
    op.bulk_insert(clock, [{"id": 1, "tick": 0, "epoch": 0}])


def downgrade() -> None:
    op.drop_table(f"{prefix()}_clock")
    op.drop_index(f"ix_{prefix()}_cases_derived_tick", table_name=f"{prefix()}_cases")
    with op.batch_alter_table(f"{prefix()}_cases") as batch:
        batch.drop_column("derived_tick")
