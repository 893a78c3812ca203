"""list indexes over all owners' tasks

An admin's list of every owner's tasks (`owner=*`) gets an index for each
list order, by `done` first, held descending: the opposite way to the
owners' indexes of 0007 relative to the sort, so that neither family can
give the other's order (see `quart_tasks.tasks.models.LIST_INDEXES`).

Building the indexes reads the whole table and holds writes to `tasks` until
this migration commits: about 30 s for 2,000,000 tasks on a 2-core machine.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_COLUMNS = (("id",), ("created_at", "id"), ("updated_at", "id"), ("title", "id"))


def _all_owners_indexes() -> dict[str, list[sa.ColumnElement[object] | str]]:
    return {
        f"ix_tasks_done_desc_{'_'.join(columns)}": [sa.desc(sa.column("done")), *columns]
        for columns in SORT_COLUMNS
    }


def upgrade() -> None:
    for name, columns in _all_owners_indexes().items():
        op.create_index(name, "tasks", columns)


def downgrade() -> None:
    for name in _all_owners_indexes():
        op.drop_index(name, table_name="tasks")
