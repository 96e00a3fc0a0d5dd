"""The reporting service's derived tables as create_all made them before there were migrations (its
store tables are the projection branch's: shared/migrations/projection).

Revision ID: reporting_0001
Revises:
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reporting_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("reporting",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reporting_citizens",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("citizen", sa.String(64), nullable=False),
    )
    op.create_index("ix_reporting_citizens_citizen", "reporting_citizens", ["citizen"])
    op.create_table(
        "reporting_responsibility",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("valid_from", sa.Date, primary_key=True),
        sa.Column("valid_to", sa.Date),
        sa.Column("municipality", sa.String(3), nullable=False),
    )
    op.create_index("ix_reporting_responsibility_municipality", "reporting_responsibility", ["municipality"])
    op.create_table(
        "reporting_obligations",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("regime", sa.String(8), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("done_on", sa.Date),
        sa.Column("trial", sa.String(8)),
        sa.Column("municipality", sa.String(3)),
    )
    op.create_index("ix_reporting_obligations_due", "reporting_obligations", ["due"])
    op.create_table(
        "reporting_spells",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("benefit", sa.String(32), nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("end", sa.Date),
        sa.Column("end_reason", sa.String(16)),
    )
    op.create_index("ix_reporting_spells_benefit", "reporting_spells", ["benefit"])
    op.create_table(
        "reporting_occurrences",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("detail", sa.String(64)),
        sa.Column("reason", sa.String(16)),
        sa.Column("permitted_by", sa.String(8)),
    )
    op.create_index("ix_reporting_occurrences_day", "reporting_occurrences", ["day"])


def downgrade() -> None:
    for table in ("reporting_occurrences", "reporting_spells", "reporting_obligations", "reporting_responsibility",
                  "reporting_citizens"):
        op.drop_table(table)
