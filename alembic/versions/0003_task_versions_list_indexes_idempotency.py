"""task versions, list indexes and idempotency keys

Tasks get a version (bumped by every change: their ETag) and one index per
list order; SQLite's table is rebuilt with AUTOINCREMENT so ids are never
reused. Idempotency keys remember the first response to a keyed create.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIST_INDEXES = {
    "ix_tasks_owner_id_id": ["owner_id", "id"],
    "ix_tasks_owner_id_created_at_id": ["owner_id", "created_at", "id"],
    "ix_tasks_owner_id_updated_at_id": ["owner_id", "updated_at", "id"],
    "ix_tasks_owner_id_title_id": ["owner_id", "title", "id"],
}


def _rebuild_on_sqlite() -> dict[str, object]:
    if op.get_bind().dialect.name == "sqlite":
        return {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}}
    return {}


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("owner_id", BigId, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("response_headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"],
            name=op.f("fk_idempotency_keys_owner_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("owner_id", "key", name=op.f("uq_idempotency_keys_owner_id")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])

    with op.batch_alter_table("tasks", **_rebuild_on_sqlite()) as batch_op:  # type: ignore[arg-type]
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.drop_index("ix_tasks_owner_id")
        for name, columns in LIST_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        for name in LIST_INDEXES:
            batch_op.drop_index(name)
        batch_op.create_index("ix_tasks_owner_id", ["owner_id"], unique=False)
        batch_op.drop_column("version")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
