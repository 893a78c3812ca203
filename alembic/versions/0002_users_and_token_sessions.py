"""users and token sessions; every task gets an owner

Existing tasks are given to the bootstrap admin (API_USER), created here with
API_PASS when it does not exist yet.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:10:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from argon2 import PasswordHasher

from alembic import op
from quart_tasks.config import load_config

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('user', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username_key", name=op.f("uq_users_username_key")),
    )
    op.create_table(
        "token_families",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"],
            name=op.f("fk_token_families_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_families")),
    )
    op.create_index(op.f("ix_token_families_user_id"), "token_families", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", BigId, nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"], ["token_families.id"],
            name=op.f("fk_refresh_tokens_family_id_token_families"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index(op.f("ix_refresh_tokens_family_id"), "refresh_tokens", ["family_id"])

    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("owner_id", BigId, nullable=True))
    _give_existing_tasks_to_the_admin()
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.alter_column("owner_id", existing_type=BigId, nullable=False)
        batch_op.create_index(batch_op.f("ix_tasks_owner_id"), ["owner_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_owner_id_users"), "users", ["owner_id"], ["id"],
            ondelete="CASCADE",
        )


def _give_existing_tasks_to_the_admin() -> None:
    connection = op.get_bind()
    if not connection.execute(sa.text("SELECT 1 FROM tasks LIMIT 1")).first():
        return
    config = load_config()
    users = sa.table(
        "users",
        sa.column("id", BigId),
        sa.column("username", sa.String),
        sa.column("username_key", sa.String),
        sa.column("password_hash", sa.String),
        sa.column("role", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    hasher = PasswordHasher(
        time_cost=config.ARGON2_TIME_COST,
        memory_cost=config.ARGON2_MEMORY_KIB,
        parallelism=config.ARGON2_PARALLELISM,
    )
    now = datetime.now(UTC)
    connection.execute(
        users.insert().values(
            username=config.API_USER,
            username_key=config.API_USER.casefold(),
            password_hash=hasher.hash(config.API_PASS),
            role="admin",
            created_at=now.replace(tzinfo=None) if connection.dialect.name == "sqlite" else now,
        )
    )
    admin_id = connection.execute(
        sa.select(users.c.id).where(users.c.username_key == config.API_USER.casefold())
    ).scalar_one()
    connection.execute(sa.text("UPDATE tasks SET owner_id = :admin"), {"admin": admin_id})


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tasks_owner_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tasks_owner_id"))
        batch_op.drop_column("owner_id")
    op.drop_index(op.f("ix_refresh_tokens_family_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index(op.f("ix_token_families_user_id"), table_name="token_families")
    op.drop_table("token_families")
    op.drop_table("users")
