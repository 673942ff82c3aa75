"""job integrity: how often a job's remaining symbols were queued again without progress in between

``validation_jobs.resumes`` is raised each time the watch (workers/batches.py ``watch``) queues a stalled job's
remaining symbols again (its messages were lost, e.g. by a Redis restart without persistence, or it made no progress
for job_stall_s) and reset to 0 when the job makes progress; past job_max_resumes the job is failed with a reason
instead of being queued again.

Revision ID: 0007
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("validation_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resumes", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("validation_jobs", schema=None) as batch_op:
        batch_op.drop_column("resumes")
